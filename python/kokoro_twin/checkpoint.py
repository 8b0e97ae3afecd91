"""Reading kokoro-train's checkpoints: the model's shape from the run's
configuration, the phoneme vocabulary, and the weights, loaded strictly."""

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import yaml

from .model import KokoroModel, ModelShape


@dataclass
class RunInfo:
    """What a checkpoint says about its run."""

    config: Dict[str, Dict[str, object]]
    vocabulary: List[str]
    voice: str = "en-us"
    global_step: Optional[int] = None
    source: str = ""
    ids: Dict[str, int] = field(default_factory=dict)

    @property
    def audio(self) -> Dict[str, object]:
        return self.config.get("audio", {})

    @property
    def sample_rate(self) -> int:
        return int(self.audio.get("sample_rate", 22050))


def _read_vocabulary(path: str):
    """phonemes.txt: "kokoro-phoneme-vocabulary 1 <voice>", then one symbol
    per line (a space written \\s, a tab \\t, a backslash \\\\)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    header = lines[0].split(" ")
    if len(header) != 3 or header[0] != "kokoro-phoneme-vocabulary" or header[1] != "1":
        raise ValueError(f"{path}:1: not a kokoro phoneme vocabulary (version 1)")
    escapes = {"\\s": " ", "\\t": "\t", "\\\\": "\\"}
    symbols = [re.sub(r"\\[st\\]", lambda m: escapes[m.group(0)], line)
               for line in lines[1:] if line != ""]
    return symbols, header[2]


def _run_file(checkpoint: str, name: str) -> Optional[str]:
    here = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), name)
    above = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))), name)
    for candidate in (here, above):
        if os.path.exists(candidate):
            return candidate
    return None


def shape_of(config: Dict[str, Dict[str, object]], vocab_size: int,
             state: Dict[str, torch.Tensor]) -> ModelShape:
    """The model's shape from the run's ``model`` and ``audio`` sections; the
    PostNet's (fixed in kokoro) from its tensors."""
    model = config.get("model", {})
    audio = config.get("audio", {})
    postnet = "postnet.convs.0.weight" in state
    shape = ModelShape(
        vocab_size=vocab_size,
        n_mels=int(audio.get("n_mels", 80)),
        hidden_dim=int(model.get("hidden_dim", 512)),
        encoder_layers=int(model.get("encoder_layers", 6)),
        decoder_layers=int(model.get("decoder_layers", 6)),
        num_heads=int(model.get("num_heads", 8)),
        ff_dim=int(model.get("ff_dim", 2048)),
        postnet=postnet)
    if postnet:
        first = state["postnet.convs.0.weight"]
        shape.postnet_channels = int(first.shape[0])
        shape.postnet_kernel = int(first.shape[2])
        shape.postnet_layers = len([k for k in state if re.fullmatch(r"postnet\.convs\.\d+\.weight", k)])
    return shape


def load(path: str, map_location: str = "cpu"):
    """(KokoroModel in eval mode, RunInfo) from final.pt, best.pt, a step-N.pt
    or model_weights.pt (then with the run folder's run.yaml and phonemes.txt).
    The state dict is loaded with strict=True: every tensor must be there and
    have its shape (the learned aligner's, used only in training, are set
    aside)."""
    # kokoro writes typed containers (torch.jit's pickle tags), which the
    # weights-only loader of PyTorch 2.6 and later refuses: a full load.
    data = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a kokoro checkpoint (expected a dict)")
    if "model_state_dict" in data:
        config = yaml.safe_load(data["config"])
        task = data.get("task_state") or {}
        if "phoneme_vocabulary" not in task:
            raise ValueError(f"{path}: no phoneme vocabulary in task_state: not an English TTS run")
        vocabulary = list(task["phoneme_vocabulary"])
        voice = task.get("phoneme_voice", "en-us")
        state = data["model_state_dict"]
        step = data.get("global_step")
    else:
        run_yaml, phonemes = _run_file(path, "run.yaml"), _run_file(path, "phonemes.txt")
        if run_yaml is None or phonemes is None:
            raise ValueError(f"{path}: weights only, and run.yaml or phonemes.txt is not next to "
                             "it or in the folder above")
        with open(run_yaml, encoding="utf-8") as f:
            config = yaml.safe_load(f)
        vocabulary, voice = _read_vocabulary(phonemes)
        state, step = data, None
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    # The learned aligner trains beside the model and takes no part in
    # speaking: its tensors are set aside, every other one loads strictly.
    state = {k: v for k, v in state.items() if not k.startswith("aligner.")}
    model = KokoroModel(shape_of(config, len(vocabulary), state))
    model.load_state_dict(state, strict=True)
    model.eval()
    info = RunInfo(config=config, vocabulary=vocabulary, voice=voice, global_step=step,
                   source=path, ids={s: i for i, s in enumerate(vocabulary)})
    return model, info
