// The W&B logger against a local HTTP server that stands in for the service:
// what it sends (authentication, run creation with the configuration,
// history rows in order, the summary, completion), and that a dead or hung
// service costs training nothing.
#include <doctest/doctest.h>

#include <kokoro/log/loggers.hpp>
#include <kokoro/log/wandb_logger.hpp>
#include <kokoro/trainer.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <kokoro/log/png.hpp>
#include <kokoro/util/wav.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <map>

#include "http_server.hpp"
#include "test_tasks.hpp"

using namespace kokoro;
using test::HttpServer;

namespace {

std::string base64(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += i + 1 < in.size() ? table[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? table[n & 63] : '=';
  }
  return out;
}

/// The replies of a W&B service that knows the key's entity, "tester".
std::string service(const HttpServer::Request& r) {
  if (r.path == "/graphql") {
    return R"({"data":{"upsertBucket":{"bucket":{"id":"UnVuOjE=","name":"run1",)"
           R"("project":{"name":"proj","entity":{"name":"tester"}}},"inserted":true}}})";
  }
  return "{}";
}

WandbSettings settings_for(const std::string& url) {
  WandbSettings s;
  s.api_key = "local-test-key";
  s.base_url = url;
  s.project = "proj";
  s.run_id = "run1";
  s.run_name = "a test run";
  s.flush_seconds = 0.02;
  s.finish_timeout_seconds = 5.0;
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("the W&B logger creates the run, streams rows in order and marks it finished") {
  HttpServer server(service);
  auto config = test::quick_config();
  config.training.batch_size = 7;
  WandbLogger logger(settings_for(server.url()));
  logger.on_train_begin(test::run_context(config));
  for (int i = 0; i < 25; ++i) {
    Metrics m;
    m.set("loss", 100.0 - i);
    logger.on_step(StepContext{.epoch = 0,
                               .global_step = i + 1,
                               .step_in_epoch = i + 1,
                               .steps_per_epoch = 25,
                               .samples = 8,
                               .step_taken = true,
                               .metrics = m});
  }
  Metrics train, valid;
  train.set("loss", 80.0);
  valid.set("loss", 90.0);
  logger.on_epoch_end(EpochContext{
      .epoch = 0, .global_step = 25, .train = train, .validation = valid, .seconds = 1.5});
  logger.on_train_end(RunSummary{});

  const auto stats = logger.stats();
  CHECK(stats.run_created);
  CHECK(stats.entity == "tester");
  CHECK(stats.rows_sent == 26);
  CHECK(stats.rows_dropped == 0);
  CHECK(stats.finished);

  const auto requests = server.requests();
  REQUIRE(requests.size() >= 3);
  for (const auto& r : requests) {
    CHECK(r.method == "POST");
    CHECK(r.authorization == "Basic " + base64("api:local-test-key"));
  }
  // Run creation: the mutation with the run id, project and configuration.
  CHECK(requests[0].path == "/graphql");
  const auto creation = YAML::Load(requests[0].body);
  CHECK(creation["query"].as<std::string>().find("upsertBucket") != std::string::npos);
  CHECK(creation["variables"]["name"].as<std::string>() == "run1");
  CHECK(creation["variables"]["project"].as<std::string>() == "proj");
  CHECK(creation["variables"]["displayName"].as<std::string>() == "a test run");
  const auto run_config = YAML::Load(creation["variables"]["config"].as<std::string>());
  CHECK(run_config["training"]["value"]["batch_size"].as<int>() == 7);
  CHECK(run_config["hardware"]["value"]["mixed_precision"].as<bool>() == false);

  // History: contiguous offsets, rows in the order logged; then completion.
  std::vector<YAML::Node> rows;
  bool summary_seen = false;
  for (std::size_t i = 1; i < requests.size(); ++i) {
    CHECK(requests[i].path == "/files/tester/proj/run1/file_stream");
    const auto body = YAML::Load(requests[i].body);
    if (!body["files"]) continue;
    if (const auto history = body["files"]["wandb-history.jsonl"]) {
      CHECK(history["offset"].as<std::size_t>() == rows.size());
      for (const auto& line : history["content"])
        rows.push_back(YAML::Load(line.as<std::string>()));
    }
    if (const auto summary = body["files"]["wandb-summary.json"]) {
      CHECK(summary["offset"].as<int>() == 0);
      summary_seen = true;
    }
  }
  REQUIRE(rows.size() == 26);
  for (int i = 0; i < 25; ++i) {
    CHECK(rows[i]["_step"].as<int>() == i);
    CHECK(rows[i]["train/loss"].as<double>() == 100.0 - i);
    CHECK(rows[i]["global_step"].as<int>() == i + 1);
  }
  CHECK(rows[25]["epoch/validation/loss"].as<double>() == 90.0);
  CHECK(rows[25]["_timestamp"].as<double>() > 1.6e9);
  CHECK(summary_seen);
  const auto last = YAML::Load(requests.back().body);
  CHECK(last["complete"].as<bool>());
  CHECK(last["exitcode"].as<int>() == 0);

  // What it has to say goes to the Trainer as messages, once.
  const auto notices = logger.take_messages();
  REQUIRE(notices.size() == 2);
  CHECK(notices[0].text == "streaming to W&B project 'proj' as run run1");
  CHECK(notices[1].text ==
        "W&B run " + server.url() +
            "/tester/proj/runs/run1: 26 rows sent, 0 dropped, 0 unsent; 0 files uploaded (0.0 MB)");
  CHECK(logger.take_messages().empty());
}

namespace {

/// A service that already holds 26 rows of run "run1" (the last at _step 25,
/// _runtime 3.5 s) and its summary, as W&B's resume query reports them.
std::string resuming_service(const HttpServer::Request& r) {
  if (r.path == "/graphql" && r.body.find("RunResumeStatus") != std::string::npos) {
    return R"({"data":{"model":{"bucket":{"name":"run1","historyLineCount":26,)"
           R"("historyTail":"[\"{\\\"_step\\\":25,\\\"_runtime\\\":3.5}\"]",)"
           R"("summaryMetrics":"{\"train/loss\":76,\"best\":1,\"_runtime\":3.5}"}}}})";
  }
  return service(r);
}

}  // namespace

