"""The template's own test tree, as pytest's default import mode needs it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_name() -> None:
    # The tiers are no packages: pytest imports each test file by its name alone, so a second
    # file of the same name fails the collection and none of its tests runs.
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
