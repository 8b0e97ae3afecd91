#!/bin/sh
# kokoro-synthesize as a user meets it, on the small run the fixture trained
# (synthesis_setup.sh). One check per MODE:
#   synthesize.sh MODE SYNTHESIZER RUN_DIR
#   griffin_lim  a sentence to -o FILE: a 22050 Hz mono WAV of hop x (frames - 1) samples
#   torchscript  a TorchScript vocoder built here with python3-torch: its samples, its rate
#   lines        lines from stdin and from --text-file into --out DIR, batched
#   timestamps   --timestamps: words and phonemes in time beside the WAV (JSON, TextGrid)
#   weights      model_weights.pt in its run folder; alone it is refused
#   errors       missing, truncated and foreign checkpoints, a bad vocoder, -o with
#                several lines, nothing to say: exit 1 and a message naming the problem
set -u
mode=$1
synth=$2
run=$3
ckpt=$run/runs/r/checkpoints/final.pt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python=${KOKORO_TORCH_PYTHON:-/usr/bin/python3}
fail() {
  echo "synthesize.sh $mode: $*" >&2
  exit 1
}
# wav_info FILE: "rate channels frames"
wav_info() {
  "$python" -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getframerate(), w.getnchannels(), w.getnframes())" "$1"
}
# expect STATUS PATTERN COMMAND...: the exit status, and a line of the output matching PATTERN
expect() {
  status=$1
  pattern=$2
  shift 2
  output=$("$@" 2>&1)
  actual=$?
  printf '%s\n' "$output"
  [ "$actual" -eq "$status" ] || fail "exit status $actual, expected $status: $*"
  printf '%s\n' "$output" | grep -Eq -- "$pattern" || fail "no line matches '$pattern'"
}

case $mode in
griffin_lim)
  expect 0 "hello\.wav  [0-9.]+ s  [0-9]+ frames  RTF [0-9.]+" \
    "$synth" --checkpoint "$ckpt" "Every checkpoint should be able to speak for itself." \
    -o "$out/hello.wav" --max-seconds 2 --griffin-lim-iterations 4
  frames=$(printf '%s\n' "$output" | sed -n 's/.*hello\.wav  [0-9.]* s  \([0-9]*\) frames.*/\1/p')
  set -- $(wav_info "$out/hello.wav")
  [ "$1" = 22050 ] && [ "$2" = 1 ] || fail "hello.wav is $1 Hz, $2 channels"
  [ "$3" = $((256 * (frames - 1))) ] || fail "hello.wav has $3 samples for $frames frames"
  # --max-seconds 2 at 22050 Hz and hop 256: 172 frames at most.
  [ "$frames" -ge 1 ] && [ "$frames" -le 172 ] || fail "$frames frames"
  ;;
torchscript)
  if ! "$python" -c "import torch" 2>/dev/null; then
    echo "kokoro-skip: no torch for /usr/bin/python3 (Debian's python3-torch)"
    exit 0
  fi
  # torch.jit.script reads the module's source, so it is a file.
  cat > "$out/make_vocoder.py" <<'PY'
import sys
import torch

class Vocoder(torch.nn.Module):
    """Each frame's mean log-mel, squashed, held for one hop of 256 samples."""

    def __init__(self, rate: int):
        super().__init__()
        self.sample_rate = rate

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        level = torch.tanh(mel.mean(1) / 10.0)
        return level.repeat_interleave(256, dim=1).unsqueeze(1)

torch.jit.save(torch.jit.script(Vocoder(int(sys.argv[2]))), sys.argv[1])
PY
  for rate in 22050 16000; do
    "$python" "$out/make_vocoder.py" "$out/vocoder-$rate.pt" "$rate" || fail "building the vocoder"
  done
  expect 0 "vocoder .*vocoder-22050\.pt" "$synth" --checkpoint "$ckpt" "A neural vocoder speaks." \
    -o "$out/neural.wav" --max-seconds 1 --vocoder "$out/vocoder-22050.pt"
  frames=$(printf '%s\n' "$output" | sed -n 's/.*neural\.wav  [0-9.]* s  \([0-9]*\) frames.*/\1/p')
  set -- $(wav_info "$out/neural.wav")
  [ "$1" = 22050 ] || fail "neural.wav is $1 Hz"
  [ "$3" = $((256 * frames)) ] || fail "neural.wav has $3 samples for $frames frames"
  # The module's own output: constant over each hop, not silence.
  "$python" - "$out/neural.wav" <<'PY' || fail "neural.wav does not hold the vocoder's samples"
import struct, sys, wave
w = wave.open(sys.argv[1])
s = struct.unpack("<%dh" % w.getnframes(), w.readframes(w.getnframes()))
blocks = [s[i:i + 256] for i in range(0, len(s), 256)]
assert all(len(set(b)) == 1 for b in blocks), "not constant within hops"
assert any(b[0] != 0 for b in blocks), "silent"
PY
  expect 0 "warning: the vocoder says 16000 Hz" "$synth" --checkpoint "$ckpt" "Sixteen." \
    -o "$out/16k.wav" --max-seconds 1 --vocoder "$out/vocoder-16000.pt"
  set -- $(wav_info "$out/16k.wav")
  [ "$1" = 16000 ] || fail "16k.wav is $1 Hz"
  ;;
