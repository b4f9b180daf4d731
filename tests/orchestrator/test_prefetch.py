"""When a stable interim transcript and the final one count as the same question."""

from __future__ import annotations

import pytest

from orchestrator.prefetch import same_words


@pytest.mark.parametrize(
    ("interim", "final"),
    [
        ("what are your branch hours", "What are your branch hours?"),
        ("Wait, stop, please.", "wait stop please"),
        ("I'd like a loan", "I'd like a loan."),
    ],
)
def test_case_and_punctuation_do_not_matter(interim: str, final: str) -> None:
    assert same_words(interim) == same_words(final)


def test_other_words_do_not_match() -> None:
    assert same_words("what are your branch hours") != same_words("what are your branch hours on saturday")
    assert same_words("...") == ""
