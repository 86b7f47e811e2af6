"""How a handler asks the composition root (``fax_api.app``) for a collaborator: ``store: Injected[FaxStore]``.

The parameter's name picks the dependency. What is injected is built by the app, not read from the request, so
litestar does not check it against the annotation: a unit test may hand in an in-memory stand-in.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar

from litestar.di import NamedDependency
from litestar.params import SkipValidation

T = TypeVar("T")

Injected: TypeAlias = SkipValidation[NamedDependency[T]]
