"""Which model time a turn counts as waited for: until the text of the first spoken segment was written."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.turn import Turn


def turn_after(answer_deltas: list[tuple[str, int]], first_segment: str) -> Turn:
    """A turn whose model streamed ``answer_deltas`` (text, elapsed ms); its first audio spoke ``first_segment``."""
    speaker = SimpleNamespace(first_segment_text=first_segment)
    turn = Turn(ctx=None, speaker=speaker, index=0, given=None)  # type: ignore[arg-type]
    for text, elapsed in answer_deltas:
        turn.result.answer += text
        turn._delta_marks.append((len(turn.result.answer), elapsed))
    return turn


DELTAS = [("Our branches", 12), (" open at nine.", 30), (" Anything", 41), (" else?", 55)]


def test_the_delta_that_completes_the_first_segment_counts() -> None:
    assert turn_after(DELTAS, "Our branches open at nine.")._llm_ms_to_first_segment() == 30


def test_a_first_clause_spoken_alone_counts_up_to_its_end() -> None:
    assert turn_after(DELTAS, "Our branches")._llm_ms_to_first_segment() == 12


def test_first_audio_that_is_not_answer_text_counts_nothing() -> None:
    assert turn_after(DELTAS, "One moment please.")._llm_ms_to_first_segment() is None
    assert turn_after([], "Our branches open at nine.")._llm_ms_to_first_segment() is None
