#!/usr/bin/env bash
# The quality curve: the small model trained from scratch on one corpus, and
# its quality (kokoro-eval) after each stage of training, e.g. 5, 15, 30 and
# 60 minutes in all. The yardstick later changes (alignment, vocoder, speed)
# are judged by; benchmarks/README.md has the figures it gave.
#
#   benchmarks/quality_curve.sh CORPUS [OUT]
#     CORPUS  demo         kokoro's demo corpus (espeak-ng speech, built here)
#             amateur-186  ../shared/data/amateur-186 (18 minutes of one human speaker)
#             ljspeech-16  ../shared/data/ljspeech-16 (16 LJSpeech recordings, MFA grids)
#             DIR          any LJSpeech-layout corpus
#     OUT     where runs, evaluations and curve.md go (default runs/quality-curve/<corpus>)
#   KOKORO_CURVE_MINUTES="5 15 30 60"   the training minutes in all at each stage
#   KOKORO_CURVE_CLIPS=8                clips scored per stage
#   KOKORO_CURVE_EVAL_ARGS=""           more kokoro-eval options (e.g. --recognizer pocketsphinx)
#   KOKORO_CURVE_TRAIN_ARGS=""          more kokoro-train settings (e.g. data.durations=learned)
#
# Each stage's weights are kept in OUT/stages/<minutes>min.pt; a rerun scores
# the kept stages again without training them again.
#
# Each stage resumes the run and trains the minutes up to the next mark
# (training.max_minutes), then kokoro-eval scores final.pt on the clips the
# run held out (validation_split 0.1; ljspeech-16 is too small to hold
# clips out: it is scored on the clips it trains on, which says whether the
# model can speak what it heard, not whether it generalises).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KOKORO_BUILD_DIR:-$root/build}
corpus=${1:?"usage: benchmarks/quality_curve.sh demo|amateur-186|ljspeech-16|DIR [OUT]"}
name=$(basename "$corpus")
out=$(realpath -m "${2:-$root/runs/quality-curve/$name}")
minutes=(${KOKORO_CURVE_MINUTES:-5 15 30 60})
clips=${KOKORO_CURVE_CLIPS:-8}
shared=$(realpath -m "$root/../shared/data")

"$root/scripts/build" --target kokoro-train kokoro-eval kokoro-make-demo-corpus >/dev/null
split=validation
holdout=0.1
case "$corpus" in
  demo)
    data=$out/corpus
    [ -f "$data/metadata.csv" ] ||
      "$build/examples/kokoro-make-demo-corpus" --out "$data" --clips 300 >/dev/null
    ;;
  amateur-186 | ljspeech-16)
    data=$shared/$corpus
    [ -f "$data/metadata.csv" ] || { echo "quality_curve: $data is not here" >&2; exit 1; }
    if [ "$corpus" = ljspeech-16 ]; then split=all holdout=0; fi
    ;;
  *) data=$(realpath "$corpus") ;;
esac

mkdir -p "$out"
run=$out/runs/curve
done_minutes=0
rows=()
for mark in "${minutes[@]}"; do
  stage=$(awk -v a="$mark" -v b="$done_minutes" 'BEGIN { print a - b }')
  kept=$out/stages/${mark}min.pt
  if [ ! -f "$kept" ]; then
    resume=()
    [ -d "$run/checkpoints" ] && resume=(--resume auto)
    echo "quality_curve: $name: training to $mark minutes"
    # The in-run evaluation is off: kokoro-eval scores each stage below, and
    # its time would otherwise come out of the stage's minutes.
    "$build/examples/kokoro-train" --small --data-dir "$data" "${resume[@]}" \
      logging.output_dir="$out/runs" logging.run_name=curve training.epochs=100000 \
      training.max_minutes="$stage" data.validation_split="$holdout" \
      evaluation.every_epochs=0 evaluation.at_end=false ${KOKORO_CURVE_TRAIN_ARGS:-} \
      >"$out/train-${mark}min.log" 2>&1
    # Each stage's weights are kept, so the stages can be scored again (another
    # recognizer, more clips) without training again: a stage already kept is
    # not retrained.
    mkdir -p "$out/stages"
    cp "$run/checkpoints/final.pt" "$kept"
  fi
  done_minutes=$mark
  echo "quality_curve: $name: scoring the model after $mark minutes"
  "$build/examples/kokoro-eval" "$kept" --data "$data" --split "$split" \
    --limit "$clips" ${KOKORO_CURVE_EVAL_ARGS:-} --json "$out/eval-${mark}min.json" >"$out/eval-${mark}min.txt" 2>"$out/eval-${mark}min.err"
  rows+=("$mark")
done

# curve.md: one row per stage, the ceilings last.
python3 - "$out" "$name" "${rows[@]}" <<'PY'
import json, sys
out, name, marks = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = ["mcd", "mcd_plain", "f0_rmse", "vde", "length_ratio", "duration_mae", "wer", "cer"]
def cell(v):
    return "-" if v is None else f"{v:.3f}"
lines = [f"| {name}: minutes | step | " + " | ".join(cols) + " |",
         "|---|---|" + "---|" * len(cols)]
last = None
for m in marks:
    r = json.load(open(f"{out}/eval-{m}min.json"))
    model = r["models"][0]
    lines.append(f"| {m} | {model['step']} | " +
                 " | ".join(cell(model["metrics"].get(c)) for c in cols) + " |")
    last = r
for ref in ("griffin_lim", "recording"):
    values = last["ceilings"].get(ref, {})
    lines.append(f"| ceiling: {ref} | | " + " | ".join(cell(values.get(c)) for c in cols) + " |")
lines.append("")
lines.append(f"{last['clips']} clips: {', '.join(last['clip_ids'])}")
open(f"{out}/curve.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
