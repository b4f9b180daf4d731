"""TTS engines, one module each; ``tts_svc.app`` picks one by ``VOICEBOT_TTS_ENGINE``."""
