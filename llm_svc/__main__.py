"""``python -m llm_svc``: serve LlmService on port 50054 (``VOICEBOT_LLM_PORT``)."""

from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from mesh import serve


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = LlmSettings.from_env()
    serve(LlmApp(settings), settings)


if __name__ == "__main__":
    main()
