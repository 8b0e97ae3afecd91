#!/bin/sh
# kokoro-eval as a user meets it, on the small run the fixture trained
# (synthesis_setup.sh: the step-2 checkpoint and final.pt of one run, its 8-clip corpus).
#   eval.sh EVAL RUN_DIR
# Two checkpoints -> a table with a row each and the ceilings' rows, and the
# same in --json (each model's figures, every clip, the ceilings); --split
# validation scores the 2 clips the run held out; a bad id list and a
# missing corpus stop with a message naming them.
set -u
evaluate=$1
run=$2
ckpts=$run/runs/r/checkpoints
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python=${KOKORO_TORCH_PYTHON:-/usr/bin/python3}
fail() {
  echo "eval.sh: $*" >&2
  exit 1
}
"$evaluate" "$ckpts/checkpoint_step000000002.pt" "$ckpts/final.pt" --data "$run/corpus" --limit 3 \
  --json "$out/q.json" >"$out/table.txt" 2>"$out/err.txt" ||
  { cat "$out/table.txt" "$out/err.txt"; fail "kokoro-eval failed"; }
cat "$out/table.txt"
grep -Eq "^kokoro-eval: 3 clips of .*, wer/cer heard by (moonshine|pocketsphinx)$" "$out/table.txt" ||
  fail "no heading naming 3 clips and the recognizer"
grep -Eq "checkpoint_step000000002\.pt \(step 2\) +[0-9]" "$out/table.txt" || fail "no row for the step-2 checkpoint"
grep -Eq "final\.pt \(step 4\) +[0-9]" "$out/table.txt" || fail "no row for final.pt"
grep -Eq "^ceiling: griffin_lim +[0-9]" "$out/table.txt" || fail "no Griffin-Lim ceiling row"
grep -Eq "^ceiling: recording +- +- +- +- +- +- +[0-9]" "$out/table.txt" ||
  fail "no recording ceiling row with its WER"
grep -q "clip 3/3" "$out/err.txt" || fail "no progress on stderr"
"$python" - "$out/q.json" <<'PY' || fail "the JSON is not what the table says"
import json, math, sys
r = json.load(open(sys.argv[1]))
assert r["clips"] == 3 and len(r["clip_ids"]) == 3, r["clip_ids"]
assert r["recognizer"] in ("moonshine", "pocketsphinx"), r["recognizer"]
assert [m["step"] for m in r["models"]] == [2, 4], [m["step"] for m in r["models"]]
for m in r["models"]:
    for name in ("mcd", "mcd_plain", "length_ratio", "wer", "cer"):
        assert isinstance(m["metrics"][name], (int, float)) and math.isfinite(m["metrics"][name]), name
    assert len(m["clips"]) == 3 and all("heard" in c for c in m["clips"])
assert 0 <= r["ceilings"]["recording"]["wer"] <= 1.5
assert r["ceilings"]["griffin_lim"]["mcd"] > 0
print("kokoro-eval's JSON: 2 models x 3 clips, ceilings", r["ceilings"])
PY
"$evaluate" "$ckpts/final.pt" --data "$run/corpus" --split validation --no-recognizer \
  >"$out/valid.txt" 2>&1 || { cat "$out/valid.txt"; fail "--split validation failed"; }
grep -q "^kokoro-eval: 2 clips of" "$out/valid.txt" || fail "--split validation: not the 2 held-out clips"
grep -q "heard by" "$out/valid.txt" && fail "--no-recognizer: a recognizer still heard"
"$evaluate" "$ckpts/final.pt" --data "$run/corpus" --limit 1 --recognizer whisper >"$out/asr.txt" 2>&1 &&
  fail "an unknown recognizer was accepted"
grep -q "whisper" "$out/asr.txt" || { cat "$out/asr.txt"; fail "the unknown recognizer is not named"; }
echo "LJ999-0001" >"$out/ids.txt"
"$evaluate" "$ckpts/final.pt" --data "$run/corpus" --ids "$out/ids.txt" >"$out/bad.txt" 2>&1 &&
  fail "an unknown id was accepted"
grep -q "ids.txt: 1 id(s) not among the corpus's usable clips, e.g. LJ999-0001" "$out/bad.txt" ||
  { cat "$out/bad.txt"; fail "the unknown id is not named"; }
"$evaluate" "$ckpts/final.pt" --data "$out/nowhere" >"$out/none.txt" 2>&1 &&
  fail "a missing corpus was accepted"
grep -q "nowhere: no metadata.csv" "$out/none.txt" || fail "the missing corpus is not named"
echo "eval.sh: kokoro-eval ok"
