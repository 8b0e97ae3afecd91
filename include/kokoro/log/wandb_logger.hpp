// WandbLogger: streams a run to Weights & Biases over the HTTP API its own
// client uses: a GraphQL `upsertBucket` creates the run with the
// configuration, then the run's `file_stream` endpoint receives history rows
// (wandb-history.jsonl, appended by line offset), the summary
// (wandb-summary.json, overwritten) and finally `{"complete": true}`.
//
// A resumed kokoro run continues its W&B run: the run id is kept in the run
// folder (wandb-run-id), and before sending, the stream asks the service for
// the run's history line count, its last `_step` and `_runtime` and its
// summary, as W&B's client does on resume, so that offsets, `_step` and
// `_runtime` go on from there and the history is appended to, never
// rewritten.
//
// Media and files: sample images and audio (on_media) go into the history
// as W&B media values ({"_type": "image-file" | "audio-file", "path",
// "sha256", "size", ...}) and their PNG/WAV files are uploaded as the run's
// files under media/; with `logging.wandb_upload_checkpoints`, the final and
// best checkpoints are uploaded as checkpoints/final.pt and best.pt when
// training ends. Uploads follow W&B's file flow: a GraphQL `RunUploadUrls`
// query gives each file's upload URL (and headers), the file is PUT there,
// and the file stream is told which files were uploaded. A failed upload is
// tried again twice, then counted and reported; training never waits on it.
//
// Training never waits for the network: rows go into a bounded queue that a
// background thread sends every `flush_seconds`; when the queue is full new
// rows are dropped and counted. At the end of training the thread gets one
// last try, bounded by `finish_timeout_seconds`, and the counts are reported.
//
// Switched on by `logging.wandb`. Online when an API key is found
// (WANDB_API_KEY, else the password for the API host in ~/.netrc, as
// `wandb login` writes it) and WANDB_MODE is not offline/disabled/dryrun.
// Otherwise it says once (a Message, through the Trainer) how to upload the
// TensorBoard files instead.
// Also read: WANDB_BASE_URL, WANDB_ENTITY, WANDB_PROJECT (when
// logging.wandb_project is empty), WANDB_RUN_ID, WANDB_NAME, WANDB_RESUME
// (allow, must, auto: continue the run named by WANDB_RUN_ID).
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/media.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/log/http_client.hpp"
#include "kokoro/log/json.hpp"
#include "kokoro/log/png.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/wav.hpp"

#include <openssl/evp.h>

