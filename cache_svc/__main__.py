"""``python -m cache_svc``: serve CacheService on port 50055 (``VOICEBOT_CACHE_PORT``)."""

from cache_svc.app import CacheApp
from cache_svc.config import CacheSettings
from mesh import serve


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = CacheSettings.from_env()
    serve(CacheApp(settings), settings)


if __name__ == "__main__":
    main()
