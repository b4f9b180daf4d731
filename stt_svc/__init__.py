"""stt_svc: streaming speech-to-text (SttService, default port 50052)."""
