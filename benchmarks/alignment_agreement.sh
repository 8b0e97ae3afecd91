#!/usr/bin/env bash
# How well kokoro's learned aligner finds where words and phonemes lie, against
# alignments it never sees: kokoro-align trains the aligner on the recordings
# and text alone for a budget of minutes, writes its TextGrids, and scores
# their boundaries against reference grids.
#
#   benchmarks/alignment_agreement.sh demo [OUT]
#       the demo corpus (300 clips of espeak-ng speech) against its own grids,
#       which are exact by construction: word and phone boundaries within 2
#       frames (23 ms)
#   benchmarks/alignment_agreement.sh real [OUT]
#       ../shared/data/amateur-186 and ../shared/data/ljspeech-16 together
#       (real recordings; their TextGrid folders left out of the copy the
#       aligner trains on), scored against the 16 LJSpeech clips' MFA grids:
#       word boundaries within 50 ms
#   KOKORO_ALIGN_MINUTES=10   the aligner's training budget
#   KOKORO_ALIGN_ARGS="..."   more kokoro-align arguments, e.g. configuration
#                             overrides (alignment.binarization_start_epochs=40)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KOKORO_BUILD_DIR:-$root/build}
which=${1:?"usage: benchmarks/alignment_agreement.sh demo|real [OUT]"}
out=$(realpath -m "${2:-$root/runs/alignment-agreement/$which}")
minutes=${KOKORO_ALIGN_MINUTES:-10}
shared=$(realpath -m "$root/../shared/data")

"$root/scripts/build" --target kokoro-align kokoro-make-demo-corpus >/dev/null
mkdir -p "$out"
case "$which" in
  demo)
    reference=$out/corpus/TextGrid
    [ -f "$out/corpus/metadata.csv" ] ||
      "$build/examples/kokoro-make-demo-corpus" --out "$out/corpus" --clips 300 >/dev/null
    # The aligner's copy: recordings and text, no TextGrid.
    data=$out/recordings
    rm -rf "$data" && mkdir -p "$data"
    cp "$out/corpus/metadata.csv" "$data/" && ln -s "$out/corpus/wavs" "$data/wavs"
    tolerance=23.2
    ;;
  real)
    for c in amateur-186 ljspeech-16; do
      [ -f "$shared/$c/metadata.csv" ] || { echo "alignment_agreement: $shared/$c is not here" >&2; exit 1; }
    done
    reference=$shared/ljspeech-16/TextGrid
    data=$out/recordings
    rm -rf "$data" && mkdir -p "$data/wavs"
    # The amateur speaker read LJSpeech sentences under their ids: "AM-" tells them apart.
    awk 'BEGIN { FS = OFS = "|" } { $1 = "AM-" $1; print }' "$shared/amateur-186/metadata.csv" \
      >"$data/metadata.csv"
    awk 1 "$shared/ljspeech-16/metadata.csv" >>"$data/metadata.csv"
    for f in "$shared/amateur-186"/wavs/*; do ln -s "$f" "$data/wavs/AM-$(basename "$f")"; done
    for f in "$shared/ljspeech-16"/wavs/*; do ln -s "$f" "$data/wavs/"; done
    tolerance=50
    ;;
  *) echo "alignment_agreement: demo or real, not $which" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086  # KOKORO_ALIGN_ARGS is split into arguments on purpose
"$build/examples/kokoro-align" --data "$data" --out "$out/TextGrid" --minutes "$minutes" \
  ${KOKORO_ALIGN_ARGS:-} --compare "$reference" --tolerance-ms "$tolerance" 2>"$out/align.err" | tee "$out/agreement.txt"
