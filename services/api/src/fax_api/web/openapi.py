"""How the OpenAPI document describes each operation: its request body, its errors and its authentication.

Each dialect (``KAZOO``, ``FAXTO``, ``UAPI``) is described once: its error envelope (the schema of the msgspec Struct
every error of the dialect is encoded with), what each error status means in it (one response of that envelope per
status under ``components/responses``: ``Kazoo404``, ``Faxto401`` ...), its security scheme and what a request the
scheme refuses gets. A route declares its operation with its dialect's ``operation(...)``, naming the statuses its
own code answers; the operation adds the statuses that follow from its shape, so that no route has to repeat them:

- its security requirement (the controller's ``security``) adds the scheme's refusals (Kazoo: 401, 403; ...);
- a request body adds 400 (malformed) and 413 (larger than the app's limit);
- what every call of the dialect can answer (Fax.to: 400, its parameters are read for every call) is added to all;

and every error status is answered with the dialect's envelope. Litestar's own error entries (its
``ValidationException`` shape, which this API never answers) are dropped.

Litestar describes a body it decodes for the handler; these handlers read the raw request instead, so that each
dialect's own errors are kept (Kazoo's JSON whatever the Content-Type, multipart uploads, Fax.to's and UAPI's forms),
and the operation carries the body (``kazoo_body``, ``upload_body``, ``form_body``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType

from fax_api.web.faxto import FaxtoFailure
from fax_api.web.kazoo import KazooErrorEnvelope
from fax_api.web.uapi import UapiErrorEnvelope

STRING = Schema(type=OpenAPIType.STRING)
FILE = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]
INTEGER = Schema(type=OpenAPIType.INTEGER)
# What any operation with a request body can answer: a body it cannot read, or one over the app's size limit.
BODY_ERRORS = (400, 413)
# Any operation may find Postgres or S3 away for a moment (web.errors answers it, with Retry-After).
UNAVAILABLE_MEANING = "The database or document storage is unavailable for a moment: retry after Retry-After seconds"


@dataclass(frozen=True)
class Dialect:
    """One dialect's errors and authentication, as the document describes them."""

    name: str  # its responses' prefix under components/responses
    envelope: type[msgspec.Struct]
    scheme_name: str
    scheme: SecurityScheme
    refusals: tuple[int, ...]  # what a request the scheme refuses is answered
    meanings: Mapping[int, str]  # what each status the dialect answers means in it
    always: tuple[int, ...] = ()  # what any operation of the dialect can answer

    @property
    def security(self) -> list[SecurityRequirement]:
        """The security of the dialect's authenticated controllers."""
        return [{self.scheme_name: []}]

    def operation(
        self,
        *statuses: int,
        body: RequestBody | None = None,
        query: Sequence[Parameter] = (),
        produces: Sequence[str] = (),
    ) -> type[Operation]:
        """An ``operation_class`` answering ``statuses`` (errors in the dialect's envelope; a 2xx without a body),
        plus what its security and body add. ``query``: the query parameters a handler reads itself (litestar
        documents those it decodes); ``produces``: the success response's media types, when not JSON."""
        unknown = set(statuses) - self.meanings.keys()
        if unknown:
            raise ValueError(f"{self.name} has no meaning for {sorted(unknown)}: add it to its meanings")
        dialect = self

        @dataclass
        class DialectOperation(Operation):
            def __post_init__(self) -> None:
                if body is not None:
                    self.request_body = body
                if query:
                    self.parameters = [*(self.parameters or []), *query]
                dialect.document(self, statuses, produces)

        DialectOperation.__name__ = f"{self.envelope.__name__}Operation"
        return DialectOperation

    def document(self, operation: Operation, statuses: Sequence[int], produces: Sequence[str]) -> None:
        """Set ``operation``'s responses: its success responses, then each error it can answer."""
        responses = {code: answer for code, answer in (operation.responses or {}).items() if int(code) < 400}
        if produces:
            binary = OpenAPIMediaType(schema=FILE)
            for answer in responses.values():
                if isinstance(answer, OpenAPIResponse) and answer.content:
                    answer.content = dict.fromkeys(produces, binary)
        errors = {status for status in statuses if status >= 400} | set(self.always)
        if any(self.scheme_name in requirement for requirement in operation.security or []):
            errors.update(self.refusals)
        if operation.request_body is not None:
            errors.update(BODY_ERRORS)
        for status in sorted(errors):
            responses[str(status)] = Reference(f"#/components/responses/{self.name}{status}")
        for status in (status for status in statuses if status < 300):
            responses[str(status)] = OpenAPIResponse(description=self.meanings[status])
        operation.responses = dict(sorted(responses.items()))

    def error_responses(self) -> dict[str, OpenAPIResponse]:
        """The dialect's error responses, by name: its envelope with each status's meaning."""
        schema = msgspec.json.schema(self.envelope)
        envelope = OpenAPIMediaType(schema=_inline(schema, schema.get("$defs", {})))
        return {
            f"{self.name}{status}": OpenAPIResponse(description=meaning, content={"application/json": envelope})
            for status, meaning in self.meanings.items()
            if status >= 400
        }


