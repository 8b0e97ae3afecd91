// Run folders: each training run writes its checkpoints, logs and samples
// under <logging.output_dir>/<logging.run_name>, so that a second run into
// the same output folder never touches the first one's files. Shared things
// (a feature cache, a demo corpus) stay in <output_dir> itself.
//
//   runs/english_tts/20261201-103609/   one run: run.yaml, checkpoints/, ...
//   runs/english_tts/20261201-141502/   the next
//   runs/english_tts/latest -> 20261201-141502
//
// A folder holds a run once it has run.yaml (the configuration the run
// started with, written when training begins). resolve_run_folder() picks the
// run's name before anything is built from the configuration:
//  - a fresh run (training.resume empty) without a name gets the date and
//    time; one with a name whose folder already holds a run stops, naming
//    --resume auto and --overwrite (logging.overwrite deletes that folder);
//  - `training.resume: auto` continues the named run, else the latest one
//    (the `latest` link, else the newest run.yaml), else starts fresh;
//  - `training.resume: <file>` starts from that file in the named run, or in
//    a new one.
#pragma once

#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "kokoro/core/training_config.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

/// The file that marks a folder as a run's.
inline constexpr const char* kRunMarker = "run.yaml";
/// The link in <output_dir> to the run started last.
inline constexpr const char* kLatestRunLink = "latest";

/// Where a run writes: <output_dir>/<run_name>, or <output_dir> itself while
/// run_name is empty (a configuration no Trainer has resolved yet).
inline std::filesystem::path run_directory(const LoggingSection& logging) {
  const std::filesystem::path root(logging.output_dir);
  return logging.run_name.empty() ? root : root / logging.run_name;
}
inline std::filesystem::path run_directory(const TrainingConfig& config) {
  return run_directory(config.logging);
}

/// Whether `dir` holds a run (its run.yaml).
inline bool holds_run(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / kRunMarker, ec);
}

/// The run of <root> started last: the one `latest` names, else the one whose
/// run.yaml is newest. Nothing when <root> holds no run.
inline std::optional<std::string> latest_run(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto link = root / kLatestRunLink;
  if (fs::is_symlink(link, ec)) {
    const auto target = fs::read_symlink(link, ec).filename().string();
    if (!ec && !target.empty() && holds_run(root / target)) return target;
  }
  std::optional<std::string> newest;
  fs::file_time_type newest_time{};
  if (!fs::is_directory(root, ec)) return newest;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.path().filename() == kLatestRunLink || !entry.is_directory(ec)) continue;
    if (!holds_run(entry.path())) continue;
    const auto when = fs::last_write_time(entry.path() / kRunMarker, ec);
    if (ec) continue;
    if (!newest || when > newest_time) {
      newest = entry.path().filename().string();
      newest_time = when;
    }
  }
  return newest;
}

/// A name for a new run of <root>: the local date and time
/// ("20261201-103609"), with "-2", "-3", ... when that folder exists.
inline std::string new_run_name(const std::filesystem::path& root) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  std::string name = stamp;
  std::error_code ec;
  for (int k = 2; std::filesystem::exists(root / name, ec); ++k) {
    name = fmt::format("{}-{}", stamp, k);
  }
  return name;
}

/// What resolve_run_folder decided.
struct RunFolder {
  std::string name;
  std::filesystem::path dir;
  std::vector<std::string> notes;  ///< for the console: which run, and why
};

