#!/bin/sh
# The run report as a browser shows it: Debian's headless Chromium opens
# <run>/report.html from disk (no network), runs its script, and the DOM it
# leaves is checked against the run's metrics.jsonl (check_report.py).
#   report_in_chromium.sh RUN_FOLDER
set -u
run=$1
if ! command -v chromium >/dev/null 2>&1; then
  echo "kokoro-skip: chromium is not installed (scripts/setup installs Debian's chromium)"
  exit 0
fi
[ -s "$run/report.html" ] || { echo "report_in_chromium.sh: no $run/report.html"; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The flags of ../shared/REFERENCE.md; the virtual time budget lets the
# audio elements load before the DOM is dumped.
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --enable-logging=stderr --v=0 --virtual-time-budget=15000 --dump-dom \
  "file://$(realpath "$run/report.html")" >"$profile/dom.html" 2>"$profile/console.txt"
status=$?
if [ "$status" -ne 0 ]; then
  cat "$profile/console.txt"
  echo "report_in_chromium.sh: chromium exited with $status"
  exit 1
fi
exec "${KOKORO_TORCH_PYTHON:-/usr/bin/python3}" "$(dirname "$0")/../python/check_report.py" "$run" "$profile/dom.html" \
  "$profile/console.txt"