KAZOO = Dialect(
    name="Kazoo",
    envelope=KazooErrorEnvelope,
    scheme_name="kazooAuthToken",
    scheme=SecurityScheme(
        type="apiKey",
        name="X-Auth-Token",
        security_scheme_in="header",
        description="An auth token of the account (PUT /v2/user_auth or /v2/api_auth); good for its own account only.",
    ),
    refusals=(401, 403),
    meanings={
        400: "invalid data, or invalid request body: data names each failing field",
        401: "invalid_credentials: no valid X-Auth-Token (user_auth, api_auth: the credentials are wrong)",
        403: "forbidden: the token is not of the account in the path",
        404: "bad_identifier: the account has no such item (or it is in another folder)",
        406: "not_acceptable: the Accept header asks for neither image/tiff nor application/pdf",
        409: "conflict: the fax's state no longer allows this",
        413: "too_large: the request is larger than allowed",
        415: "unsupported_media_type: a part or body of a type that cannot be faxed",
        503: UNAVAILABLE_MEANING,
    },
    always=(503,),
)

FAXTO = Dialect(
    name="Faxto",
    envelope=FaxtoFailure,
    scheme_name="faxtoApiKey",
    scheme=SecurityScheme(
        type="apiKey",
        name="api_key",
        security_scheme_in="query",
        description="The user's api_key (from POST /api/v2/user or /api/v2/user/login); in the query string, or as a "
        "field of the form or JSON body.",
    ),
    refusals=(401,),
    always=(400, 503),
    meanings={
        400: "A parameter is missing or invalid, or the parameters cannot be read (a body that is not a well-formed "
        "form or JSON, a NUL character): message says which",
        401: "Invalid or missing api_key (login: wrong email or password)",
        402: "Insufficient balance for this fax",
        404: "Not found: the document, fax job, country or DID group named",
        409: "Conflict: the email is taken, or no number is free",
        413: "The request or the file is larger than allowed",
        422: "The document cannot be faxed: message says why",
        503: "The preview is still being drawn, or the database or document storage is unavailable for a moment: "
        "try again shortly (after Retry-After seconds where it is given)",
    },
)

UAPI = Dialect(
    name="Uapi",
    envelope=UapiErrorEnvelope,
    scheme_name="uapiToken",
    scheme=SecurityScheme(
        type="http",
        scheme="bearer",
        description="An auth token of the account (the same tokens as Kazoo's X-Auth-Token), sent as "
        "Authorization: Bearer <token> (or token <token>).",
    ),
    refusals=(401, 403),
    meanings={
        204: "No files were sent: nothing to fax",
        400: "The request is invalid: error.code says what (fx_recipients_invalid, fx_file_invalid, ...)",
        401: "unauthorized: no valid token",
        403: "forbidden: the token may only send for its own user",
        413: "request_too_large: the request is larger than allowed",
        503: UNAVAILABLE_MEANING,
    },
    always=(503,),
)

DIALECTS = (KAZOO, FAXTO, UAPI)


def components() -> Components:
    """The document's components: each dialect's error responses and security scheme."""
    return Components(
        responses={name: answer for d in DIALECTS for name, answer in d.error_responses().items()},
        security_schemes={d.scheme_name: d.scheme for d in DIALECTS},
    )


def query_parameter(name: str, schema: Schema = STRING, *, required: bool = False, description: str = "") -> Parameter:
    """A query parameter a handler reads itself."""
    return Parameter(name=name, param_in="query", schema=schema, required=required, description=description or None)  # type: ignore[call-arg]


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``#/$defs/...`` reference replaced by its definition (the documents have no cycles)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(value, definitions) for value in schema]
    return schema


def envelope_schema(document: type) -> dict[str, Any]:
    """The JSON schema of ``{"data": <document>}``."""
    schema = msgspec.json.schema(document)
    inner = _inline(schema, schema.get("$defs", {}))
    return {"type": "object", "required": ["data"], "properties": {"data": inner}}


def kazoo_body(document: type, *, required: bool = True) -> RequestBody:
    """A Kazoo envelope around ``document``."""
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=envelope_schema(document))},  # type: ignore[arg-type]
        required=required,
        description=f'Kazoo envelope: {{"data": {document.__name__}}}. Read as JSON whatever the Content-Type.',
    )


def upload_body(document: type) -> RequestBody:
    """The create operation's body: a Kazoo JSON envelope, or multipart with that envelope and the document(s)."""
    envelope = envelope_schema(document)
    parts = {
        "type": "object",
        "required": ["content"],
        "description": "An application/json part with the Kazoo envelope, then one part per document "
        "(application/pdf, image/tiff, image/png, image/jpeg, text/plain, Office/ODF ...), sent in that order.",
        "properties": {"content": {"type": "array", "items": {"type": "string", "format": "binary"}}},
    }
    return RequestBody(
        content={
            "application/json": OpenAPIMediaType(schema=envelope),  # type: ignore[arg-type]
            "multipart/mixed": OpenAPIMediaType(schema=parts),  # type: ignore[arg-type]
            "multipart/form-data": OpenAPIMediaType(schema=parts),  # type: ignore[arg-type]
        },
        required=True,
        description=f'Kazoo envelope {{"data": {document.__name__}}} (read as JSON whatever the Content-Type), or '
        "the same envelope and the document in one multipart/mixed or multipart/form-data request.",
    )


# Fax.to reads a call's fields from a form of either kind or from a JSON object (``faxto.dependencies``).
FAXTO_BODY_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")


def form_body(
    fields: dict[str, Schema],
    *,
    required: tuple[str, ...] = (),
    description: str = "",
    media_types: Sequence[str] = FAXTO_BODY_TYPES,
) -> RequestBody:
    """These fields, as a body of each of ``media_types``."""
    schema = Schema(type=OpenAPIType.OBJECT, properties=fields, required=list(required) or None)
    return RequestBody(
        content=dict.fromkeys(media_types, OpenAPIMediaType(schema=schema)),
        required=True,
        description=description or None,
    )
