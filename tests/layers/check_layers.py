#!/usr/bin/env python3
"""The layered house of include/kokoro, checked.

Each header may include kokoro headers of a lower layer, or of its own
folder; never of a higher layer or of a sibling folder on the same layer.
Each header also opens with a comment that says what it is for.

    check_layers.py INCLUDE_DIR     (the folder that holds kokoro/)

Prints every violation as "file:line: ..." and exits 1 when there is one.
"""
import re
import sys
from pathlib import Path

# Lower number, lower layer. A folder not listed is an error: a new folder
# must be given its place here.
LAYERS = {
    "util": 0,
    "core": 1,
    "device": 2,
    "amp": 3, "memory": 3, "schedule": 3, "log": 3, "profile": 3, "checkpoint": 3,
    "distributed": 3,
    "trainer.hpp": 4,
    "nn": 5, "data": 5, "audio": 5,
    "tts": 6,
}
# Inside tts/: its configuration, then text, alignment, data, the aligner
# run over a batch of that data, model, the synthesiser that speaks with a model, the evaluation that judges what it
# says, and the tasks that train (and evaluate) the model, or its aligner alone.
TTS_LAYERS = {
    "tts_config.hpp": 0,
    "text": 1,
    "align": 2,
    "data": 3,
    "batch_alignment.hpp": 4,
    "model": 4,
    "synthesizer.hpp": 5,
    "eval": 6,
    "english_tts_task.hpp": 7,
    "aligner_task.hpp": 7,
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](kokoro/[^">]+)[">]')


def place(relative):
    """(layer, sublayer, folder) of a path relative to kokoro/, or None."""
    parts = relative.parts
    top = parts[0]
    if top not in LAYERS:
        return None
    if top != "tts":
        return (LAYERS[top], 0, "/".join(parts[:-1]) or top)
    inner = parts[1] if len(parts) > 1 else ""
    if inner not in TTS_LAYERS:
        return None
    return (LAYERS[top], TTS_LAYERS[inner], "/".join(parts[:-1]))


def check(include_dir):
    root = Path(include_dir) / "kokoro"
    problems = []
    headers = sorted(root.rglob("*.hpp"))
    if not headers:
        return [f"{root}: no headers found"]
    for header in headers:
        relative = header.relative_to(root)
        mine = place(relative)
        if mine is None:
            problems.append(f"{header}:1: kokoro/{relative} is in no layer "
                            "(give its folder a place in tests/layers/check_layers.py)")
            continue
        lines = header.read_text(encoding="utf-8").splitlines()
        if len(lines) < 2 or not (lines[0].startswith("//") and lines[1].startswith("//")):
            problems.append(f"{header}:1: a header opens with at least two comment lines "
                            "saying what it is for")
        for number, line in enumerate(lines, 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = Path(match.group(1)).relative_to("kokoro")
            theirs = place(target)
            if theirs is None:
                problems.append(f"{header}:{number}: includes kokoro/{target}, which is in no layer")
                continue
            if not (root / target).exists():
                problems.append(f"{header}:{number}: includes kokoro/{target}, which does not exist")
            if theirs[2] == mine[2]:
                continue  # its own folder
            if theirs[:2] < mine[:2]:
                continue  # a lower layer
            problems.append(
                f"{header}:{number}: kokoro/{relative} (layer {mine[2]}) includes "
                f"kokoro/{target} (layer {theirs[2]}), which is not below it")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s)")
        return 1
    print("layers: every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
