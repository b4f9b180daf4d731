"""tts_svc: streaming text-to-speech (TtsService, default port 50053)."""
