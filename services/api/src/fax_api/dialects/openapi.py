"""OpenAPI request bodies for the dialects' form and multipart routes (litestar cannot infer them: the handlers
read the raw request so that every dialect's own error format is kept)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

STRING = Schema(type=OpenAPIType.STRING)
FILE = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]


def form_body(fields: dict[str, Schema], *, required: tuple[str, ...] = (), description: str = "") -> type[Operation]:
    """An ``operation_class`` whose body is these fields, as a URL-encoded form or as multipart/form-data."""
    schema = Schema(type=OpenAPIType.OBJECT, properties=fields, required=list(required) or None)
    body = RequestBody(
        content={
            "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),
            "multipart/form-data": OpenAPIMediaType(schema=schema),
        },
        required=True,
        description=description or None,
    )

    @dataclass
    class FormBodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return FormBodyOperation