namespace kokoro {

namespace detail::wandb {

inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

/// The password for `host` in ~/.netrc, or "".
inline std::string netrc_password(const std::string& host) {
  const auto home = env("HOME");
  if (home.empty()) return "";
  std::ifstream in(std::filesystem::path(home) / ".netrc");
  std::string token, machine, password;
  bool ours = false;
  while (in >> token) {
    if (token == "machine" && in >> machine) {
      ours = machine == host;
    } else if (token == "password" && in >> password && ours) {
      return password;
    }
  }
  return "";
}

inline std::string host_of(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  const auto end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

/// 8 random characters from [a-z0-9], like W&B's own run ids. Drawn from
/// std::random_device, not libtorch's generator, so the run stays reproducible.
inline std::string random_run_id() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::string id;
  for (int i = 0; i < 8; ++i) id += alphabet[device() % 36];
  return id;
}

/// The configuration as W&B expects it: {"<section>": {"value": {...}, "desc": null}}.
inline Json config_json(const ConfigValues& settings) {
  Json out = Json::object();
  for (const auto& v : settings) {
    auto& section = out[v.section];
    if (section.is_null()) section = {{"value", Json::object()}, {"desc", nullptr}};
    std::visit([&](const auto& value) { section["value"][v.key] = value; }, v.value);
  }
  return out;
}

/// The SHA-256 of `bytes` in hex (W&B's media values carry it).
inline std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

/// A file for the run: bytes in memory (media) or a file on disk (checkpoints).
struct Upload {
  std::string name;  ///< its path among the run's files
  std::string bytes;
  std::filesystem::path file;  ///< used when set
  int attempts = 0;
};

/// A number of the reply as an int64: nullopt for anything else, and for a
/// float that is not a whole number within int64's range (converting one
/// would be undefined).
inline std::optional<std::int64_t> whole_number(const Json& field) {
  if (field.is_number_integer()) {
    if (field.is_number_unsigned() &&
        field.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
      return std::nullopt;
    }
    return field.get<std::int64_t>();
  }
  if (!field.is_number_float()) return std::nullopt;
  const double value = field.get<double>();
  // 2^63 is exactly representable; anything at or above it is out of range.
  if (!(value >= -9223372036854775808.0 && value < 9223372036854775808.0)) return std::nullopt;
  if (std::trunc(value) != value) return std::nullopt;
  return static_cast<std::int64_t>(value);
}

/// A JSON text held in a string field (W&B's JSONString), parsed; null when
/// the field is no string or its text no JSON.
inline Json json_in_string(const Json& field) {
  if (!field.is_string()) return Json();
  auto parsed = Json::parse(field.get_ref<const std::string&>(), nullptr, false);
  return parsed.is_discarded() ? Json() : parsed;
}

/// The value the keys of `path` lead to from `reply`, or nullptr where
/// there is none (a missing key, a value that is no object on the way).
inline const Json* value_at(const Json& reply, std::initializer_list<const char*> path) {
  const Json* at = &reply;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

/// What the server says of a run being resumed (RunResumeStatus).
struct ResumeReply {
  bool exists = false;             ///< false: a new run
  std::int64_t history_lines = 0;  ///< lines the run's history holds
  std::int64_t first_step = 0;     ///< the step the next line takes
  double runtime = 0.0;            ///< seconds the run has run
  Json summary;                    ///< its summary (an object, or null)
};

/// Reads the RunResumeStatus reply `body`; nullopt when it is not a JSON
/// object. Fields of another type than expected are taken as absent.
inline std::optional<ResumeReply> read_resume_reply(std::string_view body) {
  const auto reply = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) return std::nullopt;
  ResumeReply out;
  const Json* bucket = value_at(reply, {"data", "model", "bucket"});
  if (!bucket || !bucket->is_object()) return out;
  out.exists = true;
  if (const auto it = bucket->find("historyLineCount"); it != bucket->end()) {
    if (const auto lines = whole_number(*it); lines && *lines >= 0) out.history_lines = *lines;
  }
  out.first_step = out.history_lines;
  auto finite = [](const Json& field) {
    return field.is_number() && std::isfinite(field.get<double>());
  };
  if (const auto it = bucket->find("historyTail"); it != bucket->end()) {
    const auto tail = json_in_string(*it);
    if (tail.is_array() && !tail.empty()) {
      const auto last = tail.back().is_string() ? json_in_string(tail.back()) : tail.back();
      if (last.is_object()) {
        if (const auto step = last.find("_step"); step != last.end()) {
          if (const auto n = whole_number(*step); n && *n >= 0 && *n < INT64_MAX) {
            out.first_step = *n + 1;
          }
        }
        if (const auto runtime = last.find("_runtime"); runtime != last.end() && finite(*runtime)) {
          out.runtime = runtime->get<double>();
        }
      }
    }
  }
  if (const auto it = bucket->find("summaryMetrics"); it != bucket->end()) {
    auto summary = json_in_string(*it);
    if (summary.is_object()) {
      if (const auto runtime = summary.find("_runtime");
          runtime != summary.end() && finite(*runtime)) {
        out.runtime = std::max(out.runtime, runtime->get<double>());
      }
      out.summary = std::move(summary);
    }
  }
  return out;
}

/// What the server says to the run's creation (UpsertBucket).
struct RunReply {
  std::string error;   ///< why it failed; empty when it did not
  std::string entity;  ///< the entity the run belongs to
};

inline RunReply read_run_reply(std::string_view body) {
  const auto reply = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  RunReply out;
  if (reply.is_discarded() || !reply.is_object()) {
    out.error = "run creation: the reply is not a JSON object";
    return out;
  }
  if (const auto errors = reply.find("errors");
      errors != reply.end() && errors->is_array() && !errors->empty()) {
    const auto& first = errors->front();
    const Json* message = value_at(first, {"message"});
    out.error = "run creation refused: " +
                (message && message->is_string() ? message->get<std::string>() : std::string("?"));
    return out;
  }
  const Json* entity =
      value_at(reply, {"data", "upsertBucket", "bucket", "project", "entity", "name"});
  if (entity && entity->is_string()) out.entity = entity->get<std::string>();
  if (out.entity.empty()) out.error = "run creation: the reply names no entity; set WANDB_ENTITY";
  return out;
}

/// Where the run's files go (the upload-URL query's reply): a URL per file
/// name, and the headers every upload sends.
struct UploadReply {
  std::map<std::string, std::string> urls;
  std::vector<std::string> headers;
};

inline UploadReply read_upload_reply(std::string_view body) {
  const auto reply = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  UploadReply out;
  const Json* files = value_at(reply, {"data", "model", "bucket", "files"});
  if (!files || !files->is_object()) return out;
  if (const auto h = files->find("uploadHeaders"); h != files->end() && h->is_array()) {
    for (const auto& header : *h) {
      if (header.is_string()) out.headers.push_back(header.get<std::string>());
    }
  }
  if (const auto edges = files->find("edges"); edges != files->end() && edges->is_array()) {
    for (const auto& edge : *edges) {
      const Json* name = value_at(edge, {"node", "name"});
      const Json* url = value_at(edge, {"node", "url"});
      if (name && name->is_string() && url && url->is_string()) {
        out.urls[name->get<std::string>()] = url->get<std::string>();
      }
    }
  }
  return out;
}

}  // namespace detail::wandb

/// Where and how a WandbLogger streams.
struct WandbSettings {
  std::string api_key;
  std::string base_url = "https://api.wandb.ai";
  std::string entity;  ///< empty: the API key's default entity
  std::string project = "kokoro";
  std::string run_id;    ///< empty: a random one
  std::string run_name;  ///< the display name; empty: W&B makes one
  std::string mode;      ///< WANDB_MODE
  /// Continue the run's history (a resumed training run, or WANDB_RESUME).
  bool resume = false;
  /// Where the run id is kept between the invocations of one training run
  /// (<run directory>/wandb-run-id); empty: nowhere.
  std::filesystem::path run_id_file;
  double flush_seconds = 2.0;
  double heartbeat_seconds = 30.0;
  double max_backoff_seconds = 30.0;
  std::size_t max_queued_rows = 10000;
  double finish_timeout_seconds = 15.0;
  /// At the end, how long the files still queued (checkpoints) may take on
  /// top of finish_timeout_seconds.
  double upload_timeout_seconds = 600.0;
  /// An upload is given up when it moves under 1 KiB/s for this long.
  long upload_stall_seconds = 60;
  /// Upload final.pt and best.pt at the end (logging.wandb_upload_checkpoints).
  bool upload_checkpoints = false;
  HttpOptions http;

