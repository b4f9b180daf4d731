"""The committed paraphrase and opposite sets, through gRPC, with both embedders.

tests/cache_svc/data/paraphrases.jsonl: banking FAQ questions (stored with their answers) and a
paraphrase of each (looked up). opposites.jsonl: a stored question and a probe that must never
hit it (negated, opposite polarity, or a changed number, amount or date). Each set is stored in
one scope, so a lookup may also hit any other entry: a paraphrase hitting another question's
entry counts as wrong, and a probe hitting anything at the default threshold is a false hit
(at threshold 0, only a hit on the probe's own opposite is).
Run with ``-s`` to see the hit rates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.cache_svc.conftest import RunningCache, StartCache, read_jsonl, scope
from voicebot.v1 import cache_service_pb2 as pb

PARAPHRASES = read_jsonl("paraphrases.jsonl")
OPPOSITES = read_jsonl("opposites.jsonl")
FAQ = scope(intent="faq")
OPPOSITE = scope(intent="opposites")


@dataclass
class Score:
    right: int
    wrong: list[str]
    missed: list[str]
    false_hits: list[str]
    false_hits_any_threshold: list[str]

    @property
    def hit_rate(self) -> float:
        return self.right / len(PARAPHRASES)


async def warm(cache: RunningCache) -> dict[tuple[str, str], str]:
    """Store both sets; returns each stored question's entry id."""

    async def pairs() -> AsyncIterator[pb.WarmRequest]:
        for row in PARAPHRASES:
            yield pb.WarmRequest(query=row["query"], answer=row["answer"], scope=FAQ)
        for row in OPPOSITES:
            yield pb.WarmRequest(query=row["stored"], answer="A general answer.", scope=OPPOSITE)

    summary = await cache.stub.Warm(pairs())
    assert summary.refused_count == 0, list(summary.refusals)
    assert summary.created_count == len(PARAPHRASES) + len(OPPOSITES)
    ids: dict[tuple[str, str], str] = {}
    for row in PARAPHRASES:
        ids["faq", row["query"]] = (await cache.lookup(row["query"], scope=FAQ)).entry_id
    for row in OPPOSITES:
        ids["opposite", row["stored"]] = (await cache.lookup(row["stored"], scope=OPPOSITE)).entry_id
    return ids


async def score(cache: RunningCache) -> Score:
    ids = await warm(cache)
    result = Score(0, [], [], [], [])
    for row in PARAPHRASES:
        reply = await cache.lookup(row["paraphrase"], scope=FAQ)
        if not reply.hit:
            result.missed.append(f"{row['paraphrase']} ({reply.similarity:.2f})")
        elif reply.entry_id == ids["faq", row["query"]]:
            result.right += 1
        else:
            result.wrong.append(f"{row['paraphrase']} -> {reply.answer}")
    for row in OPPOSITES:
        if (await cache.lookup(row["probe"], scope=OPPOSITE)).hit:
            result.false_hits.append(row["probe"])
        # At threshold 0 anything compatible may hit, so only a hit on the probe's own opposite counts.
        reply = await cache.lookup(row["probe"], scope=OPPOSITE, threshold=0.0)
        if reply.hit and reply.entry_id == ids["opposite", row["stored"]]:
            result.false_hits_any_threshold.append(row["probe"])
    return result


def report(name: str, result: Score) -> None:
    print(
        f"\n{name}: paraphrases hit {result.right}/{len(PARAPHRASES)} ({result.hit_rate:.0%}), "
        f"wrong entry {len(result.wrong)}, opposite/number-changed false hits "
        f"{len(result.false_hits)}/{len(OPPOSITES)} (at threshold 0: {len(result.false_hits_any_threshold)})"
    )
    for line in result.missed:
        print(f"  missed: {line}")


def test_data_sets_are_big_enough() -> None:
    assert len(PARAPHRASES) >= 40
    assert len(OPPOSITES) >= 40
    assert {row["kind"] for row in OPPOSITES} == {"polarity", "negation", "number", "date"}


async def test_hashing_embedder_never_hits_an_opposite(start_cache: StartCache) -> None:
    cache = await start_cache(engine="hashing")
    result = await score(cache)
    report("hashing-ngram-384", result)
    assert result.false_hits == []
    assert result.false_hits_any_threshold == []
    assert result.wrong == []
    # Its hit rate is reported (docs/cache.md), not a target; this only catches a broken embedder.
    assert result.hit_rate >= 0.3


@pytest.mark.slow
async def test_minilm_hits_most_paraphrases_and_never_an_opposite(start_cache: StartCache) -> None:
    cache = await start_cache(engine="minilm")
    assert (await cache.stub.GetStats(pb.GetStatsRequest())).embedder == "all-MiniLM-L6-v2"
    result = await score(cache)
    report("all-MiniLM-L6-v2", result)
    assert result.false_hits == []
    assert result.false_hits_any_threshold == []
    assert result.wrong == []
    assert result.hit_rate >= 0.8
