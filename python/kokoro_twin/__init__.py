"""kokoro_twin: kokoro's TTS model in PyTorch. It loads a kokoro-train
checkpoint strictly and computes what the C++ model computes, so a trained
model can be used from Python and exported (ONNX) to other runtimes.

    import kokoro_twin
    model, info = kokoro_twin.load("runs/english_tts/latest/checkpoints/final.pt")
    ids = kokoro_twin.phoneme_ids("Every checkpoint should speak.", info)
    mel = model.generate(ids)["mel"]
    kokoro_twin.save_wav("out.wav", kokoro_twin.griffin_lim(mel, info), info.sample_rate)
"""

from .checkpoint import RunInfo, load
from .model import KokoroModel, ModelShape
from .text import phoneme_ids, tokens
from .vocoder import griffin_lim, save_wav

__all__ = ["KokoroModel", "ModelShape", "RunInfo", "load", "phoneme_ids", "tokens", "griffin_lim", "save_wav"]
