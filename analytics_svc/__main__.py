"""``python -m analytics_svc``: serve AnalyticsService on port 50056 (``VOICEBOT_ANALYTICS_PORT``)."""

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from mesh import serve


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = AnalyticsSettings.from_env()
    serve(AnalyticsApp(settings), settings)


if __name__ == "__main__":
    main()
