"""``python -m tts_svc``: serve TtsService on port 50053 (``VOICEBOT_TTS_PORT``)."""

from mesh import serve
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = TtsSettings.from_env()
    serve(TtsApp(settings), settings)


if __name__ == "__main__":
    main()
