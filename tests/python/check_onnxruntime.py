"""The ONNX export run by ONNX Runtime: the teacher-forced model that
python/kokoro_twin exported (check_onnx.py) is executed by onnxruntime on
the inputs kokoro_twin_reference fed the C++ model, and every output
agrees with the C++ model's within 1e-4.
    check_onnxruntime.py MODEL.onnx REFERENCE.pt
Exits 77 without onnxruntime, numpy or torch (scripts/setup puts them in
kokoro's Python environment)."""

import sys

try:
    import numpy as np
    import onnxruntime as ort
    import torch
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

TOLERANCE = 1e-4
INPUTS = ["phonemes", "phoneme_lengths", "durations", "mels", "mel_lengths"]
OUTPUTS = ["mel_before", "mel_after", "stop_logits", "log_durations"]


def main(model_path: str, reference: str) -> int:
    ref = torch.load(reference, map_location="cpu", weights_only=False)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names_in = [i.name for i in session.get_inputs()]
    if names_in != INPUTS:
        print(f"check_onnxruntime: the model's inputs are {names_in}, expected {INPUTS}")
        return 1
    feeds = {name: ref[name].numpy() for name in INPUTS}
    results = session.run(OUTPUTS, feeds)
    failures = []
    for name, got in zip(OUTPUTS, results):
        want = ref[name].numpy()
        if got.shape != want.shape:
            failures.append(f"{name}: shape {got.shape} against {want.shape}")
            continue
        gap = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
        print(f"{name:14s} {tuple(got.shape)}  max |difference| {gap:.3g}")
        if not gap <= TOLERANCE:
            failures.append(f"{name}: differs by {gap:.3g} (tolerance {TOLERANCE})")
    if not np.abs(results[1]).max() > 1e-3:
        failures.append("the outputs are all about zero")
    for f in failures:
        print("check_onnxruntime:", f)
    print("check_onnxruntime:", "FAILED" if failures else
          f"onnxruntime {ort.__version__} ran {model_path}: every output within {TOLERANCE}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