TEST_CASE("a resumed run appends to its W&B history: offsets, _step and _runtime go on") {
  HttpServer server(resuming_service);
  const auto dir = test::scratch_dir("wandb-resume");
  auto settings = settings_for(server.url());
  settings.run_id = "";  // from the run folder, as a resumed training run finds it
  settings.run_id_file = dir / "wandb-run-id";
  std::filesystem::create_directories(dir);
  std::ofstream(settings.run_id_file) << "run1\n";
  auto config = test::quick_config();
  WandbLogger logger(settings);
  auto context = test::run_context(config);
  context.start_step = 25;  // a training run resumed after 25 steps
  logger.on_train_begin(context);
  for (int i = 0; i < 5; ++i) {
    Metrics m;
    m.set("loss", 75.0 - i);
    logger.on_step(StepContext{.epoch = 1,
                               .global_step = 26 + i,
                               .step_in_epoch = i + 1,
                               .steps_per_epoch = 25,
                               .samples = 8,
                               .step_taken = true,
                               .metrics = m});
  }
  logger.on_train_end(RunSummary{});
  const auto stats = logger.stats();
  CHECK(stats.run_id == "run1");
  CHECK(stats.resumed_lines == 26);
  CHECK(stats.first_step == 26);
  CHECK(stats.rows_sent == 5);

  const auto requests = server.requests();
  bool queried = false;
  std::int64_t expected_offset = 26;
  std::vector<YAML::Node> rows;
  YAML::Node summary;
  for (const auto& r : requests) {
    if (r.path == "/graphql") {
      queried = queried || r.body.find("RunResumeStatus") != std::string::npos;
      continue;
    }
    const auto body = YAML::Load(r.body);
    if (!body["files"]) continue;
    if (const auto history = body["files"]["wandb-history.jsonl"]) {
      CHECK(history["offset"].as<std::int64_t>() == expected_offset);
      for (const auto& line : history["content"]) {
        rows.push_back(YAML::Load(line.as<std::string>()));
        ++expected_offset;
      }
    }
    if (const auto s = body["files"]["wandb-summary.json"]) {
      summary = YAML::Load(s["content"][0].as<std::string>());
    }
  }
  CHECK(queried);
  REQUIRE(rows.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(rows[i]["_step"].as<int>() == 26 + i);
    CHECK(rows[i]["_runtime"].as<double>() >= 3.5);
    CHECK(rows[i]["global_step"].as<int>() == 26 + i);
  }
  REQUIRE(summary);
  CHECK(summary["best"].as<int>() == 1);              // kept from the run's summary
  CHECK(summary["train/loss"].as<double>() == 71.0);  // the latest value
  CHECK(summary["_step"].as<int>() == 30);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a new W&B run's id is kept in the run folder for the next invocation") {
  HttpServer server(service);
  const auto dir = test::scratch_dir("wandb-run-id");
  auto settings = settings_for(server.url());
  settings.run_id = "";
  settings.run_id_file = dir / "wandb-run-id";
  std::string first;
  {
    WandbLogger logger(settings);
    logger.on_train_begin(test::run_context(test::quick_config()));
    logger.on_train_end(RunSummary{});
    first = logger.stats().run_id;
  }
  CHECK(first.size() == 8);
  std::ifstream in(settings.run_id_file);
  std::string kept;
  in >> kept;
  CHECK(kept == first);
  WandbLogger again(settings);
  again.on_train_begin(test::run_context(test::quick_config()));
  again.on_train_end(RunSummary{});
  CHECK(again.stats().run_id == first);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a run refused by the service is reported, not retried forever") {
  HttpServer server([](const HttpServer::Request&) {
    return std::string(R"({"errors":[{"message":"permission denied"}]})");
  });
  WandbLogger logger(settings_for(server.url()));
  logger.on_train_begin(test::run_context(test::quick_config()));
  logger.on_train_end(RunSummary{});
  const auto stats = logger.stats();
  CHECK_FALSE(stats.run_created);
  CHECK(stats.last_error.find("permission denied") != std::string::npos);
}

