#!/bin/sh
# kokoro-minimal as 2 ranks of batch 16 under torchrun (README's command)
# against one process of batch 32: the final weights, read back with
# Python's torch.load, must agree to float32 rounding, since the example's
# batches are consecutive slices of one shuffled order and its loss a mean
# per sample.
#   minimal_equality.sh KOKORO_MINIMAL
set -eu
program=$1
python=${KOKORO_TORCH_PYTHON:-/usr/bin/python3}  # Debian's, which has torch (an earlier python3 on PATH may not)
if ! command -v torchrun >/dev/null 2>&1 || ! "$python" -c "import torch" 2>/dev/null; then
  echo "kokoro-skip: torchrun and Python's torch are needed (Debian's python3-torch)"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common="--no-mixed-precision training.epochs=2 hardware.num_threads=1 logging.run_name=run"
# shellcheck disable=SC2086
"$program" $common training.batch_size=32 logging.output_dir="$dir/one" >"$dir/one.txt" 2>&1 || {
  cat "$dir/one.txt"
  exit 1
}
# shellcheck disable=SC2086
PET_REDIRECTS=1 PET_TEE=1 torchrun --standalone --nproc_per_node=2 --no_python "$program" $common \
  training.batch_size=16 logging.output_dir="$dir/two" >"$dir/two.txt" 2>&1 || {
  cat "$dir/two.txt"
  echo "minimal_equality.sh: the 2-rank run failed"
  exit 1
}
"$python" - "$dir" <<'PY'
import sys
import torch
d = sys.argv[1]
one = torch.load(f"{d}/one/run/checkpoints/final.pt", weights_only=False)
two = torch.load(f"{d}/two/run/checkpoints/final.pt", weights_only=False)
assert one["global_step"] == two["global_step"], (one["global_step"], two["global_step"])
worst = 0.0
for name, a in one["model_state_dict"].items():
    b = two["model_state_dict"][name]
    worst = max(worst, ((a - b).abs() / a.abs().clamp(min=1e-3)).max().item())
assert worst < 1e-4, f"2 ranks differ from one process by {worst:.2e} (relative)"
print(f"minimal_equality.sh: {one['global_step']} steps; 2 ranks of batch 16 and 1 process of "
      f"batch 32 agree to {worst:.1e} (relative)")
PY
