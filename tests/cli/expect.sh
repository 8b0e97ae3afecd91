#!/bin/sh
# Runs a program and checks its exit status and that its output (stdout and
# stderr together) holds every given pattern (grep -E), one per argument:
#   expect.sh STATUS PATTERN... -- PROGRAM ARGS...
status=$1
shift
patterns=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  patterns="$patterns$1
"
  shift
done
shift
output=$("$@" 2>&1)
actual=$?
printf '%s\n' "$output"
if [ "$actual" -ne "$status" ]; then
  echo "expect.sh: exit status $actual, expected $status" >&2
  exit 1
fi
printf '%s' "$patterns" | while IFS= read -r pattern; do
  if ! printf '%s\n' "$output" | grep -Eq -- "$pattern"; then
    echo "expect.sh: no line matches '$pattern'" >&2
    exit 1
  fi
done
