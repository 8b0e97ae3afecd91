"""kokoro's alignment pieces (include/kokoro/tts/align) against independent ones.

    check_alignment.py CASES.json

CASES.json is written by the C++ test "the alignment prior and the forward-sum
loss agree with scipy and a plain CTC": fixed inputs and what kokoro computed.
Here the prior comes from scipy.stats.betabinom, and the forward-sum loss from
a CTC forward pass over every frame written out in numpy (the blank column
first, its log-probability fixed, renormalised, each clip's loss over its
tokens, then the mean over clips). Exits 1 when one disagrees, 77 (skipped)
when scipy or numpy is missing.
"""
import json
import sys

try:
    import numpy as np
    import scipy.special
    import scipy.stats
except ImportError as e:  # the environment scripts/setup makes has them
    print(f"kokoro-skip: {e}")
    sys.exit(77)

failures = []


def check(name, ours, theirs, tolerance):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    worst = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    ok = ours.shape == theirs.shape and worst <= tolerance
    print(f"{'ok  ' if ok else 'FAIL'} {name}: largest difference {worst:.3g} "
          f"(tolerance {tolerance:g})")
    if not ok:
        failures.append(name)


def prior(tokens, frames, scaling):
    k = np.arange(tokens)
    rows = []
    for t in range(1, frames + 1):
        a, b = scaling * t, scaling * (frames - t + 1)
        rows.append(scipy.stats.betabinom(tokens - 1, a, b).logpmf(k))
    return np.array(rows)


def ctc_forward(log_probs, tokens, frames, blank):
    """-log P(tokens 1..T | frames) by the CTC forward recursion."""
    x = np.asarray(log_probs, np.float64)[:frames, :tokens]
    x = np.concatenate([np.full((frames, 1), blank), x], axis=1)
    x = x - scipy.special.logsumexp(x, axis=1, keepdims=True)
    labels = [0]
    for i in range(1, tokens + 1):
        labels += [i, 0]
    S = len(labels)
    alpha = np.full(S, -np.inf)
    alpha[0], alpha[1] = x[0, labels[0]], x[0, labels[1]]
    for t in range(1, frames):
        new = np.full(S, -np.inf)
        for s in range(S):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and labels[s] != 0 and labels[s] != labels[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = scipy.special.logsumexp(terms) + x[t, labels[s]]
        alpha = new
    return -scipy.special.logsumexp([alpha[-1], alpha[-2]])


def main():
    cases = json.load(open(sys.argv[1]))
    for c in cases["priors"]:
        check(f"beta-binomial prior, {c['tokens']} tokens x {c['frames']} frames, "
              f"scaling {c['scaling']}", c["log_prior"],
              prior(c["tokens"], c["frames"], c["scaling"]), 1e-4)
    f = cases["forward_sum"]
    losses = [ctc_forward(lp, t, n, f["blank"]) / t
              for lp, t, n in zip(f["log_probs"], f["tokens"], f["frames"])]
    check("forward-sum loss (CTC over the alignment)", f["loss"], np.mean(losses), 1e-4)
    if failures:
        print("disagree:", ", ".join(failures))
        sys.exit(1)
    print("kokoro's alignment prior and forward-sum loss agree with the independent ones")


if __name__ == "__main__":
    main()
