"""Settings of the orchestrator: every field is read from ``VOICEBOT_ORCHESTRATOR_<FIELD>``.

The dependency targets are shared settings, so ``VOICEBOT_STT_TARGET`` (what ``voicebot up``,
compose and Helm set) works as well as ``VOICEBOT_ORCHESTRATOR_STT_TARGET``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class OrchestratorSettings(ServiceSettings):
    """Settings of the orchestrator."""

    service: ClassVar[str] = "orchestrator"
    port: int = setting(50051, "gRPC port; 0 picks a free port.")
    engine: str = setting("pipeline", "Call engine; only `pipeline` (stt -> cache -> llm + tools -> tts).")
    stt_target: str = setting("127.0.0.1:50052", "host:port of stt_svc.", shared=True)
    tts_target: str = setting("127.0.0.1:50053", "host:port of tts_svc.", shared=True)
    llm_target: str = setting("127.0.0.1:50054", "host:port of llm_svc.", shared=True)
    cache_target: str = setting("127.0.0.1:50055", "host:port of cache_svc.", shared=True)
    analytics_target: str = setting("127.0.0.1:50056", "host:port of analytics_svc.", shared=True)
    replica: str = setting(socket.gethostname(), "Name of this replica, shown in sessions and GetStatus.")
    session_store: str = setting("memory", "Where sessions live: `memory` (one replica) or `redis` (shared).")
    redis_url: str = setting("redis://127.0.0.1:6379/0", "Redis URL for `session_store=redis`.", shared=True)
    session_ttl_s: int = setting(3600, "Seconds a detached session stays resumable.")
    lease_s: float = setting(15.0, "Seconds a call's hold on its session lasts without renewal (crash detection).")
    max_calls: int = setting(200, "Calls this replica runs at once; more are refused with RESOURCE_EXHAUSTED.")
    rate_limit_calls_per_minute: float = setting(
        30.0, "Calls one caller (caller_id, else peer host) may start per minute; 0 turns the limit off."
    )
    rate_limit_burst: int = setting(10, "Calls one caller may start back to back before the per-minute rate applies.")
    rate_limit_max_concurrent: int = setting(3, "Calls one caller may hold open at once; 0 turns the cap off.")
    rate_limit_peer_scale: int = setting(
        20,
        "Calls with no caller_id share one budget per peer host (a gateway carries many callers): it gets "
        "the per-caller limits times this; 0 exempts them.",
    )
    rate_limit_max_callers: int = setting(
        100000, "Callers whose rate-limit state is kept; idle callers are forgotten first (bounds memory)."
    )
    drain_refuse_s: float = setting(
        2.0,
        "After SIGTERM, keep answering new calls with UNAVAILABLE for at least this long (within the grace) "
        "while load balancers notice NOT_SERVING; a stopped server would cancel them instead.",
    )
    max_call_s: int = setting(3600, "Longest call, in seconds; also the deadline of its speech-to-text stream.")
    idle_timeout_s: int = setting(120, "A call with no caller audio or text for this long ends (reason TIMEOUT).")
    history_messages: int = setting(40, "Conversation messages kept per session and sent to the model.")
    llm_timeout_s: float = setting(20.0, "Deadline of one generation, in seconds.")
    tts_timeout_s: float = setting(30.0, "Deadline of one turn's synthesis stream, in seconds.")
    cache_timeout_s: float = setting(
        0.25, "Deadline of a cache lookup or store, in seconds; on expiry the turn goes on."
    )
    status_timeout_s: float = setting(1.0, "Deadline of each dependency health check in GetStatus, in seconds.")
    prefetch_stability: float = setting(
        0.9,
        "Interim transcripts at least this stable (0-1) start the turn's cache lookup before the final "
        "transcript; above 1 turns prefetching off.",
    )
    filler_after_ms: int = setting(
        800, 'While tools run, say the filler ("One moment please.") if the answer has not started by then; 0 = never.'
    )
    max_tool_rounds: int = setting(4, "Model -> tools -> model rounds per turn before the bot apologises.")
    barge_in_min_speech_ms: int = setting(300, "Caller speech over bot audio that interrupts it, in ms (100-2000).")
    backchannel_words: tuple[str, ...] = setting(
        ("mhm", "mm", "hmm", "uh", "huh", "okay", "ok", "yeah", "yes", "yep", "right", "sure", "alright", "uh-huh"),
        "Comma-separated words that alone never interrupt the bot or start a turn.",
    )
    tenant: str = setting("demo-bank", "Default tenant (cache scope) for calls that name none.")
    default_voice: str = setting("", "TTS voice for calls that name none; empty means the engine default.")
    default_adapter: str = setting("", "LoRA adapter for calls that name none; empty means the base model.")
    accounts_db: str = setting(
        ":memory:", "SQLite file of the accounts store; `:memory:` keeps a private DEMO store seeded at start-up."
    )
    events_buffer: int = setting(10000, "Analytics events held in memory while analytics is slow or down.")
    events_spill_dir: str = setting(
        ".voicebot/events-spill", "Folder where events overflow to disk when the buffer is full."
    )
    prompt_warmup_s: float = setting(
        30.0, "Seconds start-up waits for tts_svc to pre-synthesise prompts before serving."
    )
