"""Text to phoneme ids through kokoro's own front end: the ``kokoro-text``
program (built with kokoro) prints the tokens the trainer reads a sentence
as (normaliser, then espeak-ng or flite); they map to ids with the run's
vocabulary. A second front end in Python would drift from the trainer's."""

import json
import os
import shutil
import subprocess
from typing import List, Optional

import torch

from .checkpoint import RunInfo


def _kokoro_text(program: Optional[str]) -> str:
    candidates = [program, os.environ.get("KOKORO_TEXT"), shutil.which("kokoro-text"),
                  os.path.join(os.path.dirname(__file__), "..", "..", "build", "examples",
                               "kokoro-text")]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return candidate
    raise FileNotFoundError("kokoro-text not found: build kokoro, or set KOKORO_TEXT to its path")


def tokens(text: str, info: RunInfo, program: Optional[str] = None) -> List[str]:
    """The phoneme tokens of ``text`` in the run's phoneme set."""
    phoneme_set = str(info.config.get("data", {}).get("phoneme_set", "espeak"))
    out = subprocess.run([_kokoro_text(program), "--json", "--phoneme-set", phoneme_set, text],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[0])["tokens"]


def phoneme_ids(text: str, info: RunInfo, program: Optional[str] = None) -> torch.Tensor:
    """[T] int64 ids of ``text`` (unknown symbols: <unk>, id 1)."""
    return torch.tensor([info.ids.get(t, 1) for t in tokens(text, info, program)], dtype=torch.long)
