"""The Python twin against the C++ model: loads a kokoro-train checkpoint
with python/kokoro_twin (strictly) and compares its outputs with those
kokoro_twin_reference wrote from the same checkpoint and inputs.
    check_twin.py CHECKPOINT REFERENCE.pt
Exits 0 when every output agrees within 1e-4, 1 otherwise, 77 without
torch."""

import os
import sys

try:
    import torch
except ImportError:
    print("skip: no torch for this Python (Debian's python3-torch)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import kokoro_twin  # noqa: E402

TOLERANCE = 1e-4


def main(checkpoint: str, reference: str) -> int:
    model, info = kokoro_twin.load(checkpoint)
    ref = torch.load(reference, weights_only=False)
    failures = []

    def compare(name, ours, theirs):
        if ours.shape != theirs.shape:
            failures.append(f"{name}: shape {tuple(ours.shape)} against {tuple(theirs.shape)}")
            return
        gap = (ours.float() - theirs.float()).abs().max().item() if ours.numel() else 0.0
        print(f"{name:22s} {tuple(ours.shape)}  max |difference| {gap:.3g}")
        if not gap <= TOLERANCE:
            failures.append(f"{name}: differs by {gap:.3g} (tolerance {TOLERANCE})")

    with torch.no_grad():
        mel_before, mel_after, stop_logits, log_durations = model(
            ref["phonemes"], ref["phoneme_lengths"], ref["durations"], ref["mels"],
            ref["mel_lengths"])
    compare("mel_before", mel_before, ref["mel_before"])
    compare("mel_after", mel_after, ref["mel_after"])
    compare("stop_logits", stop_logits, ref["stop_logits"])
    compare("log_durations", log_durations, ref["log_durations"])

    first = ref["phonemes"][0, : int(ref["phoneme_lengths"][0])]
    given = ref["durations"][0, : int(ref["phoneme_lengths"][0])]
    generated = model.generate(first, durations=given, stop_threshold=2.0, max_frames=12)
    compare("generated_mel", generated["mel"], ref["generated_mel"])
    compare("generated_mel_before", generated["mel_before"], ref["generated_mel_before"])
    predicted = model.generate(first, stop_threshold=2.0, max_frames=12)
    if not torch.equal(predicted["durations"], ref["predicted_durations"]):
        failures.append(f"predicted durations {predicted['durations'].tolist()} against "
                        f"{ref['predicted_durations'].tolist()}")
    compare("predicted_mel", predicted["mel"], ref["predicted_mel"])
    # The outputs are not trivially equal: the model moved off zero.
    if not mel_after.abs().max() > 1e-3:
        failures.append("the model's outputs are all about zero")
    for f in failures:
        print("check_twin:", f)
    print("check_twin:", "FAILED" if failures else
          f"the twin agrees with the C++ model within {TOLERANCE} ({info.global_step} steps, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
