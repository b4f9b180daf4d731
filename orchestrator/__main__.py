"""``python -m orchestrator``: serve OrchestratorService on port 50051 (``VOICEBOT_ORCHESTRATOR_PORT``)."""

from mesh import serve
from orchestrator.app import OrchestratorApp
from orchestrator.config import OrchestratorSettings


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = OrchestratorSettings.from_env()
    serve(OrchestratorApp(settings), settings)


if __name__ == "__main__":
    main()
