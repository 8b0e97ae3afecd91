"""The Kokoro TTS model in PyTorch, module for module as kokoro's C++ model
(include/kokoro/tts/model/kokoro_model.hpp and the blocks it uses), with the
same parameter names, so that a checkpoint's ``model_state_dict`` loads
strictly and gives the same outputs.

Two things are written differently from the C++ code, with the same result:
the length regulator multiplies by a frame-by-phoneme one-hot matrix instead
of searching the duration sums (``torch.searchsorted`` has no ONNX export),
and generation runs the whole causal decoder on the frames so far at every
step instead of keeping a key/value cache.
"""

import math
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass
class ModelShape:
    """The model's shape: the C++ KokoroModelOptions that matter at inference."""

    vocab_size: int
    n_mels: int = 80
    hidden_dim: int = 512
    encoder_layers: int = 6
    decoder_layers: int = 6
    num_heads: int = 8
    ff_dim: int = 2048
    postnet: bool = True
    postnet_channels: int = 512
    postnet_kernel: int = 5
    postnet_layers: int = 5


def sinusoidal_positions(length: int, dim: int, offset: int = 0, device=None) -> Tensor:
    """[length, dim]: sin on even columns, cos on odd ones, of position x
    10000^(-2i/dim), as nn::sinusoidal_positions."""
    position = torch.arange(offset, offset + length, dtype=torch.float32, device=device).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    angle = position * frequency
    # Interleaved by stacking, not by slice assignment, which ONNX export
    # does not take.
    half = dim // 2
    table = torch.stack([angle[:, :half].sin(), angle[:, :half].cos()], -1).reshape(-1, 2 * half)
    if dim % 2:
        table = torch.cat([table, angle[:, half:].sin()], 1)
    return table


def blocked_keys(key_mask: Optional[Tensor], causal: bool, length: int, frames: int,
                 device) -> Optional[Tensor]:
    """True where a query may not attend, broadcastable to [B, heads, L, S]."""
    blocked = None
    if key_mask is not None:
        blocked = (~key_mask).view(key_mask.size(0), 1, 1, frames)
    if causal and length > 1:
        future = torch.ones(length, frames, dtype=torch.bool, device=device).triu(
            frames - length + 1).view(1, 1, length, frames)
        blocked = future if blocked is None else blocked.logical_or(future)
    return blocked


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, source: Tensor, key_mask: Optional[Tensor] = None,
                causal: bool = False) -> Tensor:
        q, k, v = self._split(self.q(query)), self._split(self.k(source)), self._split(self.v(source))
        blocked = blocked_keys(key_mask, causal, query.size(1), source.size(1), query.device)
        scores = torch.matmul(q * (1.0 / math.sqrt(self.head_dim)), k.transpose(-2, -1))
        if blocked is not None:
            scores = scores.masked_fill(blocked, -1e9)
        mixed = torch.matmul(torch.softmax(scores, -1), v)
        b, _, length, _ = mixed.shape
        return self.out(mixed.transpose(1, 2).reshape(b, length, self.heads * self.head_dim))


