"""Permission lists run on RE2: linear-time matching, bounded lists, and refusals that say why."""

from __future__ import annotations

import pytest

from fax_runtime.permission_list import MAX_ENTRIES, entry_problem, list_problem, sender_permitted


def test_catastrophic_backtracking_patterns_match_in_linear_time() -> None:
    """``(a+)+$`` took 9 s for a 25-character sender on Python's re, doubling with each character; on RE2 a
    sender of thousands of characters is decided at once (this test would not finish otherwise)."""
    evil = ["(a+)+$", "(x+x+)+y", r"^(([a-z])+.)+[A-Z]([a-z])+$"]
    assert not sender_permitted("a" * 5000 + "!", evil, None, allow_all=False)
    assert not sender_permitted("x" * 5000 + "!", evil, None, allow_all=False)
    assert sender_permitted("a" * 5000, evil, None, allow_all=False)


def test_entries_are_whole_match_case_insensitive_expressions_or_addresses() -> None:
    permissions = ["Boss@Corp.com", r".*@example\.com", "[invalid", 42]
    assert sender_permitted("<boss@corp.com>", permissions, None, allow_all=False)  # type: ignore[arg-type]
    assert sender_permitted("ALICE@Example.com", permissions, None, allow_all=False)  # type: ignore[arg-type]
    assert not sender_permitted("alice@example.com.evil", permissions, None, allow_all=False)  # type: ignore[arg-type]


def test_only_the_first_entries_are_ever_tried() -> None:
    entries = [f"u{n}@x.test" for n in range(MAX_ENTRIES)] + ["late@x.test"]
    assert sender_permitted("u0@x.test", entries, None, allow_all=False)
    assert not sender_permitted("late@x.test", entries, None, allow_all=False)
    assert list_problem(entries) == f"more than {MAX_ENTRIES} entries" and list_problem(entries[:-1]) == ""


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (r"(a)\1", r"backreferences are not supported (invalid escape sequence: \1)"),
        ("(?=a).*", "lookaround is not supported (invalid perl operator: (?=)"),
        ("(?<!a)b", "lookaround is not supported (invalid perl operator: (?<!)"),
        ("(unclosed", "missing ): (unclosed"),
        ("a{1001}", "invalid repetition size: {1001}"),
        ("x" * 1025, "longer than 1024 characters"),
    ],
)
def test_entry_problems_name_the_reason(entry: str, problem: str) -> None:
    assert entry_problem(entry) == problem
    assert not sender_permitted("a@x.test", [entry], None, allow_all=True)  # a refused entry matches nothing


@pytest.mark.parametrize("entry", [r".*@example\.com", "alice@example.com", "(a+)+$", r"(?i)\p{Greek}+@x\.test"])
def test_usable_entries(entry: str) -> None:
    assert entry_problem(entry) == ""