  bool online() const {
    return !api_key.empty() && mode != "offline" && mode != "disabled" && mode != "dryrun";
  }

  /// From the configuration and W&B's environment variables and ~/.netrc.
  static WandbSettings from(const TrainingConfig& config) {
    using detail::wandb::env;
    WandbSettings s;
    if (const auto url = env("WANDB_BASE_URL"); !url.empty()) s.base_url = url;
    while (!s.base_url.empty() && s.base_url.back() == '/') s.base_url.pop_back();
    s.api_key = env("WANDB_API_KEY");
    if (s.api_key.empty())
      s.api_key = detail::wandb::netrc_password(detail::wandb::host_of(s.base_url));
    s.entity = env("WANDB_ENTITY");
    s.project = config.logging.wandb_project;
    if (s.project.empty()) s.project = env("WANDB_PROJECT");
    if (s.project.empty()) s.project = "kokoro";
    s.run_id = env("WANDB_RUN_ID");
    s.run_name = !config.logging.run_name.empty() ? config.logging.run_name : env("WANDB_NAME");
    s.mode = env("WANDB_MODE");
    const auto resume = env("WANDB_RESUME");
    s.resume = resume == "allow" || resume == "must" || resume == "auto" || resume == "true";
    s.run_id_file = run_directory(config) / "wandb-run-id";
    s.upload_checkpoints = config.logging.wandb_upload_checkpoints;
    return s;
  }
};

/// What the stream did, for the end-of-run report and for tests.
struct WandbStats {
  bool run_created = false;
  std::string entity;
  std::string run_id;
  std::int64_t rows_sent = 0;
  std::int64_t rows_dropped = 0;  ///< the queue was full
  std::int64_t rows_unsent = 0;   ///< still queued when the run ended
  std::int64_t failed_requests = 0;
  bool finished = false;  ///< the server acknowledged `complete`
  std::string last_error;
  /// On resume: the history lines the run already had (the first offset),
  /// and the `_step` this session's rows start from.
  std::int64_t resumed_lines = 0;
  std::int64_t first_step = 0;
  std::int64_t files_uploaded = 0;
  std::int64_t bytes_uploaded = 0;
  std::int64_t files_failed = 0;  ///< given up after three tries (or unsent at the end)
  std::string last_upload_error;
};

namespace detail::wandb {

/// The background sender: one thread, one queue of history lines.
class Stream {
 public:
  Stream(WandbSettings settings, Json config)
      : settings_(std::move(settings)), config_(std::move(config)), http_(settings_.http) {
    if (settings_.run_id.empty() && !settings_.run_id_file.empty()) {
      std::ifstream in(settings_.run_id_file);
      in >> settings_.run_id;  // this training run's W&B run, from an earlier invocation
    }
    if (settings_.run_id.empty()) settings_.run_id = random_run_id();
    if (!settings_.run_id_file.empty()) {
      try {
        std::filesystem::create_directories(settings_.run_id_file.parent_path());
        write_file_atomically(settings_.run_id_file, settings_.run_id + "\n");
      } catch (const std::exception&) {
        // Without it a later resume starts a new W&B run; training goes on.
      }
    }
    stats_.run_id = settings_.run_id;
    stats_.entity = settings_.entity;
    thread_ = std::thread([this] { run(); });
  }

