"""The incremental sentence segmenter: abbreviations, decimals, currency, deltas cut anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tts_svc.segmenter import Segmenter, split_first_clause


def segment(*deltas: str) -> tuple[list[str], str]:
    segmenter = Segmenter()
    sentences: list[str] = []
    for delta in deltas:
        sentences += segmenter.feed(delta)
    return sentences, segmenter.flush()


@pytest.mark.parametrize(
    ("text", "sentences", "rest"),
    [
        ("Hello there. How are you? Fine! ", ["Hello there.", "How are you?", "Fine!"], ""),
        ("Your balance is $1,234.56. Thanks. ", ["Your balance is $1,234.56.", "Thanks."], ""),
        ("Rates are 3.5% now. Okay", ["Rates are 3.5% now."], "Okay"),
        ("Dr. Smith and Mr. Jones met Mrs. Lee. Done. ", ["Dr. Smith and Mr. Jones met Mrs. Lee.", "Done."], ""),
        (
            "Bring ID, e.g. a passport, i.e. photo ID. Next. ",
            ["Bring ID, e.g. a passport, i.e. photo ID.", "Next."],
            "",
        ),
        ("The U.S. Treasury sets it. Yes. ", ["The U.S. Treasury sets it.", "Yes."], ""),
        ("We operate in the U.S. We also lend. ", ["We operate in the U.S.", "We also lend."], ""),
        ("Open at 9 a.m. Please call. ", ["Open at 9 a.m.", "Please call."], ""),
        ("Fees, loans, etc. are listed. Bye. ", ["Fees, loans, etc. are listed.", "Bye."], ""),
        ("John F. Kennedy Airport. Go. ", ["John F. Kennedy Airport.", "Go."], ""),
        ("Wait... what? Hmm... Okay. ", ["Wait... what?", "Hmm...", "Okay."], ""),
        ('He said "Yes." Then left. ', ['He said "Yes."', "Then left."], ""),
        ("Steps:\n1. Log in\n2. Pay.\nDone", ["Steps:", "1. Log in", "2. Pay."], "Done"),
        ("See No. 5 below. Ok. ", ["See No. 5 below.", "Ok."], ""),
        ("Due Jan. 5 at the latest. Ok. ", ["Due Jan. 5 at the latest.", "Ok."], ""),
        ("No end yet", [], "No end yet"),
        ("Ends with a stop.", [], "Ends with a stop."),
    ],
)
def test_sentences(text: str, sentences: list[str], rest: str) -> None:
    assert segment(text) == (sentences, rest)


def test_a_full_stop_at_the_end_waits_for_what_follows() -> None:
    segmenter = Segmenter()
    assert segmenter.feed("You paid $1") == []
    assert segmenter.feed(".") == []
    assert segmenter.feed("50 today.") == []
    assert segmenter.feed(" Next") == ["You paid $1.50 today."]
    assert segmenter.flush() == "Next"
    assert segmenter.buffered == 0


def test_an_initialism_at_the_end_waits_for_the_next_word() -> None:
    segmenter = Segmenter()
    assert segmenter.feed("Rates in the U.S. ") == []
    assert segmenter.feed("Trea") == []
    assert segmenter.feed("sury are up. ") == ["Rates in the U.S. Treasury are up."]


def test_each_sentence_comes_out_as_soon_as_it_is_complete() -> None:
    segmenter = Segmenter()
    out = [segmenter.feed(d) for d in ["Hi", " there.", " How", " are you?", " "]]
    assert out == [[], [], ["Hi there."], [], ["How are you?"]]


def test_buffered_counts_what_is_held() -> None:
    segmenter = Segmenter()
    segmenter.feed("One. Two thr")
    assert segmenter.buffered == len(" Two thr")
    assert segmenter.flush() == "Two thr"
    assert segmenter.flush() == ""


TEXT = (
    "Your balance is $1,234.56. Dr. Smith, e.g. our U.S. adviser, called at 9 a.m. today! "
    "Is a 3.5% rate fine? The loan... well. It's approx. 36 months.\nThanks. "
)


@given(st.lists(st.integers(min_value=0, max_value=len(TEXT)), max_size=20))
def test_any_cut_of_the_deltas_gives_the_same_sentences(cuts: list[int]) -> None:
    points = sorted({0, len(TEXT), *cuts})
    deltas = [TEXT[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert segment(*deltas) == segment(TEXT)


@given(st.text(alphabet=st.sampled_from(list("ab .!?$1,\n\"'")), max_size=60))
def test_no_text_is_lost_or_duplicated(text: str) -> None:
    sentences, rest = segment(text)
    assert "".join(sentences + [rest]).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize(
    ("spoken", "parts"),
    [
        (
            "Sure, your current balance is one hundred dollars.",
            ["Sure,", "your current balance is one hundred dollars."],
        ),
        (
            "Your balance, as of today, is ten dollars and no cents.",
            ["Your balance,", "as of today, is ten dollars and no cents."],
        ),
        ("Okay, thanks.", ["Okay, thanks."]),
        ("One two three four five six seven, eight.", ["One two three four five six seven, eight."]),
        (
            "No clause here at all in this rather long sentence.",
            ["No clause here at all in this rather long sentence."],
        ),
        (
            "Call one, eight zero zero, five five five, for help today.",
            ["Call one, eight zero zero, five five five, for help today."],
        ),
        ("Note: the branch closes at five p m on Fridays.", ["Note:", "the branch closes at five p m on Fridays."]),
    ],
)
def test_a_long_sentence_gives_its_first_clause_alone(spoken: str, parts: list[str]) -> None:
    assert split_first_clause(spoken) == parts
