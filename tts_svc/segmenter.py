"""Incremental sentence segmentation of streamed text.

Text arrives in deltas cut anywhere (LLM tokens); ``Segmenter.feed`` returns each sentence as
soon as it is known to be complete. A sentence ends at ``.``, ``!``, ``?`` or an ellipsis
(with any closing quotes or brackets) followed by whitespace, or at a line break. The
whitespace matters: "$1." may continue as "$1.50", so a full stop at the very end of the
buffer waits for the next delta (or a flush).

A full stop does not end a sentence after:

- a title or other abbreviation that is followed by more of the sentence ("Dr.", "Mr.",
  "e.g.", "i.e.", "vs.", "No.", "approx.", "Jan.");
- an initialism ("U.S.", "a.m.", "Ph.D.") unless the next word starts a new sentence;
- a single capital letter (the initial in "John F. Kennedy");
- a list number at the start of a line ("1. Pay the bill").

A full stop between digits ("$1,234.56", "3.5%") is never followed by whitespace, so it never
ends a sentence.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Abbreviations that practically never end a sentence: titles and words that need what follows.
NEVER_FINAL = _words(
    "mr mrs ms dr prof rev hon gen col capt lt sgt st mt jr sr vs cf e.g i.e approx no nos dept apt "
    "ave blvd est fig inc ltd corp co jan feb mar apr jun jul aug sep sept oct nov dec tel ext"
)
# Abbreviations that end a sentence only when the next word starts with a capital letter
# (initialisms such as "U.S." and "a.m." also need that word to be a usual sentence start).
MAYBE_FINAL = frozenset(["etc"])
# Words that begin a new sentence after an initialism ("... in the U.S. We ...").
SENTENCE_STARTERS = _words(
    "a an the i we you he she it they this that these those our your my his her their its there here "
    "please thank thanks if when what how why who which is are do does can could would should will "
    "yes no so but and also however then"
)

_END = re.compile(r"(?:\.{3}|…|[.!?]+)[\"'”’)\]]*(?=\s)|\n")
_MARKS = frozenset(".!?…\"'”’)]")
_NEXT_WORD = re.compile(r"\s*[\"'“‘(\[]*([^\s\"'“‘(\[]*)")
_INITIALISM = re.compile(r"^(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}$")


class Segmenter:
    """Turns text deltas into sentences; holds what is not yet a whole sentence.

    Every character fed comes out exactly once, in order, either in a sentence from ``feed``
    or from ``flush`` (leading and trailing whitespace of each segment is trimmed).
    """

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = ""
        self._scan_from = 0

    @property
    def buffered(self) -> int:
        """Characters held that do not yet form a complete sentence."""
        return len(self._buffer)

    def feed(self, text: str) -> list[str]:
        """Append ``text``; return the sentences it completed, in order (maybe none)."""
        buffer = self._buffer + text
        sentences: list[str] = []
        start = 0
        pos = self._scan_from
        waiting_at: int | None = None
        while (match := _END.search(buffer, pos)) is not None:
            pos = match.end()
            if match.group() != "\n":
                ends = _ends_sentence(buffer, match.start(), match.end())
                if ends is None:
                    waiting_at = match.start()
                    break
                if not ends:
                    continue
            sentence = buffer[start : match.end()].strip()
            if sentence:
                sentences.append(sentence)
            start = match.end()
        self._buffer = buffer[start:]
        if waiting_at is not None:
            self._scan_from = waiting_at - start
        else:
            # Punctuation at the very end may still be completed by the next delta.
            self._scan_from = len(self._buffer)
            while self._scan_from and self._buffer[self._scan_from - 1] in _MARKS:
                self._scan_from -= 1
        return sentences

    def flush(self) -> str:
        """Return everything buffered (trimmed, maybe empty) and empty the buffer."""
        text, self._buffer, self._scan_from = self._buffer.strip(), "", 0
        return text


def _ends_sentence(buffer: str, stop: int, after: int) -> bool | None:
    """Whether the punctuation at ``buffer[stop:after]`` ends a sentence; None: wait for more text."""
    mark = buffer[stop]
    if mark in "!?" or buffer[after] == "\n":
        return True
    word = buffer[max(buffer.rfind(c, 0, stop) for c in " \t\n") + 1 : stop]
    bare = word.lstrip("\"'“‘([").lower()
    if mark == "." and not buffer.startswith("...", stop):
        if bare in NEVER_FINAL:
            return False
        if len(bare) == 1 and bare.isalpha() and word[-1].isupper():
            return False
        if bare.isdigit() and _starts_line(buffer, stop - len(word)):
            return False
        if bare not in MAYBE_FINAL and not _INITIALISM.match(bare):
            return True
    # An ellipsis, "etc." or an initialism: the next word decides.
    following = _NEXT_WORD.match(buffer, after)
    next_word = following.group(1) if following else ""
    if not next_word or following is None or following.end() == len(buffer):
        return None
    capital = next_word[0].isupper() or next_word[0].isdigit()
    if mark != "." or buffer.startswith("...", stop) or bare in MAYBE_FINAL:
        return capital
    return capital and next_word.lower().rstrip(".,;:!?") in SENTENCE_STARTERS


def _starts_line(buffer: str, index: int) -> bool:
    """True when only whitespace lies between the last line break (or the start) and ``index``."""
    line_start = buffer.rfind("\n", 0, index) + 1
    return not buffer[line_start:index].strip()


# A long sentence's first clause is spoken on its own so that its audio starts sooner.
FIRST_CLAUSE_MIN_SENTENCE_WORDS = 8
FIRST_CLAUSE_MIN_REST_WORDS = 4
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
_DIGIT_WORDS = _words("zero oh one two three four five six seven eight nine")


def split_first_clause(text: str) -> list[str]:
    """Cut a long spoken sentence after its first clause: ``[first clause, rest]``, or ``[text]``.

    The cut is at the first comma, semicolon or colon, when the sentence has at least 8 words
    and at least 4 follow the cut, and not between spoken digits ("one, eight zero zero").
    """
    if len(text.split()) < FIRST_CLAUSE_MIN_SENTENCE_WORDS:
        return [text]
    for match in _CLAUSE_BREAK.finditer(text):
        head, rest = text[: match.start()], text[match.end() :]
        last_word = head.rsplit(None, 1)[-1].rstrip(",;:").lower()
        if last_word in _DIGIT_WORDS:
            continue
        if len(rest.split()) >= FIRST_CLAUSE_MIN_REST_WORDS:
            return [head, rest]
        break
    return [text]
