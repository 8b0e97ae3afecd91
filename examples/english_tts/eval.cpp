// kokoro-eval: how well one or more trained models speak, measured against
// the recordings of a corpus (LJSpeech layout: metadata.csv, wavs/, and
// TextGrid/ where there are durations). Each model speaks every chosen
// clip's text as kokoro-synthesize would; tts/eval/quality.hpp scores it
// (MCD with and without DTW, log-F0 RMSE, voicing error, length ratio,
// duration error, the recognizer's WER and CER; --recognizer picks it, and
// the table names the one that heard). Prints one table row per
// checkpoint and the ceilings as rows of their own: the recognizer on the
// recordings, and Griffin-Lim of the recorded mels (the vocoder alone).
// --json writes the same, with every clip's figures and transcripts.
// Progress goes to stderr.
#include <kokoro/audio/torchscript_vocoder.hpp>
#include <kokoro/log/json.hpp>
#include <kokoro/tts/eval/quality.hpp>
#include <kokoro/tts/synthesizer.hpp>
#include <kokoro/util/atomic_file.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/command_line.hpp"
#include "common/device_choice.hpp"

namespace {

namespace fs = std::filesystem;
namespace tts = kokoro::tts;
namespace eval = kokoro::tts::eval;
using kokoro::Json;

struct Row {
  std::string name;
  kokoro::Metrics figures;
};

std::string cell(const kokoro::Metrics& m, const std::string& name) {
  const auto v = m.get(name);
  if (!v || !std::isfinite(*v)) return "-";
  return fmt::format("{:.3f}", *v);
}

/// The clips of `data_dir` as the checkpoint's settings see them: features
/// (and durations) from its feature cache, sorted by id; `split`: all of
/// them, or those the run held out for validation (its validation_split and
/// seed split the corpus the same way), or those it trained on.
std::vector<tts::CorpusClip> corpus_clips(const tts::TrainedModel& trained, const fs::path& data_dir,
                                          const fs::path& cache, const std::string& split) {
  auto config = trained.config;
  config.data.data_dir = data_dir.string();
  auto prepared = tts::prepare_corpus(config, trained.processor, data_dir, cache, {}, true);
  std::vector<tts::CorpusClip> clips;
  if (split != "validation") clips = prepared.train;
  if (split != "train") {
    clips.insert(clips.end(), prepared.validation.begin(), prepared.validation.end());
  }
  std::sort(clips.begin(), clips.end(),
            [](const tts::CorpusClip& a, const tts::CorpusClip& b) { return a.id < b.id; });
  if (prepared.report.skipped_total() > 0) {
    std::fprintf(stderr, "kokoro-eval: %s\n", prepared.report.summary().c_str());
  }
  return clips;
}

std::vector<tts::CorpusClip> choose(std::vector<tts::CorpusClip> clips, const std::string& ids_file,
                                    std::int64_t limit) {
  if (!ids_file.empty()) {
    std::ifstream in(ids_file);
    if (!in) throw kokoro::Error(fmt::format("{}: cannot open the id list", ids_file));
    std::set<std::string> wanted;
    for (std::string line; std::getline(in, line);) {
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (!line.empty() && line[0] != '#') wanted.insert(line);
    }
    std::vector<tts::CorpusClip> kept;
    for (auto& c : clips) {
      if (wanted.erase(c.id) > 0) kept.push_back(std::move(c));
    }
    if (!wanted.empty()) {
      throw kokoro::Error(fmt::format("{}: {} id(s) not among the corpus's usable clips, e.g. {}",
                                      ids_file, wanted.size(), *wanted.begin()));
    }
    clips = std::move(kept);
  }
  if (limit > 0 && static_cast<std::int64_t>(clips.size()) > limit) {
    clips.resize(static_cast<std::size_t>(limit));
  }
  return clips;
}

Json clip_json(const eval::ClipQuality& q) {
  auto number = [](double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); };
  return Json{{"id", q.id},
              {"mcd", number(q.mcd)},
              {"mcd_plain", number(q.mcd_plain)},
              {"f0_rmse", number(q.f0_rmse)},
              {"vde", number(q.vde)},
              {"length_ratio", number(q.length_ratio)},
              {"duration_mae", number(q.duration_mae)},
              {"word_edits", q.errors.word_edits},
              {"reference_words", q.errors.reference_words},
              {"heard", q.hypothesis},
              {"stopped", q.stopped}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "kokoro-eval: measure how well trained models speak, against a corpus's recordings.\n"
      "  kokoro-eval runs/kokoro/latest/checkpoints/final.pt --data ../LJSpeech-1.1 --limit 20"};
  std::vector<std::string> checkpoints;
  std::string data_dir;
  std::string ids_file;
  std::int64_t limit = 0;
  std::string json_path;
  std::string cache_dir;
  std::string vocoder_name = "griffin-lim";
  std::string device_name = "auto";
  std::string split = "all";
  std::string recognizer = "auto";
  bool no_recognizer = false;
  std::int64_t mcd_order = 24;
  app.add_option("checkpoints", checkpoints,
                 "final.pt, best.pt, step-N.pt or model_weights.pt of kokoro-train runs")
      ->required();
  app.add_option("--data,-d", data_dir, "the corpus: metadata.csv, wavs/ (and TextGrid/)")
      ->required();
  app.add_option("--limit,-n", limit, "the first N clips by id (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ids", ids_file, "a file of clip ids, one per line: just these clips");
  app.add_option("--split", split,
                 "all clips, or the run's held-out validation clips, or its training clips")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "validation", "train"}));
  app.add_option("--json", json_path, "also write the results as JSON to this file (- : stdout)");
  app.add_option("--cache", cache_dir,
                 "feature cache (default: the checkpoint's run's, <output_dir>/cache)");
  app.add_option("--vocoder", vocoder_name,
                 "griffin-lim, or a TorchScript vocoder file (as kokoro-synthesize)")
      ->capture_default_str();
  app.add_option("--recognizer", recognizer,
                 "the speech recognizer for WER and CER: moonshine, pocketsphinx, auto (moonshine "
                 "where it runs), none")
      ->capture_default_str()
      ->check(CLI::IsMember(eval::recognizer_names()));
  app.add_flag("--no-recognizer", no_recognizer, "the same as --recognizer none");
  app.add_option("--mcd-order", mcd_order, "mel-cepstral coefficients in the MCD (c1..c_N)")
      ->capture_default_str()
      ->check(examples::whole_number_above_0);
  examples::add_device_option(app, device_name);
  if (const auto code = examples::parse_command_line(app, argc, argv)) return *code;

  try {
    const auto device = examples::pick_device(device_name);
    if (!fs::exists(fs::path(data_dir) / "metadata.csv")) {
      throw kokoro::Error(fmt::format("{}: no metadata.csv (an LJSpeech-format corpus is needed)",
                                      data_dir));
    }
    std::vector<Row> rows;
    Json results = Json::array();
    std::unique_ptr<eval::QualityEvaluator> evaluator;
    tts::AudioSection evaluator_audio;
    std::vector<eval::EvaluationClip> clips;
    for (std::size_t k = 0; k < checkpoints.size(); ++k) {
      const auto& checkpoint = checkpoints[k];
      auto trained = tts::load_trained_model(checkpoint, device);
      const fs::path cache =
          !cache_dir.empty() ? fs::path(cache_dir)
          : !trained.config.data.cache_dir.empty()
              ? fs::path(trained.config.data.cache_dir)
              : fs::path(trained.config.logging.output_dir) / "cache";
      // Clips and the evaluator (with its ceilings) are kept while the audio
      // settings stay the same.
      if (!evaluator || !(evaluator_audio == trained.config.audio)) {
        const auto chosen =
            choose(corpus_clips(trained, data_dir, cache, split), ids_file, limit);
        if (chosen.empty()) throw kokoro::Error(fmt::format("{}: no clip to evaluate", data_dir));
        clips = eval::evaluation_clips(chosen);
        eval::QualityOptions options;
        options.recognizer.name = no_recognizer ? "none" : recognizer;
        options.cepstrum.order = mcd_order;
        evaluator = std::make_unique<eval::QualityEvaluator>(trained.config.audio, options);
        evaluator_audio = trained.config.audio;
        if (!evaluator->recognizer_fallback().empty()) {
          std::fprintf(stderr,
                       "kokoro-eval: Moonshine could not run, PocketSphinx hears instead: %s\n",
                       evaluator->recognizer_fallback().c_str());
        }
      }
      tts::Vocoder vocoder;
      int rate = 0;
      if (vocoder_name != "griffin-lim") {
        auto script = std::make_shared<kokoro::audio::TorchScriptVocoder>(vocoder_name, device);
        rate = script->sample_rate();
        vocoder = [script](const torch::Tensor& mel) { return (*script)(mel); };
      }
      const auto step = trained.global_step;
      tts::Synthesizer synthesizer(std::move(trained), vocoder, rate);
      auto report = evaluator->evaluate(synthesizer, clips, [&](std::size_t done, std::size_t all) {
        std::fprintf(stderr, "\rkokoro-eval: checkpoint %zu/%zu: clip %zu/%zu", k + 1,
                     checkpoints.size(), done, all);
        if (done == all) std::fprintf(stderr, " (%s)\n", checkpoint.c_str());
      });
      if (!report.recognizer_error.empty()) {
        std::fprintf(stderr, "kokoro-eval: %s: no WER or CER: %s\n", checkpoint.c_str(),
                     report.recognizer_error.c_str());
      }
      const auto figures = report.metrics();
      rows.push_back({fmt::format("{} (step {})", checkpoint, step), figures});
      Json per_clip = Json::array();
      for (const auto& q : report.clips) per_clip.push_back(clip_json(q));
      results.push_back(Json{{"checkpoint", checkpoint},
                             {"step", step},
                             {"seconds", report.seconds},
                             {"recognizer_error", report.recognizer_error},
                             {"metrics", kokoro::detail::json_object(figures)},
                             {"clips", per_clip}});
    }

    // The table: one row per checkpoint, then the ceilings.
    const std::vector<std::string> columns = {"mcd",     "mcd_plain",    "f0_rmse", "vde",
                                              "length_ratio", "duration_mae", "wer",     "cer"};
    std::size_t name_width = 10;
    for (const auto& r : rows) name_width = std::max(name_width, r.name.size());
    std::string header = fmt::format("{:<{}}", "model", name_width);
    for (const auto& c : columns) header += fmt::format(" {:>12}", c);
    // With --json - the JSON owns stdout and the table goes to stderr.
    std::FILE* table = json_path == "-" ? stderr : stdout;
    const auto heard_by = evaluator->recognizer_name();
    std::fprintf(table, "kokoro-eval: %zu clips of %s%s\n%s\n", clips.size(), data_dir.c_str(),
                 heard_by.empty() ? "" : fmt::format(", wer/cer heard by {}", heard_by).c_str(),
                 header.c_str());
    for (const auto& r : rows) {
      std::string line = fmt::format("{:<{}}", r.name, name_width);
      for (const auto& c : columns) line += fmt::format(" {:>12}", cell(r.figures, c));
      std::fprintf(table, "%s\n", line.c_str());
    }
    const auto& figures = rows.back().figures;
    Json ceilings = Json::object();
    for (const std::string reference : {"griffin_lim", "recording"}) {
      std::string line = fmt::format("{:<{}}", "ceiling: " + reference, name_width);
      Json values = Json::object();
      for (const auto& c : columns) {
        line += fmt::format(" {:>12}", cell(figures, c + "@" + reference));
        if (const auto v = figures.get(c + "@" + reference); v && std::isfinite(*v)) values[c] = *v;
      }
      ceilings[reference] = values;
      std::fprintf(table, "%s\n", line.c_str());
    }
    if (!json_path.empty()) {
      const Json out = {{"data", data_dir},
                        {"clips", static_cast<std::int64_t>(clips.size())},
                        {"clip_ids", [&] {
                           Json ids = Json::array();
                           for (const auto& c : clips) ids.push_back(c.id);
                           return ids;
                         }()},
                        {"mcd_cepstra", fmt::format("orthonormal DCT-II of the log-mel, c1..c{}",
                                                    mcd_order)},
                        {"recognizer", heard_by},
                        {"models", results},
                        {"ceilings", ceilings}};
      const auto text = out.dump(2) + "\n";
      if (json_path == "-") {
        std::fwrite(text.data(), 1, text.size(), stdout);
      } else {
        kokoro::write_file_atomically(json_path, text);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro-eval: %s\n", e.what());
    return 1;
  }
}
