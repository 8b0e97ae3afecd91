// The stronger speech recognizer: Moonshine base (English, 61 M parameters,
// MIT licence), whose ONNX Runtime files ship inside PyPI's moonshine-cpp
// wheel, run by PyPI's onnxruntime in kokoro's Python environment
// (scripts/setup-python installs both). Nothing is downloaded at run time.
//
// Why a Python helper: no Debian package has ONNX Runtime's C++ library, and
// the wheel's own C++ library is built for AVX-512 (it dies with SIGILL on
// CPUs without it, this machine's among them). So one Python process per
// recognizer loads the model once and transcribes clip after clip over a
// socket (util/child_process.hpp): a line "<samples>\n", then the samples as
// 16 kHz float32; it answers one line, "= <text>", or "! <why>" when that
// clip failed (the helper goes on). Its protocol has a descriptor of its own,
// and its standard output goes to its standard error, so that nothing a
// library prints can break the exchange. Its decoding is greedy, as
// Moonshine's reference code does it: start token 1, end token 2, at most
// 6.5 tokens per second of audio, the clip padded with 0.5 s of silence at
// each end (measured: without it the first or last word is lost more often).
//
// Measured here (corpus WER, whole clips): the 16 LJSpeech recordings 2.5%
// (PocketSphinx 23%), the 186 clips of the amateur speaker 33% (66%),
// espeak-ng's en-us speech of the LJSpeech sentences 12% (82%); about a third
// of real time on one core.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kokoro/audio/audio_file.hpp"
#include "kokoro/tts/eval/recognizer.hpp"
#include "kokoro/util/child_process.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts::eval {

/// The Python of kokoro's environment: $KOKORO_PYTHON, else
/// $KOKORO_VENV/bin/python, else /opt/kokoro-venv/bin/python.
inline std::filesystem::path kokoro_python() {
  if (const char* p = std::getenv("KOKORO_PYTHON"); p != nullptr && *p != '\0') return p;
  const char* venv = std::getenv("KOKORO_VENV");
  return std::filesystem::path(venv != nullptr && *venv != '\0' ? venv : "/opt/kokoro-venv") /
         "bin" / "python";
}

struct MoonshineOptions {
  std::filesystem::path python = kokoro_python();
  /// The folder with encoder_model.ort, decoder_model_merged.ort and
  /// tokenizer.bin; empty: moonshine-cpp's base-en in `python`'s packages.
  std::filesystem::path model_dir{};
  int threads = 0;  ///< ONNX Runtime's threads (0: its own choice, one per core)
  /// How long the model may take to load, and a clip to come back (plus
  /// `seconds_per_audio_second` for each second of audio).
  double start_seconds = 120.0;
  double clip_seconds = 60.0;
  double seconds_per_audio_second = 5.0;
};

namespace detail::moonshine {

// The helper's program (see the header for the protocol). The model's layer
// count and head sizes are read from the decoder's inputs.
inline constexpr const char* kProgram = R"PY(
import importlib.util, math, os, sys, traceback
# The answers go to the socket alone; stray prints go with the messages.
answers = os.fdopen(os.dup(1), "wb", 0)
os.dup2(2, 1)
try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    sys.exit(f"moonshine: {e} (scripts/setup-python installs numpy and onnxruntime)")

folder, threads = sys.argv[1], int(sys.argv[2])
if not folder:
    spec = importlib.util.find_spec("moonshine_cpp")  # located, not imported
    if spec is None or not spec.origin:
        sys.exit("moonshine: the moonshine-cpp package is not installed in " + sys.executable +
                 " (scripts/setup-python installs it)")
    folder = os.path.join(os.path.dirname(spec.origin), "models", "base-en")
for f in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"):
    if not os.path.isfile(os.path.join(folder, f)):
        sys.exit(f"moonshine: {os.path.join(folder, f)} is missing")

options = ort.SessionOptions()
options.inter_op_num_threads = 1
if threads > 0:
    options.intra_op_num_threads = threads
options.log_severity_level = 3
cpu = ["CPUExecutionProvider"]
encoder = ort.InferenceSession(os.path.join(folder, "encoder_model.ort"), options, providers=cpu)
decoder = ort.InferenceSession(os.path.join(folder, "decoder_model_merged.ort"), options, providers=cpu)
past_inputs = [i for i in decoder.get_inputs() if i.name.startswith("past_key_values.")]
names = [o.name for o in decoder.get_outputs()]
heads, head_size = past_inputs[0].shape[1], past_inputs[0].shape[3]

# tokenizer.bin: per token, its byte length (one byte, or two as a 7-bit
# varint when 128 or more) then its bytes; "\u2581" marks a word's start,
# and "<...>" tokens are the model's own markers, never text.
raw = open(os.path.join(folder, "tokenizer.bin"), "rb").read()
tokens, i = [], 0
while i < len(raw):
    n = raw[i]; i += 1
    if n >= 128:
        n = (n & 127) | (raw[i] << 7); i += 1
    tokens.append(raw[i:i + n]); i += n

START, END, RATE, PAD = 1, 2, 16000, 8000

def transcribe(audio):
    audio = np.concatenate([np.zeros(PAD, np.float32), audio, np.zeros(PAD, np.float32)])[None, :]
    hidden = encoder.run(None, {"input_values": audio})[0]
    past = {i.name: np.zeros((1, heads, 0, head_size), np.float32) for i in past_inputs}
    limit = max(8, math.ceil(audio.shape[1] / RATE * 6.5))
    ids, out = [START], []
    for step in range(limit):
        outputs = decoder.run(None, dict(input_ids=np.array([ids], np.int64),
                                         encoder_hidden_states=hidden,
                                         use_cache_branch=np.array([step > 0]), **past))
        token = int(outputs[0][0, -1, :len(tokens)].argmax())
        if token == END:
            break
        out.append(token)
        ids = [token]
        for name, value in zip(names[1:], outputs[1:]):
            key = name.replace("present.", "past_key_values.", 1)
            if step == 0 or ".decoder." in key:  # the encoder's keys are made once
                past[key] = value
    pieces = [tokens[t] for t in out if 2 < t < len(tokens)]
    pieces = [p for p in pieces if not (len(p) > 2 and p[:1] == b"<" and p[-1:] == b">")]
    text = b"".join(pieces).decode("utf-8", "replace")
    return " ".join(text.replace("\u2581", " ").split())

stdin = sys.stdin.buffer
answers.write(b"= " + transcribe(np.zeros(RATE, np.float32)).encode() + b"\n")  # a first clip: ready
while True:
    header = stdin.readline()
    if not header:
        break
    n = int(header)
    data = stdin.read(4 * n)
    if len(data) != 4 * n:
        sys.exit(f"moonshine: {len(data)} of {4 * n} bytes of audio came")
    try:
        answer = b"= " + transcribe(np.frombuffer(data, dtype="<f4").copy()).encode()
    except Exception as e:
        traceback.print_exc()
        answer = b"! " + " ".join(f"{type(e).__name__}: {e}".split()).encode()
    answers.write(answer + b"\n")
)PY";

}  // namespace detail::moonshine

