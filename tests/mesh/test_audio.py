"""Audio codecs, validation, resampling and chunking."""

from __future__ import annotations

import numpy as np
import pytest

from mesh import audio
from mesh.errors import InvalidArgument
from voicebot.v1 import audio_pb2

PCM16K = audio.PcmFormat(audio.LINEAR16, 16000)
ULAW8K = audio.PcmFormat(audio.MULAW, 8000)


def test_mulaw_matches_the_g711_reference_tables() -> None:
    audioop = pytest.importorskip("audioop")
    every_sample = np.arange(-32768, 32768, dtype=np.int16)
    assert audio.mulaw_encode(every_sample) == audioop.lin2ulaw(every_sample.tobytes(), 2)
    every_code = bytes(range(256))
    assert audio.mulaw_decode(every_code).tobytes() == audioop.ulaw2lin(every_code, 2)


def test_mulaw_known_values() -> None:
    assert audio.mulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)) == bytes([0xFF, 0x80, 0x00])


def test_validate_accepts_listed_rates_and_names_the_problem_otherwise() -> None:
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=48000, channels=2)
    assert audio.validate_format(fmt, linear16_rates=(16000, 48000)) == audio.PcmFormat(audio.LINEAR16, 48000, 2)
    bad_rate = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=16000)
    with pytest.raises(InvalidArgument, match="16000 is not supported for MULAW; use one of 8000"):
        audio.validate_format(bad_rate, linear16_rates=(16000,))
    with pytest.raises(InvalidArgument, match="encoding must be LINEAR16 or MULAW, got AUDIO_ENCODING_UNSPECIFIED"):
        audio.validate_format(audio_pb2.AudioFormat(), linear16_rates=(16000,))
    three = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channels=3)
    with pytest.raises(InvalidArgument, match="channels must be 1..2"):
        audio.validate_format(three, linear16_rates=(16000,))


def test_decode_rejects_half_samples_and_mixes_stereo_down() -> None:
    with pytest.raises(InvalidArgument, match="3 bytes is not a whole number of 2-byte samples"):
        audio.decode(b"abc", PCM16K)
    stereo = np.array([1000, 3000, -2000, 0], dtype="<i2").tobytes()
    mono = audio.decode(stereo, audio.PcmFormat(audio.LINEAR16, 16000, 2))
    assert np.allclose(mono * 32768, [2000, -1000])


def test_encode_decode_round_trip_in_both_encodings() -> None:
    signal = (0.5 * np.sin(np.linspace(0, 40 * np.pi, 1600))).astype(np.float32)
    assert np.max(np.abs(audio.decode(audio.encode(signal, PCM16K), PCM16K) - signal)) < 1e-4
    assert np.max(np.abs(audio.decode(audio.encode(signal, ULAW8K), ULAW8K) - signal)) < 0.02


def test_streaming_resampler_matches_one_shot_and_keeps_length() -> None:
    rate_in, rate_out = 48000, 16000
    signal = np.sin(2 * np.pi * 440 * np.arange(rate_in) / rate_in).astype(np.float32)
    stream = audio.Resampler(rate_in, rate_out)
    pieces = [stream.process(signal[i : i + 960]) for i in range(0, len(signal), 960)]
    out = np.concatenate([*pieces, stream.flush()])
    assert abs(len(out) - rate_out) <= 2
    whole = audio.resample(signal, rate_in, rate_out)
    assert np.max(np.abs(out[: len(whole)] - whole[: len(out)])) < 1e-3


def test_split_chunks_cuts_whole_frames_of_at_most_max_ms() -> None:
    data = bytes(PCM16K.bytes_for_ms(250))
    chunks = audio.split_chunks(data, PCM16K, 100)
    assert [PCM16K.duration_ms(len(c)) for c in chunks] == [100, 100, 50]
