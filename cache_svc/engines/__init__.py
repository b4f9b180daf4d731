"""Embedders of cache_svc, one module each; :func:`build` picks one by name."""

from __future__ import annotations

from cache_svc.config import ENGINES, CacheSettings
from cache_svc.engine import Embedder
from mesh.settings import SettingsError


def build(settings: CacheSettings) -> Embedder:
    """The embedder ``settings.engine`` names (not loaded yet).

    Raises:
        SettingsError: an unknown engine name.
    """
    if settings.engine == "hashing":
        from cache_svc.engines.hashing import HashingEmbedder

        return HashingEmbedder()
    if settings.engine == "minilm":
        from cache_svc.engines.minilm import MiniLMEmbedder

        return MiniLMEmbedder(settings.minilm_path, settings.torch_threads)
    raise SettingsError(f"VOICEBOT_CACHE_ENGINE={settings.engine!r} is not one of {', '.join(ENGINES)}")
