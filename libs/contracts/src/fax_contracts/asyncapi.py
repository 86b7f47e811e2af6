"""The AsyncAPI 3.0 description of every event on ``fax.events``, generated from the Structs themselves.

``python -m fax_contracts.asyncapi --output docs/asyncapi.json`` rewrites the published document;
``--check`` fails when it no longer matches the code (the tests run the same comparison).
Each event is one channel whose address is its routing key (= tag); payload schemas are msgspec's JSON Schemas,
and every message carries an example that decodes as that event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import msgspec

from fax_contracts.events import ALL_EVENTS, EXCHANGE, Event, encode_event, routing_key

AMQP_BINDING_VERSION = "0.3.0"
EXAMPLE_TIME = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _contracts_version() -> str:
    try:
        return version("fax-contracts")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def _example_value(name: str, info: msgspec.inspect.Type) -> Any:
    """A plausible value of a field's type: deterministic, so the document is stable."""
    if isinstance(info, msgspec.inspect.UnionType):
        concrete = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        return _example_value(name, concrete[0])
    if isinstance(info, msgspec.inspect.UUIDType):
        return uuid.uuid5(uuid.NAMESPACE_URL, f"fax:{name}")
    if isinstance(info, msgspec.inspect.DateTimeType):
        return EXAMPLE_TIME
    if isinstance(info, msgspec.inspect.BoolType):
        return False
    if isinstance(info, msgspec.inspect.IntType):
        return 1
    if isinstance(info, msgspec.inspect.FloatType):
        return 1.0
    if isinstance(info, msgspec.inspect.StrType):
        return {"tiff_key": "jobs/0f8e.../document.tif", "error": "no answer"}.get(name, name.replace("_", "-"))
    raise TypeError(f"no example for field {name!r} of type {type(info).__name__}: extend _example_value")


def example_event(event_type: type[Event]) -> Event:
    info = msgspec.inspect.type_info(event_type)
    assert isinstance(info, msgspec.inspect.StructType)
    return event_type(**{field.name: _example_value(field.name, field.type) for field in info.fields})


def _summary(event_type: type[Event]) -> str:
    return " ".join((event_type.__doc__ or event_type.__name__).split())


def build_document() -> dict[str, Any]:
    """The AsyncAPI document as plain data (JSON-ready)."""
    _, schemas = msgspec.json.schema_components(ALL_EVENTS, ref_template="#/components/schemas/{name}")
    exchange = {"name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in ALL_EVENTS:
        name = event_type.__name__
        key = routing_key(event_type)
        messages[name] = {
            "name": key,
            "title": name,
            "summary": _summary(event_type),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "examples": [{"name": "example", "payload": msgspec.json.decode(encode_event(example_event(event_type)))}],
            "bindings": {
                "amqp": {"contentEncoding": "utf-8", "messageType": key, "bindingVersion": AMQP_BINDING_VERSION}
            },
        }
        channels[key] = {
            "address": key,
            "title": name,
            "description": f"Routing key `{key}` on the `{EXCHANGE}` topic exchange.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": AMQP_BINDING_VERSION}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"The platform publishes {name} (persistent, at least once).",
            "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": False, "bindingVersion": AMQP_BINDING_VERSION}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Fax platform events",
            "version": _contracts_version(),
            "description": (
                f"Every event the fax platform publishes on the `{EXCHANGE}` topic exchange. The routing key is the "
                "event's tag (`fax.<subject>.<verb>.vN`), repeated in the payload's `type` field. A version only "
                "gains optional fields; a breaking change is a new `.vN+1` event. Delivery is at least once: "
                "deduplicate by `event_id`. Generated from libs/contracts by `python -m fax_contracts.asyncapi`; "
                "see docs/events.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The platform's RabbitMQ (FAX_AMQP_URL); bind your own queue to the exchange.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render_document() -> str:
    """The document exactly as it is stored in docs/asyncapi.json."""
    return msgspec.json.format(msgspec.json.encode(build_document()), indent=2).decode() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fax_contracts.asyncapi", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the document here (default: standard output)")
    parser.add_argument("--check", action="store_true", help="exit 1 when --output differs from the code")
    args = parser.parse_args(argv)
    text = render_document()
    if args.check:
        if args.output is None:
            parser.error("--check needs --output")
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run python -m fax_contracts.asyncapi --output {args.output}",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