TEST_CASE("a reply that is not JSON leaves the run uncreated and says so") {
  HttpServer server(
      [](const HttpServer::Request&) { return std::string("<html>a proxy's login page</html>"); });
  WandbLogger logger(settings_for(server.url()));
  logger.on_train_begin(test::run_context(test::quick_config()));
  logger.on_train_end(RunSummary{});
  CHECK_FALSE(logger.stats().run_created);
  CHECK(logger.stats().last_error == "run creation: the reply is not a JSON object");
  const auto notices = logger.take_messages();
  REQUIRE_FALSE(notices.empty());
  CHECK(notices.back().level == Message::Level::warning);
  CHECK(notices.back().text.find(
            "was not created (run creation: the reply is not a JSON object)") != std::string::npos);
}

TEST_CASE("an offline W&B logger's upload hint reaches the loggers that print, once") {
  struct Recorder {
    void on_step(const StepContext&) {}
    void on_epoch_end(const EpochContext&) {}
    void on_message(const Message& m) { messages.push_back(m.text); }
    std::vector<std::string> messages;
  };
  struct Policies : DefaultPolicies {
    using logger = Loggers<Recorder, WandbLogger>;
  };
  auto config = test::quick_config();
  config.logging.wandb = true;
  config.training.epochs = 2;
  ::setenv("WANDB_API_KEY", "some-key", 1);
  ::setenv("WANDB_MODE", "offline", 1);
  Trainer<test::LinearTask, Policies> trainer(config);
  ::unsetenv("WANDB_MODE");
  ::unsetenv("WANDB_API_KEY");
  trainer.task().train = test::split(test::linear_data(8), {4, 4});
  trainer.fit();
  const auto& messages = trainer.logger().get<Recorder>().messages;
  const auto hints = std::count_if(messages.begin(), messages.end(), [](const std::string& m) {
    return m.find(
               "W&B is in offline mode; upload this run later with: wandb sync "
               "--sync-tensorboard") != std::string::npos;
  });
  CHECK(hints == 1);
}

TEST_CASE("a hung W&B service blocks neither the steps nor the end of training") {
  HttpServer hung;  // accepts, never answers
  auto settings = settings_for(hung.url());
  settings.max_queued_rows = 10;
  settings.finish_timeout_seconds = 0.3;
  settings.http.timeout_ms = 600'000;  // only the abort can end the request
  WandbLogger logger(settings);
  logger.on_train_begin(test::run_context(test::quick_config()));

  Metrics m;
  m.set("loss", 1.0);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i)
    logger.on_step(StepContext{.epoch = 0,
                               .global_step = i + 1,
                               .step_in_epoch = i + 1,
                               .steps_per_epoch = 200,
                               .samples = 8,
                               .step_taken = true,
                               .metrics = m});
  const double logging = seconds_since(start);
  const auto end = std::chrono::steady_clock::now();
  logger.on_train_end(RunSummary{});
  const double finishing = seconds_since(end);

  // The sender is stuck in its first request the whole time: the steps
  // only queued rows (a network round trip each would take forever here),
  // the queue overflowed and said so, and the end waited its timeout plus the
  // abort's latency (curl polls the flag about once a second), not the
  // request's 10 minutes.
  CHECK(logging < 1.0);
  const auto stats = logger.stats();
  CHECK(stats.rows_dropped == 190);
  CHECK(stats.rows_unsent == 10);
  CHECK_FALSE(stats.run_created);
  CHECK_FALSE(stats.finished);
  CHECK(finishing < 5.0);
  CHECK(hung.requests().size() == 1);
}