  ~Stream() { finish(1); }

  const WandbSettings& settings() const { return settings_; }

  /// Queues a history row (its `_step` and `_runtime` offsets are added when
  /// it is sent, once a resume has said where the history stands); never
  /// blocks on the network.
  void push(Json line) {
    {
      std::lock_guard lock(mutex_);
      if (finishing_) return;
      if (rows_.size() >= settings_.max_queued_rows) {
        ++stats_.rows_dropped;
        return;
      }
      rows_.push_back(std::move(line));
    }
  }

  /// Queues a file for the run's files; never blocks on the network.
  void upload(Upload file) {
    std::lock_guard lock(mutex_);
    if (finishing_) return;
    uploads_.push_back(std::move(file));
  }

  /// Replaces the summary sent with the next batch (merged over the
  /// resumed run's summary).
  void set_summary(Json json) {
    std::lock_guard lock(mutex_);
    summary_ = std::move(json);
    summary_dirty_ = true;
    ++summary_version_;
  }

  /// Sends what is queued and marks the run finished, waiting at most
  /// `finish_timeout_seconds`; then stops the thread. Idempotent.
  void finish(int exit_code) {
    {
      std::lock_guard lock(mutex_);
      if (!thread_.joinable()) return;
      finishing_ = true;
      exit_code_ = exit_code;
    }
    cv_.notify_all();
    {
      std::unique_lock lock(mutex_);
      const auto limit = std::chrono::duration<double>(
          settings_.finish_timeout_seconds +
          (uploads_.empty() ? 0.0 : settings_.upload_timeout_seconds));
      if (!done_cv_.wait_for(lock, limit, [&] { return done_; })) {
        abort_ = true;  // interrupts a request in flight within about a second
      }
    }
    cv_.notify_all();
    thread_.join();
    std::lock_guard lock(mutex_);
    stats_.rows_unsent = static_cast<std::int64_t>(rows_.size());
    stats_.files_failed += static_cast<std::int64_t>(uploads_.size());
    uploads_.clear();
  }

  WandbStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  using Clock = std::chrono::steady_clock;

  std::string file_stream_url() const {
    return fmt::format("{}/files/{}/{}/{}/file_stream", settings_.base_url, stats_.entity,
                       settings_.project, settings_.run_id);
  }

  HttpResponse post(const std::string& url, const std::string& body) {
    auto response = http_.post_json(url, body, "api", settings_.api_key, &abort_);
    if (!response.ok()) {
      std::lock_guard lock(mutex_);
      ++stats_.failed_requests;
      stats_.last_error = response.error.empty()
                              ? fmt::format("HTTP {} from {}", response.status, url)
                              : fmt::format("{}: {}", url, response.error);
    }
    return response;
  }