lines)
  expect 0 "3 files, [0-9.]+ s of audio at 22050 Hz" sh -c \
    "printf 'One.\nTwo more words.\n\n  \nThe third line is the longest of them.\n' | '$synth' \
     --checkpoint '$ckpt' --out '$out/stdin' --batch-size 2 --max-seconds 1 --griffin-lim-iterations 2"
  for n in 001 002 003; do [ -s "$out/stdin/$n.wav" ] || fail "no $n.wav"; done
  [ ! -e "$out/stdin/004.wav" ] || fail "a blank line became a file"
  printf 'First.\nSecond.\n' > "$out/lines.txt"
  expect 0 "kokoro-synthesize: 3 files" "$synth" --checkpoint "$ckpt" --text-file "$out/lines.txt" \
    "And one argument." --out "$out/file" --max-seconds 1 --griffin-lim-iterations 2
  for n in 001 002 003; do [ -s "$out/file/$n.wav" ] || fail "no file/$n.wav"; done
  ;;
timestamps)
  # Beside the WAV, when each word and phoneme is said: within the WAV, in order.
  expect 0 "stamped\.wav" "$synth" --checkpoint "$ckpt" "Two words, then three more." \
    -o "$out/stamped.wav" --max-seconds 3 --griffin-lim-iterations 2 --timestamps
  [ -s "$out/stamped.json" ] || fail "no stamped.json beside stamped.wav"
  "$python" - "$out/stamped.json" "$out/stamped.wav" <<'PY' || fail "the timestamps do not fit the WAV"
import json, sys, wave
t = json.load(open(sys.argv[1]))
w = wave.open(sys.argv[2])
seconds = w.getnframes() / w.getframerate()
assert t["text"] == "Two words, then three more.", t["text"]
assert abs(t["seconds"] - seconds) < 1e-6, (t["seconds"], seconds)
for kind in ("words", "phonemes"):
    last = 0.0
    for s in t[kind]:
        assert 0.0 <= s["start"] < s["end"] <= seconds + 1e-9, (kind, s, seconds)
        assert s["start"] >= last - 1e-9, (kind, s, last)
        last = s["end"]
assert all(w["label"] in ("Two", "words", "then", "three", "more") for w in t["words"]), t["words"]
print(f"timestamps: {len(t['words'])} words, {len(t['phonemes'])} phonemes in {seconds:.2f} s")
PY
  expect 0 "grid\.wav" "$synth" --checkpoint "$ckpt" "Two words." -o "$out/grid.wav" \
    --max-seconds 2 --griffin-lim-iterations 2 --timestamps=textgrid
  grep -q 'File type = "ooTextFile"' "$out/grid.TextGrid" || fail "no Praat TextGrid beside grid.wav"
  grep -q 'name = "words"' "$out/grid.TextGrid" || fail "the TextGrid has no words tier"
  expect 2 "srt not in" "$synth" --checkpoint "$ckpt" "Hi." -o "$out/x.wav" --timestamps=srt
  ;;
weights)
  weights=$run/runs/r/checkpoints/model_weights.pt
  expect 0 "weights\.wav  [0-9.]+ s" "$synth" --checkpoint "$weights" "From the weights alone." \
    -o "$out/weights.wav" --max-seconds 1 --griffin-lim-iterations 2
  cp "$weights" "$out/model_weights.pt"
  expect 1 "holds weights only, and run.yaml is not next to it" "$synth" \
    --checkpoint "$out/model_weights.pt" "Lost." -o "$out/lost.wav"
  ;;
errors)
  expect 1 "no-such\.pt: no such checkpoint" "$synth" --checkpoint "$out/no-such.pt" "Hi." -o "$out/x.wav"
  head -c 20000 "$ckpt" > "$out/truncated.pt"
  expect 1 "truncated\.pt: not a readable checkpoint" "$synth" --checkpoint "$out/truncated.pt" "Hi." \
    -o "$out/x.wav"
  expect 1 "final\.pt: no phoneme vocabulary in its task_state" "$synth" \
    --checkpoint "$run/minimal/m/checkpoints/final.pt" "Hi." -o "$out/x.wav"
  expect 1 "run\.yaml: not a TorchScript module" "$synth" --checkpoint "$ckpt" "Hi." -o "$out/x.wav" \
    --vocoder "$run/runs/r/run.yaml"
  expect 1 "-o names one file, but there are 2 lines" "$synth" --checkpoint "$ckpt" "One." "Two." \
    -o "$out/x.wav"
  expect 1 "nothing to say" sh -c "'$synth' --checkpoint '$ckpt' -o '$out/x.wav' < /dev/null"
  expect 2 "--speed: " "$synth" --checkpoint "$ckpt" "Hi." --speed 0
  [ ! -e "$out/x.wav" ] || fail "a failed run wrote x.wav"
  ;;
*)
  fail "unknown mode"
  ;;
esac
echo "synthesize.sh $mode: passed"
