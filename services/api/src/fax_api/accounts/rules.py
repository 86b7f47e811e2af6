"""Users, passwords, API keys and auth tokens: the pure rules (no I/O).

Kazoo's ``user_auth`` never sends a password, only ``md5("username:password")`` (or SHA-1), so that hash is kept
as Kazoo keeps it; the password itself is kept only as a salted scrypt hash, for dialects that send it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fax_api.accounts.rows import AccountUser

AUTH_TOKEN_TTL_SECONDS = 3600  # Kazoo's default token lifetime
USERNAME_MAX_LENGTH = 256
PASSWORD_MIN_LENGTH = 8
# scrypt cost: ~50 ms and 16 MiB per hash on this machine kind; the parameters are stored with each hash.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_USER_STRINGS = ("email", "first_name", "last_name")


class UserValidationError(ValueError):
    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("invalid data")
        self.errors = errors


def new_api_key() -> str:
    """64 hex characters, the shape of Kazoo's ``pvt_api_key``."""
    return secrets.token_hex(32)


def new_auth_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
    )
    return hmac.compare_digest(candidate.hex(), digest)


def credentials_hashes(username: str, password: str) -> tuple[str, str]:
    """Kazoo's ``md5`` and ``sha`` credentials of a user: hex digests of ``"username:password"``."""
    secret = f"{username.lower()}:{password}".encode()
    return (
        hashlib.md5(secret, usedforsecurity=False).hexdigest(),
        hashlib.sha1(secret, usedforsecurity=False).hexdigest(),
    )


def _add(errors: dict[str, Any], field: str, rule: str, message: str, **extra: Any) -> None:
    errors.setdefault(field, {})[rule] = {"message": message, **extra}


def validate_user(doc: Any, *, password_required: bool) -> dict[str, Any]:
    """Check a Kazoo user document; the fields to store (``password`` in clear, to be hashed by the caller)."""
    if not isinstance(doc, dict):
        raise UserValidationError({"data": {"type": {"message": "Value is not of type object", "target": "object"}}})
    errors: dict[str, Any] = {}
    username = doc.get("username")
    if not isinstance(username, str) or not username.strip():
        _add(errors, "username", "required", "Field is required but missing")
    elif len(username) > USERNAME_MAX_LENGTH or any(ch.isspace() or ch == ":" for ch in username):
        _add(errors, "username", "pattern", "Username must be 1..256 characters without spaces or ':'")
    for field in _USER_STRINGS:
        if field in doc and not isinstance(doc[field], str):
            _add(errors, field, "type", "Value is not of type string", target="string")
    if isinstance(doc.get("email"), str) and doc["email"] and "@" not in doc["email"]:
        _add(errors, "email", "format", "Value is not an email address", target="email")
    password = doc.get("password")
    if password is None:
        if password_required:
            _add(errors, "password", "required", "Field is required but missing")
    elif not isinstance(password, str):
        _add(errors, "password", "type", "Value is not of type string", target="string")
    elif len(password) < PASSWORD_MIN_LENGTH:
        _add(
            errors,
            "password",
            "minLength",
            f"Value is shorter than {PASSWORD_MIN_LENGTH} characters",
            target=PASSWORD_MIN_LENGTH,
        )
    if errors:
        raise UserValidationError(errors)
    user: dict[str, Any] = {"username": username.strip().lower(), "password": password}  # type: ignore[union-attr]
    user.update({field: doc.get(field, "") for field in _USER_STRINGS})
    return user


def user_view(user: AccountUser) -> dict[str, Any]:
    """A user as the API shows it (a listing's rows too): never any form of the password."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


def auth_view(account_id: str, owner_id: str | None) -> dict[str, Any]:
    """``data`` of a user_auth / api_auth answer, in Kazoo's shape."""
    data: dict[str, Any] = {
        "account_id": account_id,
        "apps": [],
        "is_reseller": False,
        "language": "en-US",
    }
    if owner_id is not None:
        data["owner_id"] = owner_id
    return data
