"""Settings of llm_svc: every field is read from ``VOICEBOT_LLM_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, SettingsError, read_secret, setting


@dataclass(frozen=True)
class LlmSettings(ServiceSettings):
    """Settings of llm_svc."""

    service: ClassVar[str] = "llm"
    port: int = setting(50054, "gRPC port; 0 picks a free port.")
    engine: str = setting(
        "banking",
        "Engine: 'banking' (deterministic banking dialogue, no model, the embedded default), 'vllm' "
        "(a vLLM server, or any OpenAI-compatible one, through its HTTP API) or 'timed' (a fixed answer at "
        "production-like latency, for load tests of the mesh).",
    )
    vllm_base_url: str = setting(
        "http://127.0.0.1:8000", "Base URL of the vLLM (OpenAI-compatible) server, without '/v1'."
    )
    vllm_api_key: str = setting("", "API key sent as 'Authorization: Bearer' to the model server; empty sends none.")
    vllm_api_key_file: str = setting("", "File holding the model server's API key (wins over VLLM_API_KEY).")
    model: str = setting(
        "", "Base model name as the model server serves it; empty takes the first base model of /v1/models."
    )
    request_timeout_s: float = setting(
        60.0, "Longest one generation or adapter call may take on the model server, in s; then DEADLINE_EXCEEDED."
    )
    connect_timeout_s: float = setting(2.0, "Timeout of one TCP connect to the model server, in seconds.")
    connect_retries: int = setting(
        2, "Retries of a failed connect to the model server (connect errors only; a started request is never retried)."
    )
    max_connections: int = setting(100, "Pooled HTTP connections to the model server (1-10000).")
    health_path: str = setting(
        "/health",
        "Liveness path of the model server, checked before every warm-up; empty skips it (servers without one).",
    )
    health_interval_s: float = setting(
        10.0, "Seconds between health re-checks with a real one-token generation; 0 turns them off."
    )
    health_timeout_s: float = setting(10.0, "Deadline of one health re-check (liveness and one-token generation), s.")
    startup_retry_s: float = setting(
        5.0, "Seconds between warm-up attempts while the model server is not up yet (health stays NOT_SERVING)."
    )
    context_tokens: int = setting(
        32768,
        "Context window of the model in tokens: prompt (estimated at 4 characters a token) plus max_tokens "
        "above it is refused with INVALID_ARGUMENT.",
    )
    default_max_tokens: int = setting(256, "max_tokens of a request that leaves it 0 (1-4096).")
    timed_answer: str = setting(
        "Our branches are open Monday to Friday from nine to five. Is there anything else I can help you with?",
        "Engine 'timed': the answer it streams, one word per delta.",
    )
    timed_tool: str = setting(
        "loan_payment",
        "Engine 'timed': the tool it calls first when the request offers it (then answers after the tool result); "
        "empty never calls tools.",
    )
    timed_tool_arguments: str = setting(
        '{"principal": 20000, "annual_rate_percent": 6, "term_months": 60}',
        "Engine 'timed': the JSON object of arguments of that tool call.",
    )
    timed_ttft_ms: int = setting(150, "Engine 'timed': time to the first delta of each generation, in ms (0-10000).")
    timed_token_ms: int = setting(30, "Engine 'timed': time between deltas, in ms (0-1000).")

    def __post_init__(self) -> None:
        """Refuse values no engine can work with, naming the variable."""
        limits = {
            "default_max_tokens": (1, 4096),
            "context_tokens": (1, 10_000_000),
            "max_connections": (1, 10_000),
            "connect_retries": (0, 100),
            "timed_ttft_ms": (0, 10_000),
            "timed_token_ms": (0, 1000),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{self.env_name(name)}={value}: allowed {low}-{high}")
        for name in ("request_timeout_s", "connect_timeout_s", "health_timeout_s", "startup_retry_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{self.env_name(name)}={getattr(self, name)}: must be above 0")

    @property
    def api_key(self) -> str:
        """The model server's API key: the file wins over the value."""
        return read_secret(self.vllm_api_key, self.vllm_api_key_file)
