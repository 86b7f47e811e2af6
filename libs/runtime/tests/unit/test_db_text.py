"""``holds_nul``: what Postgres text and jsonb cannot store is found at any depth of decoded JSON, keys included."""

from __future__ import annotations

import pytest

from fax_runtime.db import holds_nul


@pytest.mark.parametrize(
    "value",
    ["a\x00b", {"k": "\x00"}, {"k\x00": 1}, {"a": [{"b": ["c", "\x00"]}]}, ("x", "\x00")],
)
def test_nul_is_found_anywhere(value: object) -> None:
    assert holds_nul(value)


@pytest.mark.parametrize("value", ["", "a\\u0000b", {"k": [1, 2.5, None, True, "é"]}, 0, None, b"\x00"])
def test_storable_values_pass(value: object) -> None:
    """Bytes are not text (a document's bytes go to S3); an escaped "\\u0000" written out is six characters."""
    assert not holds_nul(value)