  /// W&B's resume query: the run's history line count, the last history
  /// line (its `_step` and `_runtime`) and the summary. A run the service
  /// does not have yet resumes from nothing.
  bool read_resume_state() {
    static constexpr const char* query =
        "query RunResumeStatus($project: String, $entity: String, $name: String!) { "
        "model(name: $project, entityName: $entity) { bucket(name: $name, missingOk: true) { "
        "name summaryMetrics historyLineCount historyTail } } }";
    Json variables = {{"project", settings_.project}, {"name", settings_.run_id}};
    variables["entity"] = stats_.entity.empty() ? Json(nullptr) : Json(stats_.entity);
    const auto response =
        post(settings_.base_url + "/graphql",
             detail::dump(Json{{"query", query}, {"variables", std::move(variables)}}));
    if (!response.ok()) return false;
    const auto reply = detail::wandb::read_resume_reply(response.body);
    std::lock_guard lock(mutex_);
    if (!reply) {
      stats_.last_error = "resume: the reply is not a JSON object";
      return false;
    }
    resumed_ = true;
    if (!reply->exists) return true;  // a new run
    stats_.resumed_lines = reply->history_lines;
    stats_.first_step = reply->first_step;
    runtime_base_ = reply->runtime;
    if (reply->summary.is_object()) summary_base_ = reply->summary;
    return true;
  }

  bool create_run() {
    static constexpr const char* mutation =
        "mutation UpsertBucket($name: String, $project: String, $entity: String, "
        "$displayName: String, $config: JSONString, $host: String, $program: String) { "
        "upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, "
        "displayName: $displayName, config: $config, host: $host, jobProgram: $program}) { "
        "bucket { id name project { name entity { name } } } inserted } }";
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    Json variables = {{"name", settings_.run_id},
                      {"project", settings_.project},
                      {"entity", nullptr},
                      {"config", detail::dump(config_)},  // a JSONString: JSON text in a string
                      {"host", host},
                      {"program", "kokoro"}};
    if (!settings_.entity.empty()) variables["entity"] = settings_.entity;
    if (!settings_.run_name.empty()) variables["displayName"] = settings_.run_name;
    const auto response =
        post(settings_.base_url + "/graphql",
             detail::dump(Json{{"query", mutation}, {"variables", std::move(variables)}}));
    if (!response.ok()) return false;
    const auto reply = detail::wandb::read_run_reply(response.body);
    std::lock_guard lock(mutex_);
    if (!reply.error.empty()) {
      if (reply.error.starts_with("run creation refused")) ++stats_.failed_requests;
      stats_.last_error = reply.error;
      return false;
    }
    stats_.entity = reply.entity;
    stats_.run_created = true;
    return true;
  }

  /// One batch of queued lines (and the summary, if it changed); true when
  /// the server took it.
  bool send_batch(std::unique_lock<std::mutex>& lock) {
    const std::size_t count = std::min<std::size_t>(rows_.size(), 1000);
    Json files = Json::object();
    if (count > 0) {
      Json content = Json::array();
      for (std::size_t i = 0; i < count; ++i) {
        Json row = rows_[i];
        row["_step"] = stats_.first_step + stats_.rows_sent + static_cast<std::int64_t>(i);
        row["_runtime"] = runtime_base_ + row.value("_runtime", 0.0);
        content.push_back(detail::dump(row));
      }
      files["wandb-history.jsonl"] = {{"offset", stats_.resumed_lines + stats_.rows_sent},
                                      {"content", std::move(content)}};
    }
    const bool with_summary = summary_dirty_;
    if (with_summary) {
      Json summary = summary_base_.is_object() ? summary_base_ : Json::object();
      for (const auto& [key, value] : summary_.items()) summary[key] = value;
      if (summary_.contains("_runtime") && summary_["_runtime"].is_number()) {
        summary["_runtime"] = runtime_base_ + summary_["_runtime"].get<double>();
      }
      if (count > 0) {
        summary["_step"] =
            stats_.first_step + stats_.rows_sent + static_cast<std::int64_t>(count) - 1;
      }
      files["wandb-summary.json"] = {{"offset", 0},
                                     {"content", Json::array({detail::dump(summary)})}};
    }
    const std::string body = detail::dump(Json{{"files", std::move(files)}});
    const auto version = summary_version_;
    lock.unlock();
    const bool ok = post(file_stream_url(), body).ok();
    lock.lock();
    if (ok) {
      rows_.erase(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(count));
      stats_.rows_sent += static_cast<std::int64_t>(count);
      if (with_summary && version == summary_version_) summary_dirty_ = false;
    }
    return ok;
  }

