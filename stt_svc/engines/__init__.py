"""Engines of stt_svc, one module each: ``faster_whisper`` (the default, embedded and production)."""