TEST_CASE("training with a dead W&B endpoint completes and counts the failures") {
  static std::string url;
  url = "http://127.0.0.1:" + std::to_string(HttpServer::dead_port());
  struct DeadWandb : WandbLogger {
    explicit DeadWandb(const TrainingConfig&) : WandbLogger(settings_for(url)) {}
  };
  struct Policies : DefaultPolicies {
    using logger = Loggers<DeadWandb>;
  };
  auto config = test::quick_config();
  config.training.epochs = 3;
  Trainer<test::LinearTask, Policies> trainer(config);
  trainer.task().train = test::split(test::linear_data(16), {4, 4, 4, 4});
  const auto summary = trainer.fit();
  CHECK(summary.epochs_completed == 3);
  CHECK(summary.global_step == 12);
  const auto stats = trainer.logger().get<DeadWandb>().stats();
  CHECK_FALSE(stats.run_created);
  CHECK(stats.failed_requests >= 1);
  CHECK(stats.last_error.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("without an API key, or offline, the W&B logger does not stream") {
  auto config = test::quick_config();
  config.logging.wandb = true;
  ::setenv("WANDB_API_KEY", "some-key", 1);
  ::setenv("WANDB_MODE", "offline", 1);
  CHECK_FALSE(WandbLogger(config).streaming());
  ::unsetenv("WANDB_MODE");
  ::setenv("HOME", "/nonexistent", 1);  // no ~/.netrc either
  ::unsetenv("WANDB_API_KEY");
  CHECK_FALSE(WandbLogger(config).streaming());
  config.logging.wandb = false;
  ::setenv("WANDB_API_KEY", "some-key", 1);
  CHECK_FALSE(WandbLogger(config).streaming());
  ::unsetenv("WANDB_API_KEY");
}

TEST_CASE("W&B settings come from the environment and ~/.netrc as W&B's client reads them") {
  const auto home = test::scratch_dir("wandb-home");
  std::filesystem::create_directories(home);
  std::ofstream(home / ".netrc") << "machine example.org\n  login user\n  password wrong\n"
                                    "machine api.wandb.ai\n  login user\n  password netrc-key\n";
  const char* old_home = std::getenv("HOME");
  const std::string saved = old_home ? old_home : "";
  ::setenv("HOME", home.c_str(), 1);
  ::unsetenv("WANDB_API_KEY");
  ::setenv("WANDB_ENTITY", "team", 1);
  auto config = test::quick_config();
  config.logging.wandb_project = "tts";
  config.logging.run_name = "ljs-small";
  auto s = WandbSettings::from(config);
  CHECK(s.api_key == "netrc-key");
  CHECK(s.base_url == "https://api.wandb.ai");
  CHECK(s.entity == "team");
  CHECK(s.project == "tts");
  CHECK(s.run_name == "ljs-small");
  CHECK(s.online());
  ::setenv("WANDB_BASE_URL", "https://wandb.example.com/", 1);
  s = WandbSettings::from(config);
  CHECK(s.base_url == "https://wandb.example.com");
  CHECK(s.api_key.empty());  // the netrc has no entry for that host
  ::unsetenv("WANDB_BASE_URL");
  ::unsetenv("WANDB_ENTITY");
  ::setenv("HOME", saved.c_str(), 1);
  std::filesystem::remove_all(home);
}

namespace {

/// A service that also gives upload URLs: each file's URL is on this server
/// under /upload/<name>, or /cut/<name> (the upload fails half way) for the
/// names in `cut`, with one upload header.
struct UploadingService {
  std::string base;  // the server's URL, set once it listens
  std::vector<std::string> cut;
  std::string operator()(const HttpServer::Request& r) const {
    if (r.path == "/graphql" && r.body.find("RunUploadUrls") != std::string::npos) {
      const auto query = nlohmann::json::parse(r.body);
      nlohmann::json edges = nlohmann::json::array();
      for (const auto& name : query["variables"]["files"]) {
        const auto n = name.get<std::string>();
        const bool fails = std::find(cut.begin(), cut.end(), n) != cut.end();
        edges.push_back(
            {{"node", {{"name", n}, {"url", base + (fails ? "/cut/" : "/upload/") + n}}}});
      }
      return nlohmann::json{
          {"data",
           {{"model",
             {{"bucket",
               {{"id", "UnVuOjE="},
                {"files", {{"uploadHeaders", {"X-Test-Upload: yes"}}, {"edges", edges}}}}}}}}}}
          .dump();
    }
    return service(r);
  }
};

/// sha256sum's answer for `bytes`: the digest from outside the code under test.
std::string sha256sum(const std::string& bytes) {
  const auto dir = test::scratch_dir("wandb-sha");
  std::filesystem::create_directories(dir);
  const auto file = dir / "bytes";
  std::ofstream(file, std::ios::binary) << bytes;
  std::string command = "sha256sum '" + file.string() + "'";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char out[65] = "";
  REQUIRE(std::fread(out, 1, 64, pipe) == 64);
  ::pclose(pipe);
  return std::string(out, 64);
}

struct MediaRun {
  Image image{.tag = "samples/mel",
              .height = 2,
              .width = 3,
              .channels = 1,
              .pixels = {0, 40, 80, 120, 160, 200}};
  AudioClip clip{
      .tag = "samples/audio", .sample_rate = 16000, .samples = std::vector<float>(400, 0.25f)};
  std::filesystem::path checkpoints = test::scratch_dir("wandb-upload") / "checkpoints";
  std::string final_bytes = std::string(300000, 'f');
  std::string best_bytes = std::string(1000, 'b');

  /// Media at step 5, a row at step 6, and the end with final.pt and best.pt.
  void run(WandbLogger& logger, const TrainingConfig& config) {
    std::filesystem::create_directories(checkpoints);
    std::ofstream(checkpoints / "final.pt", std::ios::binary) << final_bytes;
    std::ofstream(checkpoints / "best.pt", std::ios::binary) << best_bytes;
    logger.on_train_begin(test::run_context(config));
    Media media;
    media.images.push_back(image);
    media.audio.push_back(clip);
    logger.on_media(MediaContext{.epoch = 0, .global_step = 5, .media = media});
    Metrics m;
    m.set("loss", 1.0);
    logger.on_step(StepContext{.epoch = 0,
                               .global_step = 6,
                               .step_in_epoch = 6,
                               .steps_per_epoch = 10,
                               .samples = 8,
                               .step_taken = true,
                               .metrics = m});
    logger.on_train_end(RunSummary{.checkpoint = (checkpoints / "final.pt").string()});
  }
};

}  // namespace

TEST_CASE("W&B: sample media become history media values and run files, checkpoints upload") {
  UploadingService handler;
  HttpServer server(std::ref(handler));
  handler.base = server.url();
  auto settings = settings_for(server.url());
  settings.upload_checkpoints = true;
  WandbLogger logger(settings);
  MediaRun run;
  run.run(logger, test::quick_config());

  const auto stats = logger.stats();
  CHECK(stats.finished);
  CHECK(stats.files_uploaded == 4);
  CHECK(stats.files_failed == 0);
  const auto png = encode_png(run.image);
  const auto wav = encode_wav(run.clip.samples, run.clip.sample_rate);
  CHECK(stats.bytes_uploaded ==
        static_cast<std::int64_t>(png.size() + wav.size() + run.final_bytes.size() +
                                  run.best_bytes.size()));

  std::map<std::string, std::string> put;  // path -> body
  YAML::Node media_row;
  std::vector<std::string> uploaded;
  for (const auto& r : server.requests()) {
    if (r.method == "PUT") put[r.path] = r.body;
    if (r.path != "/files/tester/proj/run1/file_stream") continue;
    const auto body = YAML::Load(r.body);
    if (body["uploaded"]) {
      for (const auto& n : body["uploaded"]) uploaded.push_back(n.as<std::string>());
    }
    if (body["files"] && body["files"]["wandb-history.jsonl"]) {
      for (const auto& line : body["files"]["wandb-history.jsonl"]["content"]) {
        const auto row = YAML::Load(line.as<std::string>());
        if (row["samples/mel"]) media_row = row;
      }
    }
  }
  // The history row: W&B's media values, each naming its file by path and SHA-256.
  REQUIRE(media_row);
  const auto image = media_row["samples/mel"];
  CHECK(image["_type"].as<std::string>() == "image-file");
  CHECK(image["sha256"].as<std::string>() == sha256sum(png));
  CHECK(image["size"].as<std::size_t>() == png.size());
  CHECK(image["width"].as<int>() == 3);
  CHECK(image["height"].as<int>() == 2);
  const auto image_path = image["path"].as<std::string>();
  CHECK(image_path.rfind("media/images/samples/mel_5_", 0) == 0);
  const auto audio = media_row["samples/audio"];
  CHECK(audio["_type"].as<std::string>() == "audio-file");
  CHECK(audio["sample_rate"].as<int>() == 16000);
  CHECK(audio["sha256"].as<std::string>() == sha256sum(wav));
  CHECK(media_row["global_step"].as<int>() == 5);
  // The files: PUT to the URLs the API gave, byte for byte.
  CHECK(put["/upload/" + image_path] == png);
  CHECK(put["/upload/" + audio["path"].as<std::string>()] == wav);
  CHECK(put["/upload/checkpoints/final.pt"] == run.final_bytes);
  CHECK(put["/upload/checkpoints/best.pt"] == run.best_bytes);
  CHECK(uploaded.size() == 4);
  const auto notices = logger.take_messages();
  REQUIRE(notices.size() == 2);
  CHECK(notices[1].text.find("4 files uploaded (0.3 MB)") != std::string::npos);
}

TEST_CASE("W&B: an upload that fails half way is tried again, then reported, the run goes on") {
  UploadingService handler;
  handler.cut = {"checkpoints/final.pt"};
  HttpServer server(std::ref(handler));
  handler.base = server.url();
  auto settings = settings_for(server.url());
  settings.upload_checkpoints = true;
  WandbLogger logger(settings);
  MediaRun run;
  const auto start = std::chrono::steady_clock::now();
  run.run(logger, test::quick_config());
  CHECK(seconds_since(start) < 20.0);

  const auto stats = logger.stats();
  CHECK(stats.finished);        // the run was still marked finished
  CHECK(stats.rows_sent == 2);  // and its rows sent
  CHECK(stats.files_uploaded == 3);
  CHECK(stats.files_failed == 1);
  CHECK(stats.last_upload_error.rfind("checkpoints/final.pt: ", 0) == 0);
  int tries = 0;
  for (const auto& r : server.requests()) {
    if (r.method == "PUT" && r.path == "/cut/checkpoints/final.pt") {
      ++tries;
      CHECK(r.body.size() < run.final_bytes.size());  // cut in the middle
    }
  }
  CHECK(tries == 3);
  const auto notices = logger.take_messages();
  const bool warned = std::any_of(notices.begin(), notices.end(), [](const Message& m) {
    return m.level == Message::Level::warning &&
           m.text.find("1 file uploads failed; last: checkpoints/final.pt") != std::string::npos;
  });
  CHECK(warned);
}

TEST_CASE("the W&B reply readers take fields of the wrong type or out of range as absent") {
  namespace wandb = kokoro::detail::wandb;
  const auto upload = wandb::read_upload_reply(
      R"({"data":{"model":{"bucket":{"files":{"uploadHeaders":[7,"X: y"],)"
      R"("edges":[1,{"node":{"name":3,"url":"u"}},{"node":{"name":"a","url":"http://x/a"}}]}}}}})");
  CHECK(upload.headers == std::vector<std::string>{"X: y"});
  REQUIRE(upload.urls.size() == 1);
  CHECK(upload.urls.at("a") == "http://x/a");
  const auto resume = wandb::read_resume_reply(
      R"({"data":{"model":{"bucket":{"historyLineCount":1.5e300,)"
      R"("historyTail":"[\"{\\\"_step\\\":1e300,\\\"_runtime\\\":\\\"x\\\"}\"]"}}}})");
  REQUIRE(resume.has_value());
  CHECK(resume->exists);
  CHECK(resume->history_lines == 0);
  CHECK(resume->first_step == 0);
  CHECK(resume->runtime == 0.0);
  CHECK_FALSE(wandb::read_resume_reply("[1, 2]").has_value());
  CHECK(wandb::read_run_reply(R"({"errors":[3]})").error == "run creation refused: ?");
  CHECK(wandb::read_run_reply(
            R"({"data":{"upsertBucket":{"bucket":{"project":{"entity":{"name":4}}}}}})")
            .error.find("names no entity") != std::string::npos);
}