  /// The queued files, a batch at a time: their upload URLs from the API,
  /// then a PUT each. Returns false when the API could not be reached (the
  /// loop backs off); a file that fails is tried again on later rounds, and
  /// given up after its third try.
  bool send_uploads(std::unique_lock<std::mutex>& lock) {
    static constexpr const char* query =
        "query RunUploadUrls($name: String!, $files: [String]!, $entity: String, $run: String!) "
        "{ model(name: $name, entityName: $entity) { bucket(name: $run) { id files(names: "
        "$files) { uploadHeaders edges { node { name url(upload: true) } } } } } }";
    std::vector<Upload> batch;
    while (!uploads_.empty() && batch.size() < 16) {
      batch.push_back(std::move(uploads_.front()));
      uploads_.pop_front();
    }
    const std::string entity = stats_.entity;
    lock.unlock();
    Json names = Json::array();
    for (const auto& f : batch) names.push_back(f.name);
    Json variables = {{"name", settings_.project},
                      {"run", settings_.run_id},
                      {"entity", entity},
                      {"files", names}};
    const auto response =
        post(settings_.base_url + "/graphql",
             detail::dump(Json{{"query", query}, {"variables", std::move(variables)}}));
    detail::wandb::UploadReply where;
    if (response.ok()) where = detail::wandb::read_upload_reply(response.body);
    const auto& urls = where.urls;
    const auto& headers = where.headers;
    Json uploaded = Json::array();
    std::vector<Upload> again;
    for (auto& f : batch) {
      const auto it = urls.find(f.name);
      HttpResponse put;
      if (it == urls.end()) {
        put.error = response.ok() ? "the API gave no upload URL" : "the upload URL query failed";
      } else {
        put = http_.put(it->second, f.file.empty() ? &f.bytes : nullptr, f.file, headers,
                        settings_.upload_stall_seconds, &abort_);
      }
      std::lock_guard guard(mutex_);
      if (put.ok()) {
        ++stats_.files_uploaded;
        std::error_code ec;
        stats_.bytes_uploaded += static_cast<std::int64_t>(
            f.file.empty() ? f.bytes.size() : std::filesystem::file_size(f.file, ec));
        uploaded.push_back(f.name);
      } else {
        stats_.last_upload_error = fmt::format(
            "{}: {}", f.name, put.error.empty() ? fmt::format("HTTP {}", put.status) : put.error);
        if (++f.attempts >= 3) {
          ++stats_.files_failed;
        } else {
          again.push_back(std::move(f));
        }
      }
    }
    if (!uploaded.empty()) post(file_stream_url(), detail::dump(Json{{"uploaded", uploaded}}));
    lock.lock();
    for (auto& f : again) uploads_.push_back(std::move(f));
    return response.ok();
  }

  void run() {
    std::unique_lock lock(mutex_);
    double backoff = 0.0;
    auto last_post = Clock::now();
    while (!abort_) {
      const double wait = backoff > 0 ? backoff : settings_.flush_seconds;
      cv_.wait_for(lock, std::chrono::duration<double>(wait), [&] { return abort_ || finishing_; });
      if (abort_) break;
      const bool last_try = finishing_;
      bool ok = stats_.run_created;
      if (!ok) {
        lock.unlock();
        ok = create_run();
        lock.lock();
      }
      if (ok && settings_.resume && !resumed_) {
        lock.unlock();
        ok = read_resume_state();
        lock.lock();
      }
      while (ok && !abort_ && (!rows_.empty() || summary_dirty_)) {
        ok = send_batch(lock);
        last_post = Clock::now();
      }
      // Files: one batch a round while training (rows come first); all of
      // them, each tried up to three times, on the last round.
      for (int round = 0; ok && !abort_ && !uploads_.empty() && (last_try || round < 1); ++round) {
        ok = send_uploads(lock);
        last_post = Clock::now();
      }
      if (ok && !last_try &&
          Clock::now() - last_post > std::chrono::duration<double>(settings_.heartbeat_seconds)) {
        lock.unlock();
        ok = post(file_stream_url(), R"({"complete":false,"failed":false})").ok();
        lock.lock();
        last_post = Clock::now();
      }
      if (last_try) {
        if (ok) {
          const int code = exit_code_;
          lock.unlock();
          const bool acknowledged =
              post(file_stream_url(), detail::dump(Json{{"complete", true}, {"exitcode", code}}))
                  .ok();
          lock.lock();
          stats_.finished = acknowledged;
        }
        break;  // one last try only: a dead network must not hold up the end of training
      }
      backoff = ok ? 0.0 : std::min(settings_.max_backoff_seconds, std::max(1.0, backoff * 2));
    }
    done_ = true;
    done_cv_.notify_all();
  }

