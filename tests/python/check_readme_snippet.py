"""Runs README.md's five Python lines (the first ```python block after "The
model in Python") on a checkpoint, from the repository root, and checks the
WAV they write.
    check_readme_snippet.py REPOSITORY CHECKPOINT KOKORO_TEXT OUT_DIR"""

import os
import re
import subprocess
import sys
import wave

try:
    import torch  # noqa: F401
except ImportError:
    print("skip: no torch for this Python")
    sys.exit(77)

repo, checkpoint, kokoro_text, out = sys.argv[1:5]
with open(os.path.join(repo, "README.md"), encoding="utf-8") as f:
    readme = f.read()
section = readme[readme.index("### The model in Python"):]
code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
lines = [l for l in code.splitlines() if l.strip()]
if len(lines) != 5:
    print(f"check_readme_snippet: the snippet has {len(lines)} lines, not 5")
    sys.exit(1)
code = code.replace("runs/english_tts/latest/checkpoints/final.pt", checkpoint)
code = code.replace('"python.wav"', repr(os.path.join(out, "python.wav")))
code = code.replace('sys.path.insert(0, "python")', f"sys.path.insert(0, {os.path.join(repo, 'python')!r})")
os.makedirs(out, exist_ok=True)
env = dict(os.environ, KOKORO_TEXT=kokoro_text)
subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=out)
w = wave.open(os.path.join(out, "python.wav"))
print(f"python.wav: {w.getframerate()} Hz, {w.getnframes()} samples")
sys.exit(0 if w.getframerate() == 22050 and w.getnframes() > 0 else 1)
