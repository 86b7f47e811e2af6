"""The Kazoo user and authentication documents, for the OpenAPI description only: validation is done by hand
(``accounts.rules``, the controllers) so that every failing field is named."""

from __future__ import annotations

from typing import Annotated

import msgspec


class User(msgspec.Struct, omit_defaults=True):
    """A user; ``password`` is required on create, optional on update (and required to change the username)."""

    username: str
    password: Annotated[str, msgspec.Meta(min_length=8)] | None = None
    email: str = ""
    first_name: str = ""
    last_name: str = ""


class UserAuth(msgspec.Struct, omit_defaults=True):
    """``credentials`` is the hex MD5 (or SHA-1 with ``method: sha``) of ``"username:password"``."""

    credentials: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    account_name: str | None = None
    phone_number: str | None = None
    method: Annotated[str, msgspec.Meta(pattern="^(md5|sha)$")] = "md5"


class ApiAuth(msgspec.Struct):
    api_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
