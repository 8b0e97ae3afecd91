"""kokoro's quality measures (include/kokoro/tts/eval) against independent ones.

    check_eval_metrics.py CASES.json

CASES.json is written by the C++ test "the quality measures agree with
librosa, scipy and jiwer": fixed inputs and what kokoro computed from them.
Here the same figures come from other code: cepstra from scipy's
orthonormal DCT, the warping path's cost from librosa.sequence.dtw, pitch
from librosa.yin, word and character error rates from jiwer. Prints one
line per comparison and exits 1 when one disagrees beyond its tolerance.
Exits 77 (skipped) when librosa, scipy or jiwer is missing.
"""
import json
import math
import sys

try:
    import jiwer
    import librosa
    import numpy as np
    import scipy.fft
except ImportError as e:  # the environment scripts/setup makes has them
    print(f"kokoro-skip: {e}")
    sys.exit(77)

MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)
failures = []


def check(name, ours, theirs, tolerance):
    ok = abs(ours - theirs) <= tolerance
    print(f"{'ok  ' if ok else 'FAIL'} {name}: kokoro {ours:.6g}, independent {theirs:.6g}"
          f" (tolerance {tolerance:g})")
    if not ok:
        failures.append(name)


def cepstra(log_mel, order, mel_power):
    c = scipy.fft.dct(np.asarray(log_mel, dtype=np.float64) / mel_power, type=2, norm="ortho",
                      axis=1)
    return c[:, 1:order + 1]


cases = json.load(open(sys.argv[1]))

for case in cases["mcd"]:
    a = cepstra(case["synthesis"], case["order"], case["mel_power"])
    b = cepstra(case["recording"], case["order"], case["mel_power"])
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    total, path = librosa.sequence.dtw(C=cost)
    path = path[::-1]
    # The least total cost is unique; with no ties the path is too.
    ours_path = np.asarray(case["path"])
    check(f"{case['name']}: DTW total cost", float(cost[ours_path[:, 0], ours_path[:, 1]].sum()),
          float(total[-1, -1]), 1e-9 * max(1.0, float(total[-1, -1])))
    check(f"{case['name']}: MCD along the DTW path (dB)", case["dtw_db"],
          MCD_SCALE * float(cost[path[:, 0], path[:, 1]].mean()), 1e-6)
    frames = b.shape[0]
    padded = np.full((frames, len(case["synthesis"][0])), math.log(1e-5))
    shared = min(frames, len(case["synthesis"]))
    padded[:shared] = np.asarray(case["synthesis"])[:shared]
    p = cepstra(padded, case["order"], case["mel_power"])
    check(f"{case['name']}: MCD frame by frame (dB)", case["plain_db"],
          MCD_SCALE * float(np.sqrt(((p - b) ** 2).sum(1)).mean()), 1e-6)

for case in cases["pitch"]:
    y = np.asarray(case["samples"], dtype=np.float32)
    theirs = librosa.yin(y, fmin=case["fmin"], fmax=case["fmax"], sr=case["sample_rate"],
                         frame_length=case["window"], hop_length=case["hop_length"],
                         center=True, trough_threshold=case["tolerance"])
    ours = np.asarray(case["hz"])
    check(f"{case['name']}: frames", len(ours), len(theirs), 0)
    voiced = ours > 0
    check(f"{case['name']}: voiced frames found", float(voiced.mean()), case["min_voiced_share"],
          1.0 - case["min_voiced_share"] + 1e-9)  # at least that share voiced
    ratio = np.abs(np.log(ours[voiced] / theirs[voiced]))
    # Both are YIN; they differ in the parabolic refinement and the
    # threshold's details, so a frame may land on another period (octave
    # errors). Most frames agree closely.
    check(f"{case['name']}: median |log F0 ratio| on voiced frames", float(np.median(ratio)), 0.0,
          0.01)
    check(f"{case['name']}: share of voiced frames within 3% of librosa",
          float((ratio < math.log(1.03)).mean()), 1.0, 0.1)
    if "expected_hz" in case:
        check(f"{case['name']}: median F0 against the tone's (Hz)", float(np.median(ours[voiced])),
              case["expected_hz"], case["expected_hz"] * 0.01)

for case in cases["pitch_errors"]:
    a, b = np.asarray(case["synthesis"]), np.asarray(case["recording"])
    path = np.asarray(case["path"])
    pa = np.where(path[:, 0] < len(a), a[np.minimum(path[:, 0], len(a) - 1)], 0.0)
    pb = np.where(path[:, 1] < len(b), b[np.minimum(path[:, 1], len(b) - 1)], 0.0)
    both = (pa > 0) & (pb > 0)
    rmse = float(np.sqrt(np.mean((np.log(pa[both]) - np.log(pb[both])) ** 2)))
    vde = float(np.mean((pa > 0) != (pb > 0)))
    check(f"{case['name']}: log-F0 RMSE", case["log_f0_rmse"], rmse, 1e-12)
    check(f"{case['name']}: voicing decision error", case["voicing_error"], vde, 1e-12)

rates = cases["error_rates"]
references = [c["reference"] for c in rates["pairs"]]
hypotheses = [c["hypothesis"] for c in rates["pairs"]]
# jiwer wants a word in every reference; kokoro's reference lists have them.
check("corpus WER", rates["wer"], jiwer.wer(references, hypotheses), 1e-12)
check("corpus CER", rates["cer"], jiwer.cer(references, hypotheses), 1e-12)
for c in rates["pairs"]:
    check(f"WER of \"{c['hypothesis']}\"", c["wer"], jiwer.wer(c["reference"], c["hypothesis"]),
          1e-12)

if failures:
    print(f"{len(failures)} disagreement(s)")
    sys.exit(1)
print("kokoro's quality measures agree with the independent ones")
