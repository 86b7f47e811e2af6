import pytest

from fax_runtime.migrations import bundled_migrations
from fax_runtime.sql import load_queries, parse_queries


def test_named_blocks_are_split_by_name() -> None:
    queries = parse_queries("-- name: one\nSELECT 1;\n\n-- name: two\nSELECT 2\nFROM x;\n")
    assert queries == {"one": "SELECT 1;", "two": "SELECT 2\nFROM x;"}


def test_a_name_defined_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")


@pytest.mark.parametrize(
    ("package", "filename"),
    [
        ("fax_api.accounts", "queries.sql"),
        ("fax_api.faxboxes", "queries.sql"),
        ("fax_api.faxes", "queries.sql"),
        ("fax_api.faxto", "queries.sql"),
        ("fax_fetcher", "sql/queries.sql"),
        ("fax_transmitter", "sql/queries.sql"),
    ],
)
def test_every_service_query_file_parses(package: str, filename: str) -> None:
    assert load_queries(package, filename)


def test_bundled_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert versions == list(range(1, len(versions) + 1))
