#!/bin/sh
# Launches an example program as 2 ranks with torchrun, as README shows, and
# checks that it trains to completion and that the ranks wrote one run: one
# run folder holding the final checkpoint, and that every gradient bucket
# went out during backward (kokoro-train's closing lines count them).
#   torchrun.sh [--demo-corpus MAKER] PROGRAM [ARGS...]
# --demo-corpus: first build an 8-clip corpus with MAKER and pass it as
# --data-dir. The program's runs go to a temporary folder.
set -eu
if ! command -v torchrun >/dev/null 2>&1; then
  echo "kokoro-skip: torchrun is not installed (Debian's python3-torch has it)"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
corpus_args=""
if [ "$1" = "--demo-corpus" ]; then
  "$2" --clips 8 --out "$dir/corpus" >/dev/null
  corpus_args="--data-dir $dir/corpus"
  shift 2
fi
program=$1
shift
cd "$dir"
# PET_REDIRECTS/PET_TEE: torchrun 1.13 under Python 3.11 cannot parse its own
# defaults for --redirects and --tee.
# shellcheck disable=SC2086
if ! PET_REDIRECTS=1 PET_TEE=1 torchrun --standalone --nproc_per_node=2 --no_python \
    "$program" $corpus_args "$@" logging.output_dir="$dir/runs" hardware.num_threads=1 \
    >log.txt 2>&1; then
  cat log.txt
  echo "torchrun.sh: the 2-rank run failed"
  exit 1
fi
folders=$(find runs -mindepth 1 -maxdepth 1 -type d ! -name cache | wc -l)
if [ "$folders" != 1 ] || ! ls runs/*/checkpoints/final.pt >/dev/null 2>&1; then
  cat log.txt
  ls -laR runs
  echo "torchrun.sh: expected one run folder with checkpoints/final.pt"
  exit 1
fi
# kokoro-train counts the gradient buckets that went out during backward:
# with overlap on (the default) that is all of them.
if ! grep -Eq "all-reduce +2 ranks over gloo: ([0-9]+) of \1 gradient buckets went out during backward, 0 steps" log.txt; then
  cat log.txt
  echo "torchrun.sh: expected every gradient bucket to go out during backward"
  exit 1
fi
grep -E "rank|steps|final|all-reduce" log.txt | tail -n 6
echo "torchrun.sh: 2 ranks trained, one run written"
