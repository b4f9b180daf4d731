"""Audio framing: formats, LINEAR16 and G.711 mu-law codecs, resampling, chunking.

Engines work on mono float32 samples in [-1, 1]; the wire carries LINEAR16 or mu-law bytes.
Everything here is pure numpy plus soxr for resampling, and fast enough to run on the event loop
for 20-100 ms frames (a 100 ms frame decodes and resamples in tens of microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from mesh.errors import InvalidArgument
from voicebot.v1 import audio_pb2

LINEAR16 = audio_pb2.AUDIO_ENCODING_LINEAR16
MULAW = audio_pb2.AUDIO_ENCODING_MULAW


@dataclass(frozen=True)
class PcmFormat:
    """A validated audio format. ``encoding`` is an ``AudioEncoding`` value."""

    encoding: int
    sample_rate_hertz: int
    channels: int = 1

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample across all channels."""
        return (2 if self.encoding == LINEAR16 else 1) * self.channels

    def duration_ms(self, n_bytes: int) -> float:
        """Duration of ``n_bytes`` of audio, in milliseconds."""
        return 1000.0 * n_bytes / (self.bytes_per_frame * self.sample_rate_hertz)

    def bytes_for_ms(self, ms: float) -> int:
        """Bytes in ``ms`` milliseconds, rounded down to whole frames."""
        return int(self.sample_rate_hertz * ms / 1000) * self.bytes_per_frame

    def to_proto(self) -> audio_pb2.AudioFormat:
        """The wire form."""
        encoding = audio_pb2.AudioEncoding.ValueType(self.encoding)
        rate = self.sample_rate_hertz
        return audio_pb2.AudioFormat(encoding=encoding, sample_rate_hertz=rate, channels=self.channels)


def validate_format(
    fmt: audio_pb2.AudioFormat,
    *,
    linear16_rates: tuple[int, ...],
    mulaw_rates: tuple[int, ...] = (8000,),
    max_channels: int = 2,
    field: str = "audio_format",
) -> PcmFormat:
    """Check a wire format against what a service accepts.

    Raises:
        InvalidArgument: naming the field and what is accepted.
    """
    channels = fmt.channels or 1
    if fmt.encoding == LINEAR16:
        rates = linear16_rates
    elif fmt.encoding == MULAW:
        rates = mulaw_rates
    else:
        known = fmt.encoding in audio_pb2.AudioEncoding.values()
        got = audio_pb2.AudioEncoding.Name(fmt.encoding) if known else str(fmt.encoding)
        raise InvalidArgument(f"{field}.encoding must be LINEAR16 or MULAW, got {got}")
    if fmt.sample_rate_hertz not in rates:
        name = audio_pb2.AudioEncoding.Name(fmt.encoding).removeprefix("AUDIO_ENCODING_")
        accepted = ", ".join(str(r) for r in rates)
        raise InvalidArgument(
            f"{field}.sample_rate_hertz {fmt.sample_rate_hertz} is not supported for {name}; use one of {accepted}"
        )
    if not 1 <= channels <= max_channels:
        raise InvalidArgument(f"{field}.channels must be 1..{max_channels}, got {fmt.channels}")
    return PcmFormat(fmt.encoding, fmt.sample_rate_hertz, channels)


def _mulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.uint8)
    sign = (codes & 0x80) != 0
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    linear = np.where(sign, 0x84 - magnitude, magnitude - 0x84)
    return linear.astype(np.int16)


_MULAW_TO_LINEAR = _mulaw_decode_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes to int16 samples."""
    return _MULAW_TO_LINEAR[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples to G.711 mu-law bytes (the ITU reference: 14-bit magnitude, bias 33)."""
    pcm = samples.astype(np.int32) >> 2
    negative = pcm < 0
    magnitude = np.minimum(np.where(negative, -pcm, pcm), 8159) + 33
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8).tobytes()


_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def decode(data: bytes, fmt: PcmFormat) -> np.ndarray:
    """Wire bytes to mono float32 samples in [-1, 1].

    Raises:
        InvalidArgument: the byte count is not a whole number of frames.
    """
    if len(data) % fmt.bytes_per_frame:
        unit = "sample" if fmt.channels == 1 else f"{fmt.channels}-channel frame"
        raise InvalidArgument(
            f"audio chunk of {len(data)} bytes is not a whole number of {fmt.bytes_per_frame}-byte {unit}s"
        )
    pcm = np.frombuffer(data, dtype="<i2") if fmt.encoding == LINEAR16 else mulaw_decode(data)
    samples = pcm.astype(np.float32) / 32768.0
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1)
    return samples


def encode(samples: np.ndarray, fmt: PcmFormat) -> bytes:
    """Mono float32 samples to wire bytes in ``fmt`` (channels are duplicated when > 1)."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    if fmt.channels > 1:
        pcm = np.repeat(pcm, fmt.channels)
    if fmt.encoding == MULAW:
        return mulaw_encode(pcm)
    return pcm.astype("<i2").tobytes()


class Resampler:
    """Streaming sample-rate conversion of mono float32 audio (soxr, high quality).

    Feed chunks in order; the filter's state carries across chunks, so there are no clicks at
    chunk boundaries. ``flush`` returns the tail held back by the filter.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """Convert from ``in_rate`` to ``out_rate`` hertz (a no-op when equal)."""
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next chunk."""
        if self._stream is None:
            return samples
        out: np.ndarray = self._stream.resample_chunk(samples.astype(np.float32, copy=False))
        return out

    def flush(self) -> np.ndarray:
        """Return what the filter still holds at the end of the stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        out: np.ndarray = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        return out


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole signal at once."""
    if in_rate == out_rate:
        return samples
    out: np.ndarray = soxr.resample(samples.astype(np.float32, copy=False), in_rate, out_rate)
    return out.astype(np.float32, copy=False)


def split_chunks(data: bytes, fmt: PcmFormat, max_ms: float) -> list[bytes]:
    """Split wire audio into chunks of at most ``max_ms`` milliseconds of whole frames."""
    step = max(fmt.bytes_per_frame, fmt.bytes_for_ms(max_ms))
    return [data[i : i + step] for i in range(0, len(data), step)]
