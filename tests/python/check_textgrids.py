"""kokoro-align's TextGrids through an independent reader (praatio): every
clip of the corpus has one; it holds a "words" and a "phones" tier that
cover the clip from 0 to its recording's length (within one mel hop)
without gaps or empty intervals; every phone lies inside a word or a
silence of the words tier, each word starts and ends on phone boundaries;
and the words, read in order, are the clip's text (the metadata's last
column: the normalised text, numbers spelled out).
    check_textgrids.py GRID_DIR CORPUS_DIR HOP_SECONDS
Exits 77 without praatio (scripts/setup puts it in kokoro's Python
environment)."""

import re
import sys
import wave
from pathlib import Path

try:
    from praatio import textgrid
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

EPS = 1e-6


def letters(text: str) -> str:
    """The text's letters and digits, lower case: spacing and punctuation aside."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def check_clip(grid_path: Path, wav_path: Path, text: str, hop: float) -> list:
    problems = []
    tg = textgrid.openTextgrid(str(grid_path), includeEmptyIntervals=True)
    with wave.open(str(wav_path)) as w:
        seconds = w.getnframes() / w.getframerate()
    if abs(tg.maxTimestamp - seconds) > hop + EPS:
        problems.append(f"ends at {tg.maxTimestamp:.4f} s, the recording at {seconds:.4f} s")
    tiers = {}
    for name in ("words", "phones"):
        if name not in tg.tierNames:
            problems.append(f"no {name} tier (tiers: {tg.tierNames})")
            continue
        entries = tg.getTier(name).entries
        tiers[name] = entries
        at = tg.minTimestamp
        for e in entries:
            if abs(e.start - at) > EPS:
                problems.append(f"{name}: a gap or overlap at {at:.4f} s")
            if e.end <= e.start:
                problems.append(f"{name}: an empty interval at {e.start:.4f} s")
            at = e.end
        if abs(at - tg.maxTimestamp) > EPS:
            problems.append(f"{name}: ends at {at:.4f} s, the grid at {tg.maxTimestamp:.4f} s")
    if len(tiers) < 2:
        return problems
    phone_edges = {round(e.start, 6) for e in tiers["phones"]} | {round(tiers["phones"][-1].end, 6)}
    for w in tiers["words"]:
        for t in (w.start, w.end):
            if round(t, 6) not in phone_edges:
                problems.append(f"word {w.label!r} has an edge at {t:.4f} s inside a phone")
    for p in tiers["phones"]:
        if not p.label:
            continue
        if not any(w.start - EPS <= p.start and p.end <= w.end + EPS and w.label
                   for w in tiers["words"]):
            problems.append(f"phone {p.label!r} at {p.start:.4f} s lies in no word")
    said = letters(" ".join(w.label for w in tiers["words"] if w.label))
    if said != letters(text):
        problems.append(f"the words say {said!r}, the text {letters(text)!r}")
    return problems


def main(grid_dir: str, corpus_dir: str, hop: float) -> int:
    corpus = Path(corpus_dir)
    failures, clips, intervals = [], 0, 0
    for line in (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines():
        fields = line.split("|")
        if len(fields) < 2:
            continue
        clip_id, text = fields[0], fields[-1]
        grid = Path(grid_dir) / f"{clip_id}.TextGrid"
        if not grid.exists():
            failures.append(f"{clip_id}: no TextGrid")
            continue
        clips += 1
        tg = textgrid.openTextgrid(str(grid), True)
        if "phones" in tg.tierNames:
            intervals += len(tg.getTier("phones").entries)
        failures += [f"{clip_id}: {p}" for p in
                     check_clip(grid, corpus / "wavs" / f"{clip_id}.wav", text, hop)]
    for f in failures[:20]:
        print(f)
    if failures:
        print(f"{len(failures)} problems in {clips} TextGrids")
        return 1
    print(f"praatio read {clips} TextGrids ({intervals} phone intervals): tiers, coverage, "
          "words and text as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