  WandbSettings settings_;
  Json config_;
  HttpClient http_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::deque<Json> rows_;
  std::deque<Upload> uploads_;
  Json summary_ = Json::object();
  Json summary_base_;          // the resumed run's summary
  double runtime_base_ = 0.0;  // the resumed run's _runtime
  bool resumed_ = false;       // the resume state was read
  bool summary_dirty_ = false;
  std::int64_t summary_version_ = 0;
  bool finishing_ = false;
  bool done_ = false;
  int exit_code_ = 0;
  std::atomic<bool> abort_{false};
  WandbStats stats_;
  std::thread thread_;
};

}  // namespace detail::wandb

class WandbLogger {
 public:
  /// Does nothing (a logger that is switched off).
  WandbLogger() = default;

  /// On when `logging.wandb` is; streams when online (see the top of this
  /// file), from the start of training, when the run's settings are known.
  explicit WandbLogger(const TrainingConfig& config) {
    if (!config.logging.wandb) return;
    auto settings = WandbSettings::from(config);
    if (settings.online()) {
      pending_ = std::move(settings);
    } else {
      const auto dir = run_directory(config) / "tensorboard";
      notices_.push_back(
          {.level = Message::Level::info,
           .text = fmt::format(
               "W&B is {}; upload this run later with: wandb sync --sync-tensorboard {}{}",
               settings.api_key.empty() ? "on but no API key was found (WANDB_API_KEY or ~/.netrc)"
                                        : fmt::format("in {} mode", settings.mode),
               dir.string(),
               config.logging.tensorboard ? "" : " (set logging.tensorboard: true)")});
    }
  }

  /// Streams with explicit settings, whatever the environment says.
  explicit WandbLogger(WandbSettings settings) : pending_(std::move(settings)) {}

  bool streaming() const { return stream_ != nullptr || pending_.has_value(); }
  WandbStats stats() const { return stream_ ? stream_->stats() : WandbStats{}; }

  void on_train_begin(const RunContext& run) {
    start_ = std::chrono::steady_clock::now();
    if (pending_) {
      if (run.start_step > 0) pending_->resume = true;  // a resumed training run
      stream_ = std::make_unique<detail::wandb::Stream>(std::move(*pending_),
                                                        detail::wandb::config_json(run.settings));
      pending_.reset();
    }
    if (!stream_) return;
    const auto& s = stream_->settings();
    notices_.push_back(
        {.level = Message::Level::info,
         .text = fmt::format("streaming to W&B project '{}' as run {}", s.project, s.run_id)});
  }

  void on_step(const StepContext& s) {
    if (!stream_) return;
    Metrics row;
    for (const auto& [name, value] : s.metrics) row.set("train/" + name, value);
    row.set("epoch", static_cast<double>(s.epoch));
    row.set("global_step", static_cast<double>(s.global_step));
    send(row);
  }

  void on_epoch_end(const EpochContext& e) {
    if (!stream_) return;
    Metrics row;
    for (const auto& [name, value] : e.train) row.set("epoch/train/" + name, value);
    for (const auto& [name, value] : e.validation) row.set("epoch/validation/" + name, value);
    row.set("epoch", static_cast<double>(e.epoch));
    row.set("global_step", static_cast<double>(e.global_step));
    row.set("epoch_seconds", e.seconds);
    send(row);
  }

  void on_evaluation(const EvaluationContext& e) {
    if (!stream_) return;
    Metrics row;
    for (const auto& [name, value] : e.metrics) row.set("eval/" + name, value);
    row.set("eval/share", e.share);
    row.set("epoch", static_cast<double>(e.epoch));
    row.set("global_step", static_cast<double>(e.global_step));
    send(row);
  }

