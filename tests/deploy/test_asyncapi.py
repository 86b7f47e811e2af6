"""docs/asyncapi.json describes exactly the events in libs/contracts, and its examples are real wire messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from referencing import Registry, Resource

from fax_contracts import ALL_EVENTS, EXCHANGE, decode_event, routing_key
from fax_contracts.asyncapi import main, render_document

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "docs" / "asyncapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(PUBLISHED.read_text())


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_published_document_matches_the_code() -> None:
    assert PUBLISHED.read_text() == render_document(), (
        "docs/asyncapi.json is out of date: uv run python -m fax_contracts.asyncapi --output docs/asyncapi.json"
    )


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "asyncapi.json"
    stale.write_text(render_document().replace('"fax.job.submitted.v1"', '"fax.job.submitted.v0"', 1))
    assert main(["--output", str(stale), "--check"]) == 1
    assert main(["--output", str(PUBLISHED), "--check"]) == 0


def test_every_event_has_a_channel_on_the_exchange(document: dict[str, Any]) -> None:
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(addresses) == {routing_key(event) for event in ALL_EVENTS}
    for channel in addresses.values():
        assert channel["bindings"]["amqp"]["exchange"] == {
            "name": EXCHANGE,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        }
    for operation in document["operations"].values():
        assert operation["action"] == "send"
        assert resolve(document, operation["channel"]["$ref"]) in document["channels"].values()


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in refs(document):
        resolve(document, ref)


def test_examples_are_valid_wire_messages(document: dict[str, Any]) -> None:
    """Each example decodes as its event and validates against the published schema of its payload."""
    registry = Registry().with_resource("urn:fax-asyncapi", Resource.opaque(document))
    by_name = {event.__name__: event for event in ALL_EVENTS}
    for name, message in document["components"]["messages"].items():
        schema = {"$ref": "urn:fax-asyncapi" + message["payload"]["$ref"]}
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        for example in message["examples"]:
            payload = example["payload"]
            validator.validate(payload)
            event = decode_event(msgspec.json.encode(payload))
            assert type(event) is by_name[name]
            assert payload["type"] == message["name"] == routing_key(by_name[name])


def test_schema_refuses_a_message_missing_a_required_field(document: dict[str, Any]) -> None:
    registry = Registry().with_resource("urn:fax-asyncapi", Resource.opaque(document))
    message = document["components"]["messages"]["DocumentReady"]
    payload = dict(message["examples"][0]["payload"])
    del payload["tiff_key"]
    validator = jsonschema.Draft202012Validator(
        {"$ref": "urn:fax-asyncapi#/components/schemas/DocumentReady"}, registry=registry
    )
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(payload)


def test_events_guide_lists_every_routing_key() -> None:
    guide = (REPO / "docs" / "events.md").read_text()
    missing = [routing_key(event) for event in ALL_EVENTS if f"`{routing_key(event)}`" not in guide]
    assert not missing, f"docs/events.md does not list {missing}"
