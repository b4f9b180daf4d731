"""voicebot: the SDK of the voicebot mesh. Generated stubs live in ``voicebot.v1``."""
