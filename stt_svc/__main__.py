"""``python -m stt_svc``: serve SttService on port 50052 (``VOICEBOT_STT_PORT``)."""

from mesh import serve
from stt_svc.app import SttApp
from stt_svc.config import SttSettings


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = SttSettings.from_env()
    serve(SttApp(settings), settings)


if __name__ == "__main__":
    main()
