// kokoro-synthesize: a trained kokoro-train model says text of your choosing.
// Text comes from the arguments, from a file of lines (--text-file, "-" for
// standard input) or, with neither, from standard input; each non-empty
// line becomes one WAV: -o FILE for a single line, else --out DIR
// (001.wav, 002.wav, ...). The model, its audio settings and its phoneme
// vocabulary all come from the checkpoint (see kokoro/tts/synthesizer.hpp).
// --timestamps writes beside each WAV when each word and phoneme is said:
// <name>.json, or a Praat <name>.TextGrid with --timestamps=textgrid.
// Prints each file written with its length and real-time factor.
#include <kokoro/audio/audio_file.hpp>
#include <kokoro/audio/torchscript_vocoder.hpp>
#include <kokoro/log/json.hpp>
#include <kokoro/tts/synthesizer.hpp>
#include <kokoro/util/atomic_file.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/command_line.hpp"
#include "common/device_choice.hpp"

namespace {

namespace fs = std::filesystem;
namespace tts = kokoro::tts;

/// The line's timestamps as JSON: its text, then the words and the phonemes
/// (silences left out), each with its start and end in seconds.
kokoro::Json timestamps_json(const tts::SpokenLine& line, const kokoro::tts::TextGrid& grid) {
  auto spans = [&](const char* tier) {
    kokoro::Json out = kokoro::Json::array();
    for (const auto& iv : grid.tier(tier)->intervals) {
      if (iv.label.empty()) continue;
      out.push_back({{"label", iv.label}, {"start", iv.start}, {"end", iv.end}});
    }
    return out;
  };
  return {{"text", line.text},
          {"seconds", grid.xmax},
          {"words", spans("words")},
          {"phonemes", spans("phones")}};
}

std::vector<std::string> read_lines(std::istream& in) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "kokoro-synthesize: speak text with a model trained by kokoro-train.\n"
      "  kokoro-synthesize --checkpoint runs/english_tts/latest/checkpoints/final.pt "
      "\"Hello there.\" -o hello.wav"};
  std::string checkpoint;
  std::vector<std::string> texts;
  std::string text_file;
  std::string output;
  std::string out_dir = "synthesized";
  std::string vocoder_name = "griffin-lim";
  std::string device_name = "auto";
  tts::SpeakOptions options;
  int griffin_lim_iterations = 48;
  std::string timestamps;
  app.add_option("--checkpoint,-c", checkpoint,
                 "final.pt, best.pt or a step-N.pt of a run, or its model_weights.pt")
      ->required();
  app.add_option("text", texts, "lines to say (else --text-file, else standard input)");
  app.add_option("--text-file,-f", text_file, "a file with one line to say per line (- : stdin)");
  app.add_option("-o,--output", output, "the WAV file to write (one line only)");
  app.add_option("--out", out_dir, "folder for 001.wav, 002.wav, ... (several lines)")
      ->capture_default_str();
  app.add_option("--vocoder", vocoder_name,
                 "griffin-lim, or a TorchScript vocoder file (torch.jit.save of a module mapping "
                 "a [1, n_mels, frames] log-mel to a waveform)")
      ->capture_default_str();
  app.add_option("--speed", options.speed, "speaking rate: durations divided by it (1.2: faster)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-seconds", options.max_seconds,
                 "longest audio per line; a line still speaking then is cut")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-size", options.batch_size, "lines synthesised together")
      ->capture_default_str()
      ->check(examples::whole_number_above_0);
  app.add_option("--griffin-lim-iterations", griffin_lim_iterations,
                 "phase iterations of the Griffin-Lim vocoder")
      ->capture_default_str()
      ->check(examples::whole_number_above_0);
  app.add_option("--timestamps", timestamps,
                 "also write when each word and phoneme is said, beside each WAV: json "
                 "(<name>.json) or textgrid (<name>.TextGrid, Praat)")
      ->expected(0, 1)
      ->default_str("json")
      ->check(CLI::IsMember({"json", "textgrid"}));
  examples::add_device_option(app, device_name);
  if (const auto code = examples::parse_command_line(app, argc, argv)) return *code;
  if (app.count("--timestamps") > 0 && timestamps.empty()) timestamps = "json";

  try {
    std::vector<std::string> lines;
    for (const auto& t : texts) {
      if (t.find_first_not_of(" \t") != std::string::npos) lines.push_back(t);
    }
    if (!text_file.empty()) {
      if (text_file == "-") {
        const auto more = read_lines(std::cin);
        lines.insert(lines.end(), more.begin(), more.end());
      } else {
        std::ifstream in(text_file);
        if (!in) throw kokoro::Error(fmt::format("{}: cannot open the text file", text_file));
        const auto more = read_lines(in);
        if (more.empty()) throw kokoro::Error(fmt::format("{}: holds no line to say", text_file));
        lines.insert(lines.end(), more.begin(), more.end());
      }
    } else if (texts.empty()) {
      lines = read_lines(std::cin);
    }
    if (lines.empty()) {
      throw kokoro::Error(
          "nothing to say: give the text as arguments, with --text-file, or on "
          "standard input");
    }
    if (!output.empty() && lines.size() > 1) {
      throw kokoro::Error(
          fmt::format("-o names one file, but there are {} lines to say; use --out DIR for several",
                      lines.size()));
    }

    const auto device = examples::pick_device(device_name);
    auto trained = tts::load_trained_model(checkpoint, device);
    tts::Vocoder vocoder;
    int rate = 0;
    std::string vocoder_said = "Griffin-Lim";
    if (vocoder_name == "griffin-lim") {
      auto gl = std::make_shared<kokoro::audio::GriffinLim>(tts::mel_options(trained.config.audio),
                                                            griffin_lim_iterations);
      vocoder = [gl](const torch::Tensor& mel) { return (*gl)(mel); };
    } else {
      auto script = std::make_shared<kokoro::audio::TorchScriptVocoder>(vocoder_name, device);
      rate = script->sample_rate();
      if (rate > 0 && rate != trained.config.audio.sample_rate) {
        std::fprintf(stderr,
                     "kokoro-synthesize: warning: the vocoder says %d Hz, the model's mels are "
                     "%lld Hz audio; the WAVs are written at %d Hz\n",
                     rate, static_cast<long long>(trained.config.audio.sample_rate), rate);
      }
      vocoder = [script](const torch::Tensor& mel) { return (*script)(mel); };
      vocoder_said = vocoder_name;
    }
    std::printf("kokoro-synthesize: %s (step %lld, %lld parameters) on %s, vocoder %s\n",
                checkpoint.c_str(), static_cast<long long>(trained.global_step),
                static_cast<long long>(trained.model->parameter_count()), device.str().c_str(),
                vocoder_said.c_str());
    tts::Synthesizer synthesizer(std::move(trained), vocoder, rate);

    const auto start = std::chrono::steady_clock::now();
    const auto spoken = synthesizer.speak(lines, options);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (output.empty()) fs::create_directories(out_dir);
    double audio_seconds = 0;
    for (std::size_t i = 0; i < spoken.size(); ++i) audio_seconds += spoken[i].seconds();
    for (std::size_t i = 0; i < spoken.size(); ++i) {
      const auto& line = spoken[i];
      const fs::path file =
          output.empty() ? fs::path(out_dir) / fmt::format("{:03d}.wav", i + 1) : fs::path(output);
      if (file.has_parent_path()) fs::create_directories(file.parent_path());
      kokoro::audio::save_wav(file, line.samples, synthesizer.sample_rate());
      if (!timestamps.empty()) {
        const auto grid = tts::timestamps(line, synthesizer.trained().config.audio);
        auto beside = file;
        if (timestamps == "textgrid") {
          kokoro::tts::write_textgrid(grid, beside.replace_extension(".TextGrid"));
        } else {
          kokoro::write_file_atomically(beside.replace_extension(".json"),
                                        timestamps_json(line, grid).dump(2) + "\n");
        }
      }
      // Real-time factor: seconds of computing per second of audio.
      const double rtf = line.seconds() > 0 ? line.compute_seconds / line.seconds() : 0;
      std::printf("  %s  %.2f s  %lld frames  RTF %.3f%s\n", file.c_str(), line.seconds(),
                  static_cast<long long>(line.mel.size(0)), rtf,
                  line.stopped          ? ""
                  : line.reached_length ? "  (no stop token: ended at its predicted length)"
                                        : "  (no stop token: cut at --max-seconds)");
      if (!line.unknown.empty()) {
        std::fprintf(stderr, "kokoro-synthesize: line %zu: %zu tokens outside the vocabulary: %s\n",
                     i + 1, line.unknown.size(),
                     fmt::format("{}", fmt::join(line.unknown, " ")).c_str());
      }
    }
    std::printf("kokoro-synthesize: %zu file%s, %.2f s of audio at %d Hz in %.2f s (RTF %.3f)\n",
                spoken.size(), spoken.size() == 1 ? "" : "s", audio_seconds,
                synthesizer.sample_rate(), elapsed,
                audio_seconds > 0 ? elapsed / audio_seconds : 0);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro-synthesize: %s\n", e.what());
    return 1;
  }
}
