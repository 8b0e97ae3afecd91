// JsonlLogger: one JSON object per line in <run directory>/metrics.jsonl,
// a row per logged step and one per epoch, each written whole as it comes
// (a failed write is cut off and tried again with the next row), so that
// `jq`, pandas (`read_json(lines=True)`) or a tail -f can follow a run.
//   {"type":"step","time":1764086400.1,"epoch":0,"global_step":10,"step_in_epoch":10,"metrics":{...}}
//   {"type":"epoch","time":...,"epoch":0,"global_step":16,"seconds":1.2,"train":{...},"validation":{...}}
#pragma once

#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/log/json.hpp"
#include "kokoro/util/append_file.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

class JsonlLogger {
 public:
  /// Writes nowhere (a logger that is switched off).
  JsonlLogger() = default;

  /// <run directory>/metrics.jsonl when `logging.jsonl` is on.
  explicit JsonlLogger(const TrainingConfig& config) {
    if (config.logging.jsonl) file_ = AppendFile(run_directory(config) / "metrics.jsonl");
  }

  explicit JsonlLogger(const std::filesystem::path& path) : file_(path) {}

  const std::filesystem::path& path() const { return file_.path(); }
  /// Rows that could not be written (each one threw, for the Trainer to count).
  std::int64_t failed_rows() const { return file_.failed_appends(); }

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

  void on_evaluation(const EvaluationContext& e) {
    Json row = {{"type", "evaluation"},
                {"time", detail::unix_seconds()},
                {"epoch", e.epoch},
                {"global_step", e.global_step},
                {"seconds", e.seconds},
                {"share", e.share},
                {"final", e.final},
                {"metrics", detail::json_object(e.metrics)}};
    write(row);
  }

 private:
  // A whole line or nothing: a full disk never leaves half a row behind,
  // and the next row tries again.
  void write(const Json& row) { file_.append(detail::dump(row) + '\n'); }

  AppendFile file_;
};

static_assert(LoggerPolicy<JsonlLogger>);

}  // namespace kokoro
