"""Griffin-Lim from kokoro's log-mels, with the run's audio settings: a
Slaney-scale, area-normalised mel filterbank (as kokoro's audio/mel.hpp and
librosa's default), its pseudo-inverse, then phase iterations with
momentum on a periodic Hann window, centred frames."""

import math

import torch

from .checkpoint import RunInfo


def _hz_to_mel(hz: float) -> float:
    return hz * 3.0 / 200.0 if hz < 1000.0 else 15.0 + math.log(hz / 1000.0) * 27.0 / math.log(6.4)


def _mel_to_hz(mel: float) -> float:
    return mel * 200.0 / 3.0 if mel < 15.0 else 1000.0 * math.exp((mel - 15.0) * math.log(6.4) / 27.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float):
    bins = n_fft // 2 + 1
    lo, hi = _hz_to_mel(fmin), _hz_to_mel(fmax)
    edges = [_mel_to_hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    f = torch.arange(bins, dtype=torch.float64) * sample_rate / n_fft
    fb = torch.zeros(n_mels, bins, dtype=torch.float64)
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        rising = (f - left) / (centre - left)
        falling = (right - f) / (right - centre)
        fb[m] = torch.clamp(torch.minimum(rising, falling), min=0.0) * (2.0 / (right - left))
    return fb


def griffin_lim(log_mel: torch.Tensor, info: RunInfo, iterations: int = 48,
                momentum: float = 0.99) -> torch.Tensor:
    """[frames, n_mels] log-mel -> waveform [hop x (frames - 1)]."""
    a = info.audio
    sr, n_fft = int(a.get("sample_rate", 22050)), int(a.get("n_fft", 1024))
    hop, win = int(a.get("hop_length", 256)), int(a.get("win_length", 1024))
    fb = mel_filterbank(sr, n_fft, log_mel.size(1), float(a.get("fmin", 0.0)),
                        float(a.get("fmax", 8000.0)))
    inverse = torch.linalg.pinv(fb).float()
    magnitude = torch.clamp(inverse @ torch.exp(log_mel.detach().float()).t(), min=0.0)
    power = float(a.get("mel_power", 1.0))
    if power != 1.0:
        magnitude = magnitude.pow(1.0 / power)
    window = torch.hann_window(win)
    length = hop * (magnitude.size(1) - 1)
    if length <= 0:
        return torch.zeros(0)
    # The STFT's reflect padding needs more than n_fft / 2 samples: a short
    # clip is extended with silent frames, then cut back to its own length.
    needed = (n_fft // 2) // hop + 2
    if magnitude.size(1) < needed:
        magnitude = torch.cat(
            [magnitude, torch.zeros(magnitude.size(0), needed - magnitude.size(1))], 1)
    padded_length = hop * (magnitude.size(1) - 1)
    angles = torch.exp(2j * math.pi * torch.rand(magnitude.shape))
    previous = torch.zeros_like(angles)
    stft = dict(n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=True)
    for _ in range(iterations):
        wave = torch.istft(magnitude * angles, length=padded_length, **stft)
        rebuilt = torch.stft(wave, return_complex=True, **stft)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        angles = accelerated / accelerated.abs().clamp(min=1e-16)
        previous = rebuilt
    return torch.istft(magnitude * angles, length=padded_length, **stft)[:length]


def save_wav(path: str, samples: torch.Tensor, sample_rate: int) -> None:
    """Mono 16-bit PCM WAV of ``samples`` in [-1, 1] (clipped)."""
    import wave

    pcm = (samples.detach().float().clamp(-1, 1) * 32767).round().short().numpy().tobytes()
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm)