/// Sets config.logging.run_name (see the top of this file) and returns the
/// run's folder. Throws ConfigError for a run name that is not a plain folder
/// name, and for a fresh run into a folder that holds another run. Calling
/// it again on its result changes nothing (logging.overwrite is consumed).
inline RunFolder resolve_run_folder(TrainingConfig& config) {
  auto& logging = config.logging;
  const std::filesystem::path root(logging.output_dir);
  const std::string& resume = config.training.resume;
  RunFolder out;
  if (!logging.run_name.empty()) {
    const auto& name = logging.run_name;
    if (name == "." || name == ".." || name == kLatestRunLink ||
        name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
      throw ConfigError(fmt::format(
          "logging.run_name: \"{}\" is not a folder name for a run (no '/', not \".\", \"..\" "
          "or \"{}\")",
          name, kLatestRunLink));
    }
  }
  if (resume == "auto" && logging.run_name.empty()) {
    if (const auto latest = latest_run(root)) {
      logging.run_name = *latest;
      out.notes.push_back(fmt::format("resuming the latest run in {}: {}", root.string(), *latest));
    } else {
      logging.run_name = new_run_name(root);
      out.notes.push_back(fmt::format("no earlier run in {}; starting a new run {}", root.string(),
                                      logging.run_name));
      std::error_code ec;
      if (std::filesystem::is_directory(root / "checkpoints", ec)) {
        out.notes.push_back(fmt::format(
            "{} holds checkpoints of a run from before run folders; continue it with --resume "
            "<file>",
            (root / "checkpoints").string()));
      }
    }
  } else if (logging.run_name.empty()) {
    logging.run_name = new_run_name(root);
    out.notes.push_back(fmt::format("run {} in {}", logging.run_name, root.string()));
  } else if (resume.empty() && holds_run(run_directory(logging))) {
    const auto dir = run_directory(logging);
    if (!logging.overwrite) {
      throw ConfigError(fmt::format(
          "{} already holds the run \"{}\"; continue it with --resume auto "
          "(training.resume=auto), start it over with --overwrite (logging.overwrite=true, "
          "deletes that folder), or name another run (logging.run_name)",
          dir.string(), logging.run_name));
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) {
      throw Error(fmt::format("--overwrite: could not delete {}: {}", dir.string(), ec.message()));
    }
    out.notes.push_back(fmt::format("deleted the earlier run in {} (--overwrite)", dir.string()));
  }
  logging.overwrite = false;
  out.name = logging.run_name;
  out.dir = run_directory(logging);
  return out;
}

/// resolve_run_folder for a group of processes (a distribution policy, see
/// core/distribution_policy.hpp): rank 0 decides (a new run's name,
/// --overwrite, the latest run) and the others take its decision, or throw
/// its error as a ConfigError; only rank 0's result carries notes.
template <class Distribution>
RunFolder resolve_run_folder(TrainingConfig& config, Distribution& distribution) {
  if (distribution.world_size() == 1) return resolve_run_folder(config);
  if (distribution.rank() == 0) {
    RunFolder folder;
    try {
      folder = resolve_run_folder(config);
    } catch (const std::exception& e) {
      distribution.share("run_folder", std::string("error\n") + e.what());
      throw;
    }
    distribution.share("run_folder", "ok\n" + config.logging.run_name);
    return folder;
  }
  const auto decided = distribution.share("run_folder", "");
  const auto newline = decided.find('\n');
  const auto text = newline == std::string::npos ? std::string() : decided.substr(newline + 1);
  if (decided.substr(0, newline) != "ok") throw ConfigError(text);
  config.logging.run_name = text;
  config.logging.overwrite = false;
  RunFolder folder;
  folder.name = text;
  folder.dir = run_directory(config.logging);
  return folder;
}

/// Marks the run's folder as a run's (run.yaml holding `config_yaml`) and
/// points <output_dir>/latest at it. Throws kokoro::Error when the folder or
/// run.yaml cannot be written; a link that cannot be made (a file system
/// without symbolic links) is left out, since latest_run() falls back to the
/// newest run.yaml.
inline void mark_run_started(const LoggingSection& logging, const std::string& config_yaml) {
  namespace fs = std::filesystem;
  const auto dir = run_directory(logging);
  fs::create_directories(dir);
  write_file_atomically(dir / kRunMarker, config_yaml);
  if (logging.run_name.empty()) return;
  const fs::path root(logging.output_dir);
  const auto staged = root / fmt::format(".{}.{}", kLatestRunLink, ::getpid());
  std::error_code ec;
  fs::remove(staged, ec);
  fs::create_directory_symlink(logging.run_name, staged, ec);
  if (!ec) fs::rename(staged, root / kLatestRunLink, ec);
  if (ec) fs::remove(staged, ec);
}

}  // namespace kokoro
