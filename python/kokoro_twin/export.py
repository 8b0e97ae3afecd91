"""ONNX export of the twin: the teacher-forced model (phonemes, their
lengths and durations, mels and their lengths -> mel_before, mel_after,
stop_logits, log_durations), with batch, phoneme and frame axes dynamic."""

import inspect

import torch

from .model import KokoroModel

INPUTS = ["phonemes", "phoneme_lengths", "durations", "mels", "mel_lengths"]
OUTPUTS = ["mel_before", "mel_after", "stop_logits", "log_durations"]


def export_onnx(model: KokoroModel, path: str, opset: int = 14) -> None:
    model.eval()
    vocab = model.shape.vocab_size
    phonemes = torch.randint(2, vocab, (2, 5))
    durations = torch.randint(1, 3, (2, 5))
    lengths = torch.tensor([5, 4])
    durations[1, 4] = 0
    frames = int(durations.sum(1).max())
    mels = torch.randn(2, frames, model.shape.n_mels)
    axes = {"phonemes": {0: "batch", 1: "phonemes"}, "phoneme_lengths": {0: "batch"},
            "durations": {0: "batch", 1: "phonemes"}, "mels": {0: "batch", 1: "frames"},
            "mel_lengths": {0: "batch"}, "mel_before": {0: "batch", 1: "frames"},
            "mel_after": {0: "batch", 1: "frames"}, "stop_logits": {0: "batch", 1: "frames"},
            "log_durations": {0: "batch", 1: "phonemes"}}
    # The TorchScript exporter in every PyTorch: from 2.9 the default is the
    # dynamo one, which needs onnxscript and takes its dynamic shapes otherwise.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(model, (phonemes, lengths, durations, mels, durations.sum(1)), path,
                      input_names=INPUTS, output_names=OUTPUTS, dynamic_axes=axes,
                      opset_version=opset, **legacy)