/// One helper process; not for two threads at once. A helper that dies is
/// started again on the next clip.
class MoonshineRecognizer final : public Recognizer {
 public:
  static constexpr int kSampleRate = 16000;

  /// Starts the helper, waits for its model and hears a first (silent)
  /// clip; throws kokoro::Error (with the helper's own message) when it
  /// cannot run here.
  explicit MoonshineRecognizer(MoonshineOptions options = {}) : options_(std::move(options)) {
    start();
  }

  std::string name() const override { return "moonshine"; }

  std::string transcribe(const std::vector<float>& samples, int sample_rate) override {
    if (!child_ || !child_->running()) start();
    const auto audio = audio::resample(samples, sample_rate, kSampleRate);
    const double seconds = static_cast<double>(audio.size()) / kSampleRate;
    const auto deadline =
        after(options_.clip_seconds + options_.seconds_per_audio_second * seconds);
    std::string line;
    try {
      child_->write(fmt::format("{}\n", audio.size()), deadline);
      child_->write(audio.data(), audio.size() * sizeof(float), deadline);
      line = child_->read_line(deadline);
    } catch (...) {
      child_.reset();
      throw;
    }
    return answer(line);
  }

 private:
  static ChildProcess::Deadline after(double seconds) {
    return std::chrono::steady_clock::now() +
           std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000.0)));
  }

  /// The text of an answer line; kokoro::Error for a clip the helper could
  /// not hear (it goes on) or a line that is no answer.
  static std::string answer(const std::string& line) {
    if (line.rfind("= ", 0) == 0) return line.substr(2);
    if (line.rfind("! ", 0) == 0) {
      throw Error("the Moonshine recognizer could not hear a clip: " + line.substr(2));
    }
    throw Error(fmt::format("the Moonshine recognizer said '{}', which is no answer", line));
  }

  void start() {
    child_.reset();
    // A bare name is looked up on PATH; a path must be there.
    std::error_code unknown;
    if (options_.python.has_parent_path() && !std::filesystem::exists(options_.python, unknown)) {
      throw Error(fmt::format(
          "{}: no Python for the Moonshine recognizer (scripts/setup-python makes kokoro's "
          "environment; KOKORO_PYTHON names another)",
          options_.python.string()));
    }
    // -I: isolated from the current folder and the user's site-packages, so
    // that a stray numpy.py cannot stand in for the real one.
    auto child = std::make_unique<ChildProcess>(
        "the Moonshine recognizer",
        std::vector<std::string>{options_.python.string(), "-I", "-u", "-c",
                                 detail::moonshine::kProgram, options_.model_dir.string(),
                                 std::to_string(options_.threads)});
    answer(child->read_line(after(options_.start_seconds)));
    child_ = std::move(child);
  }

  MoonshineOptions options_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace kokoro::tts::eval
