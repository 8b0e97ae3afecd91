"""Checks the DOM headless Chromium left of a run's report.html:
    check_report.py RUN_FOLDER DOM.html CONSOLE.txt
- the page's script ran and found no error, and Chromium logged no
  JavaScript error for the page;
- every audio element loaded, and there is one per sample clip;
- the loss curve has one point per step row of metrics.jsonl, the
  validation loss one per validated epoch row;
- the page asks for nothing outside itself (no http(s) URL, no external
  script, style sheet or image)."""

import html.parser
import json
import os
import sys


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.series = {}   # (chart id, series name) -> points
        self.chart = None
        self.audio = 0
        self.external = []
        self.self_check = None
        self._in_check = False
        self.check_text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "chart" in a.get("class", ""):
            self.chart = a.get("id")
        if "series" in a.get("class", "") and "data-points" in a:
            self.series[(self.chart, a.get("data-name"))] = int(a["data-points"])
        if tag == "audio":
            self.audio += 1
        for key in ("src", "href"):
            value = a.get(key, "")
            if value and not value.startswith("data:") and not value.startswith("#"):
                self.external.append(f"<{tag} {key}={value[:60]}>")
        if a.get("id") == "self-check":
            self.self_check = a
            self._in_check = True

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_check = False

    def handle_data(self, data):
        if self._in_check:
            self.check_text += data


def main(run, dom_path, console_path):
    failures = []
    with open(dom_path, encoding="utf-8") as f:
        dom = f.read()
    page = Page()
    page.feed(dom)
    with open(console_path, encoding="utf-8", errors="replace") as f:
        console = f.read()
    print("self-check:", page.check_text.strip())
    if page.self_check is None or "data-errors" not in page.self_check:
        failures.append("the page's script did not run (no self-check result)")
    else:
        if page.self_check["data-errors"] != "0":
            failures.append(f"the page raised errors: {page.check_text}")
        if page.self_check.get("data-audio-failed") != "0":
            failures.append(f"audio failed to load: {page.check_text}")
        if page.self_check.get("data-audio-loaded") != str(page.audio):
            failures.append(f"{page.check_text} ({page.audio} audio elements)")
    js_errors = [line for line in console.splitlines()
                 if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    if js_errors:
        failures.append("console errors: " + " | ".join(js_errors[:3]))

    # Distinct steps: the row at an epoch's end may repeat the last logged step.
    step_rows, validation_rows, evaluation_rows = set(), set(), set()
    with open(os.path.join(run, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["type"] == "step" and "loss" in row["metrics"]:
                step_rows.add(row["global_step"])
            if row["type"] == "epoch" and "loss" in row.get("validation", {}):
                validation_rows.add(row["global_step"])
            if row["type"] == "evaluation" and "mcd" in row.get("metrics", {}):
                evaluation_rows.add(row["global_step"])
    steps, validated = len(step_rows), len(validation_rows)
    print(f"metrics.jsonl: {steps} logged steps, {validated} validations; "
          f"page: {page.series}; {page.audio} audio elements")
    if page.series.get(("chart-loss", "train")) != steps:
        failures.append(f"the loss curve has {page.series.get(('chart-loss', 'train'))} points, "
                        f"metrics.jsonl {steps} steps")
    if page.series.get(("chart-loss", "validation")) != validated:
        failures.append(f"the validation loss has {page.series.get(('chart-loss', 'validation'))} "
                        f"points, metrics.jsonl {validated} validations")
    for chart in ("chart-lr", "chart-grad_norm", "chart-samples_per_sec"):
        if not any(c == chart for c, _ in page.series):
            failures.append(f"no {chart}")
    # The quality section: each evaluation a point, the ceilings dashed beside it.
    if not evaluation_rows:
        failures.append("metrics.jsonl has no evaluation (the fixture evaluates at its end)")
    elif page.series.get(("chart-eval-mcd", "model")) != len(evaluation_rows):
        failures.append(f"the eval/mcd chart has {page.series.get(('chart-eval-mcd', 'model'))} "
                        f"points, metrics.jsonl {len(evaluation_rows)} evaluations")
    for reference in ("griffin_lim",):
        if ("chart-eval-mcd", reference) not in page.series:
            failures.append(f"the eval/mcd chart lacks its {reference} ceiling")
    if ("chart-eval-wer", "recording") not in page.series:
        failures.append("the eval/wer chart lacks its recording ceiling")
    if steps < 2 or validated < 1:
        failures.append("the run logged too little to check")
    # The latest media: one player per clip of the last sample epoch.
    if page.audio < 1:
        failures.append("no audio element")
    if page.external:
        failures.append(f"the page refers outside itself: {page.external[:3]}")
    for f in failures:
        print("check_report:", f)
    print("check_report:", "FAILED" if failures else "report.html renders, complete")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
