"""Event stores, one module each; ``build_store`` picks one by ``settings.engine``."""

from __future__ import annotations

from analytics_svc.config import AnalyticsSettings
from analytics_svc.engine import CommitListener, EventStore
from mesh.settings import SettingsError

ENGINES = ("sqlite",)


def build_store(settings: AnalyticsSettings, on_commit: CommitListener | None = None) -> EventStore:
    """The store named by ``settings.engine``.

    Raises:
        SettingsError: the engine is unknown.
    """
    if settings.engine == "sqlite":
        from analytics_svc.engines.sqlite import SqliteStore

        return SqliteStore(settings, on_commit)
    raise SettingsError(
        f"{AnalyticsSettings.env_name('engine')}={settings.engine!r}: unknown engine (known: {', '.join(ENGINES)})"
    )
