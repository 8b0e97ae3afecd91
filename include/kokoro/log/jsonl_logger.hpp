// JsonlLogger: one JSON object per line in <run directory>/metrics.jsonl,
// a row per logged step and one per epoch, flushed as written, so that
// `jq`, pandas (`read_json(lines=True)`) or a tail -f can follow a run.
//   {"type":"step","time":1764086400.1,"epoch":0,"global_step":10,"step_in_epoch":10,"metrics":{...}}
//   {"type":"epoch","time":...,"epoch":0,"global_step":16,"seconds":1.2,"train":{...},"validation":{...}}
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/log/json.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

class JsonlLogger {
 public:
  /// Writes nowhere (a logger that is switched off).
  JsonlLogger() = default;

  /// <run directory>/metrics.jsonl when `logging.jsonl` is on.
  explicit JsonlLogger(const TrainingConfig& config) {
    if (config.logging.jsonl)
      open(run_directory(config) / "metrics.jsonl");
  }

  explicit JsonlLogger(const std::filesystem::path& path) { open(path); }

  const std::filesystem::path& path() const { return path_; }

  void on_step(const StepContext& s) {
    Json row = {{"type", "step"},
                {"time", detail::unix_seconds()},
                {"epoch", s.epoch},
                {"global_step", s.global_step},
                {"step_in_epoch", s.step_in_epoch},
                {"samples", s.samples},
                {"step_taken", s.step_taken},
                {"metrics", detail::json_object(s.metrics)}};
    write(row);
  }

  void on_epoch_end(const EpochContext& e) {
    Json row = {{"type", "epoch"},
                {"time", detail::unix_seconds()},
                {"epoch", e.epoch},
                {"global_step", e.global_step},
                {"seconds", e.seconds},
                {"train", detail::json_object(e.train)},
                {"validation", detail::json_object(e.validation)}};
    write(row);
  }

 private:
  void open(const std::filesystem::path& path) {
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    out_ = std::make_unique<std::ofstream>(path, std::ios::app);
    if (!*out_) throw Error(fmt::format("{}: cannot open for writing", path.string()));
    path_ = path;
  }

  void write(const Json& row) {
    if (!out_) return;
    *out_ << detail::dump(row) << '\n';
    out_->flush();
  }

  std::unique_ptr<std::ofstream> out_;
  std::filesystem::path path_;
};

static_assert(LoggerPolicy<JsonlLogger>);

}  // namespace kokoro