  /// Sample images and audio: one history row of W&B media values, their
  /// files uploaded under media/.
  void on_media(const MediaContext& ctx) {
    if (!stream_ || (ctx.media.images.empty() && ctx.media.audio.empty())) return;
    Json row = Json::object();
    const auto add = [&](const std::string& tag, const char* kind, const char* ext,
                         std::string bytes, Json fields) {
      const auto sha = detail::wandb::sha256_hex(bytes);
      const auto path =
          fmt::format("media/{}/{}_{}_{}.{}", kind, tag, ctx.global_step, sha.substr(0, 20), ext);
      fields["path"] = path;
      fields["sha256"] = sha;
      fields["size"] = bytes.size();
      row[tag] = std::move(fields);
      stream_->upload({.name = path, .bytes = std::move(bytes), .file = {}, .attempts = 0});
    };
    for (const auto& image : ctx.media.images) {
      add(image.tag, "images", "png", encode_png(image),
          {{"_type", "image-file"},
           {"format", "png"},
           {"width", image.width},
           {"height", image.height}});
    }
    for (const auto& clip : ctx.media.audio) {
      add(clip.tag, "audio", "wav", encode_wav(clip.samples, clip.sample_rate),
          {{"_type", "audio-file"}, {"sample_rate", clip.sample_rate}, {"caption", clip.tag}});
    }
    row["epoch"] = ctx.epoch;
    row["global_step"] = ctx.global_step;
    row["_runtime"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    row["_timestamp"] = detail::unix_seconds();
    stream_->push(std::move(row));
  }

  /// Uploads the final and best checkpoints when asked to
  /// (logging.wandb_upload_checkpoints), marks the run finished (exit code
  /// 0, or 128 + the signal that stopped it) and reports what was sent,
  /// dropped and uploaded.
  void on_train_end(const RunSummary& summary) {
    if (!stream_) return;
    if (stream_->settings().upload_checkpoints && !summary.checkpoint.empty()) {
      const std::filesystem::path last = summary.checkpoint;
      for (const auto& file : {last, last.parent_path() / "best.pt"}) {
        std::error_code ec;
        if (std::filesystem::is_regular_file(file, ec)) {
          stream_->upload({.name = "checkpoints/" + file.filename().string(),
                           .bytes = {},
                           .file = file,
                           .attempts = 0});
        }
      }
    }
    stream_->finish(summary.stop_signal ? 128 + summary.stop_signal : 0);
    const auto st = stream_->stats();
    const auto& s = stream_->settings();
    const std::string app = s.base_url == "https://api.wandb.ai" ? "https://wandb.ai" : s.base_url;
    if (st.run_created) {
      notices_.push_back(
          {.level = Message::Level::info,
           .text = fmt::format(
               "W&B run {}/{}/{}/runs/{}: {} rows sent, {} dropped, {} unsent; {} files "
               "uploaded ({:.1f} MB){}{}",
               app, st.entity, s.project, st.run_id, st.rows_sent, st.rows_dropped, st.rows_unsent,
               st.files_uploaded, static_cast<double>(st.bytes_uploaded) / 1e6,
               st.files_failed > 0
                   ? fmt::format(", {} failed (last: {})", st.files_failed, st.last_upload_error)
                   : "",
               st.finished ? "" : " (not marked finished)")});
      if (st.files_failed > 0) {
        notices_.push_back({.level = Message::Level::warning,
                            .text = fmt::format("W&B: {} file uploads failed; last: {}",
                                                st.files_failed, st.last_upload_error)});
      }
    } else {
      notices_.push_back(
          {.level = Message::Level::warning,
           .text = fmt::format("W&B run was not created ({}); upload later with: wandb sync "
                               "--sync-tensorboard <run directory>/tensorboard",
                               st.last_error)});
    }
  }

  /// What this logger has to say (where the run streams, how to upload it
  /// later, what was sent): the Trainer passes it to the loggers that print.
  std::vector<Message> take_messages() { return std::exchange(notices_, {}); }

 private:
  void send(Metrics row) {
    const double runtime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    row.set("_runtime", runtime);
    row.set("_timestamp", detail::unix_seconds());
    for (const auto& [name, value] : row) summary_.set(name, value);
    stream_->push(detail::json_object(row));
    stream_->set_summary(detail::json_object(summary_));
  }

  std::unique_ptr<detail::wandb::Stream> stream_;
  std::optional<WandbSettings> pending_;  // online, waiting for on_train_begin
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  Metrics summary_;
  std::vector<Message> notices_;
};

static_assert(LoggerPolicy<WandbLogger>);

}  // namespace kokoro