class GatedFeedForward(nn.Module):
    """Linear(dim, 2 hidden) split into value and gate, GELU(gate) x value,
    Linear(hidden, dim). The first layer is named ``in``, a Python keyword."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.add_module("in", nn.Linear(dim, 2 * hidden))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        first = self._modules["in"]
        h = self.hidden
        value = F.linear(x, first.weight[:h], first.bias[:h])
        gate = F.linear(x, first.weight[h:], first.bias[h:])
        return self.out(value * F.gelu(gate))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int):
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = MultiHeadAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = GatedFeedForward(dim, ff_dim)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        h = self.attention_norm(x)
        x = x + self.attention(h, h, key_mask)
        return x + self.ff(self.ff_norm(x))


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int):
        super().__init__()
        self.self_norm = nn.LayerNorm(dim)
        self.self_attention = MultiHeadAttention(dim, heads)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attention = MultiHeadAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = GatedFeedForward(dim, ff_dim)

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Optional[Tensor]) -> Tensor:
        h = self.self_norm(x)
        x = x + self.self_attention(h, h, None, causal=True)
        x = x + self.cross_attention(self.cross_norm(x), memory, memory_mask)
        return x + self.ff(self.ff_norm(x))


class PostNet(nn.Module):
    """conv, LayerNorm over channels, tanh (all but the last layer); padding
    frames zeroed before every convolution and in the result."""

    def __init__(self, n_mels: int, channels: int, kernel: int, layers: int):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(layers):
            first, last = i == 0, i + 1 == layers
            self.convs.append(nn.Conv1d(n_mels if first else channels,
                                        n_mels if last else channels, kernel, padding=kernel // 2))
            if not last:
                self.norms.append(nn.LayerNorm(channels))

    def forward(self, mel: Tensor, frame_mask: Optional[Tensor] = None) -> Tensor:
        padding = None if frame_mask is None else (~frame_mask).unsqueeze(-1)
        x = mel
        for i, conv in enumerate(self.convs):
            if padding is not None:
                x = x.masked_fill(padding, 0.0)
            x = conv(x.transpose(1, 2)).transpose(1, 2)
            if i < len(self.norms):
                x = torch.tanh(self.norms[i](x))
        return x if padding is None else x.masked_fill(padding, 0.0)


def length_regulate(states: Tensor, durations: Tensor, frames: int):
    """Each phoneme state repeated by its duration, padded or cut to
    ``frames``: (states [B, F, d] zero past the durations, mask [B, F])."""
    ends = durations.long().cumsum(1)                       # [B, T]
    starts = ends - durations.long()
    frame = torch.arange(frames, device=states.device).view(1, frames, 1)
    covers = (frame >= starts.unsqueeze(1)) & (frame < ends.unsqueeze(1))  # [B, F, T]
    mask = covers.any(-1)
    return torch.matmul(covers.to(states.dtype), states), mask


def log_to_duration(log_durations: Tensor, mask: Tensor, max_frames: int,
                    scale: float = 1.0) -> Tensor:
    """round((exp(x) - 1) x scale) within [0, max_frames], 0 off the mask; a row
    with no frame at all gets one on its longest-predicted phoneme."""
    stretched = torch.expm1(log_durations.float())
    if scale != 1.0:
        stretched = stretched * scale
    frames = stretched.round().clamp(0, max_frames).long().masked_fill((~mask), 0)
    empty = frames.sum(-1).eq(0) & mask.any(-1)
    if bool(empty.any()):
        longest = log_durations.float().masked_fill((~mask), -math.inf).argmax(-1)
        one = torch.zeros_like(frames).scatter_(-1, longest.unsqueeze(-1), 1)
        frames = torch.where(empty.unsqueeze(-1), one, frames)
    return frames


class KokoroModel(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        d = shape.hidden_dim
        self.shape = shape
        self.embedding = nn.Embedding(shape.vocab_size, d, padding_idx=0)
        self.encoder = nn.ModuleList(
            [EncoderBlock(d, shape.num_heads, shape.ff_dim) for _ in range(shape.encoder_layers)])
        self.encoder_norm = nn.LayerNorm(d)
        half = max(1, d // 2)
        self.duration_predictor = nn.Sequential(
            nn.Linear(d, d), nn.ReLU(), nn.Identity(), nn.Linear(d, half), nn.ReLU(),
            nn.Identity(), nn.Linear(half, 1))
        self.decoder_input = nn.Linear(shape.n_mels, d)
        self.decoder = nn.ModuleList(
            [DecoderBlock(d, shape.num_heads, shape.ff_dim) for _ in range(shape.decoder_layers)])
        self.decoder_norm = nn.LayerNorm(d)
        self.mel_head = nn.Linear(d, shape.n_mels)
        self.stop_head = nn.Linear(d, 1)
        self.postnet = (PostNet(shape.n_mels, shape.postnet_channels, shape.postnet_kernel,
                                shape.postnet_layers) if shape.postnet else None)

    # The stages, as KokoroModelImpl's.

    def encode(self, phonemes: Tensor, phoneme_mask: Tensor) -> Tensor:
        d = self.shape.hidden_dim
        x = self.embedding(phonemes) * math.sqrt(d)
        x = x + sinusoidal_positions(phonemes.size(1), d, 0, x.device)
        for block in self.encoder:
            x = block(x, phoneme_mask)
        return self.encoder_norm(x)

    def predict_log_durations(self, encoded: Tensor, phoneme_mask: Tensor) -> Tensor:
        return self.duration_predictor(encoded).squeeze(-1).masked_fill(
            (~phoneme_mask), 0.0)

    def regulate(self, encoded: Tensor, durations: Tensor, frames: int):
        states, mask = length_regulate(encoded, durations, frames)
        states = states + sinusoidal_positions(frames, self.shape.hidden_dim, 0, states.device)
        return states.masked_fill((~mask).unsqueeze(-1), 0.0), mask

    def decode(self, previous: Tensor, memory: Tensor, memory_mask: Optional[Tensor]):
        x = self.decoder_input(previous)
        x = x + sinusoidal_positions(previous.size(1), self.shape.hidden_dim, 0, x.device)
        for block in self.decoder:
            x = block(x, memory, memory_mask)
        x = self.decoder_norm(x)
        return self.mel_head(x), self.stop_head(x).squeeze(-1)

    def forward(self, phonemes: Tensor, phoneme_lengths: Tensor, durations: Tensor, mels: Tensor,
                mel_lengths: Tensor):
        """Teacher-forced, as KokoroModel::forward on a TtsBatch: returns
        (mel_before, mel_after, stop_logits, log_durations)."""
        phoneme_mask = (torch.arange(phonemes.size(1), device=phonemes.device).unsqueeze(0)
                        < phoneme_lengths.unsqueeze(1))
        mel_mask = (torch.arange(mels.size(1), device=mels.device).unsqueeze(0)
                    < mel_lengths.unsqueeze(1))
        encoded = self.encode(phonemes, phoneme_mask)
        log_durations = self.predict_log_durations(encoded, phoneme_mask)
        memory, memory_mask = self.regulate(
            encoded, durations.masked_fill((~phoneme_mask), 0), mels.size(1))
        previous = torch.cat([torch.zeros_like(mels[:, :1]), mels[:, :-1]], 1)
        mel_before, stop_logits = self.decode(previous, memory, memory_mask)
        mel_after = mel_before if self.postnet is None else mel_before + self.postnet(
            mel_before, mel_mask)
        return mel_before, mel_after, stop_logits, log_durations

    @torch.no_grad()
    def generate(self, phonemes: Tensor, durations: Optional[Tensor] = None,
                 stop_threshold: float = 0.5, max_frames: int = 1000,
                 speed: float = 1.0) -> dict:
        """Synthesis of one utterance, ``phonemes`` [T] or [1, T] (0 is <pad>):
        durations predicted (divided by ``speed``) unless given, then frames one
        at a time until sigmoid(stop) > stop_threshold or max_frames. Returns
        mel [frames, n_mels] (after the PostNet), mel_before, durations [T],
        stopped."""
        was_training = self.training
        self.eval()
        try:
            ids = phonemes.view(1, -1).long()
            mask = ids.ne(0)
            encoded = self.encode(ids, mask)
            if durations is None:
                durations = log_to_duration(self.predict_log_durations(encoded, mask), mask,
                                            max_frames, 1.0 / speed)
            else:
                durations = durations.view(1, -1).long().masked_fill((~mask), 0)
            memory, _ = self.regulate(encoded, durations, int(durations.sum()))
            frames: List[Tensor] = []
            previous = torch.zeros(1, 1, self.shape.n_mels)
            stopped = False
            for _ in range(max_frames):
                mel, stop = self.decode(previous, memory, None)
                frames.append(mel[:, -1:])
                previous = torch.cat([previous, mel[:, -1:]], 1)
                if float(torch.sigmoid(stop[0, -1])) > stop_threshold:
                    stopped = True
                    break
            mel_before = torch.cat(frames, 1)
            mel = mel_before if self.postnet is None else mel_before + self.postnet(mel_before)
            return {"mel": mel[0], "mel_before": mel_before[0], "durations": durations[0],
                    "stopped": stopped}
        finally:
            self.train(was_training)
