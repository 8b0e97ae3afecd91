// ReportLogger: <run directory>/report.html, one self-contained page about
// the run that any browser opens without a network or a server (TensorBoard
// is not in Debian, so its event files cannot be opened on a fresh machine).
// It is rewritten, atomically, at every epoch's end and when the run ends:
//   - curves as inline SVG: each training loss component with its
//     validation points, the learning rate, the gradient norm, samples/s
//     and the memory level, one point per logged step;
//   - the latest media: mel images (PNG) and audio players (WAV), embedded
//     as data: URIs, with their texts (the corpus report among them);
//   - the run's settings, its notices, and the profiler's table when it
//     profiled.
// A resumed run reads the earlier steps back from the run's metrics.jsonl,
// so the curves cover the whole run. A small inline script checks, when the
// page is opened, that every audio element loads, and says so in the page
// (the tests read it from headless Chromium).
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kokoro/core/config_io.hpp"
#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/media.hpp"
#include "kokoro/core/metrics.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/log/png.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/wav.hpp"

namespace kokoro {

namespace detail::report {

/// Base64 (RFC 4648) through OpenSSL, for data: URIs.
inline std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

inline std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// A number as a short label.
inline std::string label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e4 || a < 1e-3) return fmt::format("{:.2e}", v);
  return fmt::format("{:.4g}", v);
}

struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;  // (step, value), finite values only
  bool dots = false;                              // validation: few points, drawn as dots
  bool dashed = false;                            // a reference level (a ceiling)
};

/// One chart: the series over the steps, each value axis from its data.
inline std::string chart(const std::string& id, const std::string& title,
                         const std::vector<Series>& series) {
  constexpr double width = 520, height = 200, left = 56, right = 12, top = 22, bottom = 26;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  std::string svg = fmt::format(
      "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" "
      "role=\"img\"><title>{}</title><text x=\"{}\" y=\"15\" class=\"title\">{}</text>",
      escape(id), width, height, width, height, escape(title), left, escape(title));
  if (!(x0 <= x1)) return svg + "<text x=\"60\" y=\"100\">no points yet</text></svg>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::abs(y0) * 0.1), y0 -= (y1 - y0);
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (width - left - right); };
  const auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * (height - top - bottom); };
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"frame\"/>"
      "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>"
      "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>"
      "<text x=\"{}\" y=\"{}\" class=\"axis\">step {}</text>"
      "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
      left, top, width - left - right, height - top - bottom, left - 4, top + 8, label(y1),
      left - 4, height - bottom, label(y0), left, height - 8, label(x0), width - right, height - 8,
      label(x1));
  double legend = left + 150;
  for (const auto& s : series) {
    std::string points;
    for (const auto& [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    if (s.dots) {
      svg += fmt::format("<g class=\"series\" data-name=\"{}\" data-points=\"{}\" fill=\"{}\">",
                         escape(s.name), s.points.size(), s.color);
      for (const auto& [x, y] : s.points) {
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"/>", px(x), py(y));
      }
      svg += "</g>";
    } else {
      svg += fmt::format(
          "<polyline class=\"series\" data-name=\"{}\" data-points=\"{}\" fill=\"none\" "
          "stroke=\"{}\" stroke-width=\"1.5\"{} points=\"{}\"/>",
          escape(s.name), s.points.size(), s.color,
          s.dashed ? " stroke-dasharray=\"5 4\"" : "", points);
      if (s.points.size() == 1) {  // one evaluation so far: a polyline of one point shows nothing
        const auto& [x, y] = s.points.front();
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>", px(x),
                           py(y), s.color);
      }
    }
    svg += fmt::format("<text x=\"{}\" y=\"15\" class=\"legend\" fill=\"{}\">{}</text>", legend,
                       s.color, escape(s.name));
    legend += 8.0 * static_cast<double>(s.name.size()) + 16;
  }
  return svg + "</svg>";
}

}  // namespace detail::report

class ReportLogger {
 public:
  /// The page's file name in the run directory.
  static constexpr const char* kFileName = "report.html";

  /// Writes nothing (a logger that is switched off).
  ReportLogger() = default;
  /// On when `logging.report` is.
  explicit ReportLogger(const TrainingConfig& config) : enabled_(config.logging.report) {}

  void on_train_begin(const RunContext& ctx) {
    if (!enabled_) return;
    run_directory_ = ctx.run_directory;
    settings_ = to_yaml(ctx.settings);
    facts_ = {{"device", ctx.device},
              {"precision", ctx.precision},
              {"parameters", fmt::format("{}", ctx.parameters)},
              {"threads", fmt::format("{}", ctx.threads)},
              {"epochs", fmt::format("{}", ctx.epochs)},
              {"max steps", ctx.max_steps > 0 ? fmt::format("{}", ctx.max_steps) : "none"}};
    if (ctx.start_step > 0) {
      facts_.emplace_back("resumed at step", fmt::format("{}", ctx.start_step));
      read_history(ctx.start_step);
    }
    write();
  }

  void on_step(const StepContext& ctx) {
    for (const auto& [name, value] : ctx.metrics) add(steps_[name], ctx.global_step, value);
  }

  void on_epoch_end(const EpochContext& ctx) {
    for (const auto& [name, value] : ctx.validation) {
      add(validation_[name], ctx.global_step, value);
    }
    write();
  }

  void on_evaluation(const EvaluationContext& ctx) {
    for (const auto& [name, value] : ctx.metrics) add(evaluation_[name], ctx.global_step, value);
    evaluation_share_ = ctx.share;
    write();
  }

  void on_media(const MediaContext& ctx) {
    media_step_ = ctx.global_step;
    images_.clear();
    for (const auto& image : ctx.media.images) {
      images_.emplace_back(image.tag, detail::report::base64(encode_png(image)));
    }
    audio_.clear();
    for (const auto& clip : ctx.media.audio) {
      audio_.emplace_back(clip.tag,
                          detail::report::base64(encode_wav(clip.samples, clip.sample_rate)));
    }
    for (const auto& text : ctx.media.texts) texts_[text.tag] = text.text;
  }

  void on_message(const Message& m) {
    if (m.level != Message::Level::info || notices_.size() < 200) notices_.push_back(m.text);
  }

  void on_train_end(const RunSummary& summary) {
    profile_ = summary.profile_report;
    finished_ =
        fmt::format("{} epochs, {} steps in {:.1f} s{}{}", summary.epochs_completed,
                    summary.global_step, summary.seconds,
                    summary.checkpoint.empty() ? "" : "; last checkpoint " + summary.checkpoint,
                    summary.checkpoint_error.empty() ? "" : "; " + summary.checkpoint_error);
    write();
  }

  /// Where the page is (empty before the run starts).
  std::filesystem::path path() const {
    return run_directory_.empty() ? std::filesystem::path()
                                  : std::filesystem::path(run_directory_) / kFileName;
  }

  /// The page as it would be written now.
  std::string html() const {
    using detail::report::chart;
    using detail::report::escape;
    using detail::report::Series;
    std::string body;
    body += fmt::format("<h1>kokoro run {}</h1>",
                        escape(std::filesystem::path(run_directory_).filename().string()));
    body += "<table class=\"facts\">";
    for (const auto& [k, v] : facts_) {
      body += fmt::format("<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    if (const auto it = steps_.find("loss"); it != steps_.end() && !it->second.empty()) {
      body += fmt::format("<tr><th>last logged step</th><td>{}</td></tr>",
                          static_cast<std::int64_t>(it->second.back().first));
    }
    body += fmt::format("<tr><th>state</th><td id=\"state\">{}</td></tr></table>",
                        escape(finished_.empty() ? "running" : "finished: " + finished_));

    body += "<h2>Curves</h2><div class=\"charts\">";
    const std::string train_color = "#1f77b4", validation_color = "#d62728";
    // Each loss component: its training means and, where validated, its
    // validation means.
    std::vector<std::string> losses;
    for (const auto& [name, points] : steps_) {
      if (name == "loss" || name.rfind("loss/", 0) == 0) losses.push_back(name);
    }
    for (const auto& [name, points] : validation_) {
      if ((name == "loss" || name.rfind("loss/", 0) == 0) && !steps_.contains(name)) {
        losses.push_back(name);
      }
    }
    for (const auto& name : losses) {
      std::vector<Series> series;
      if (const auto it = steps_.find(name); it != steps_.end()) {
        series.push_back({"train", train_color, it->second});
      }
      if (const auto it = validation_.find(name); it != validation_.end()) {
        series.push_back({"validation", validation_color, it->second, true});
      }
      body += chart("chart-" + name, name, series);
    }
    for (const char* name : {"lr", "grad_norm", "samples_per_sec", "memory/level"}) {
      if (const auto it = steps_.find(name); it != steps_.end()) {
        body += chart(std::string("chart-") + name, name, {{name, train_color, it->second}});
      }
    }
    body += "</div>";
    body += quality_section();

    if (!images_.empty() || !audio_.empty()) {
      body += fmt::format("<h2>Samples (step {})</h2><div class=\"media\">", media_step_);
      for (const auto& [tag, data] : images_) {
        body += fmt::format(
            "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"/><figcaption>{}</figcaption>"
            "</figure>",
            escape(tag), data, escape(tag));
      }
      for (const auto& [tag, data] : audio_) {
        body += fmt::format(
            "<figure><audio controls preload=\"auto\" data-tag=\"{}\" "
            "src=\"data:audio/wav;base64,{}\"></audio><figcaption>{}</figcaption></figure>",
            escape(tag), data, escape(tag));
      }
      body += "</div>";
    }
    for (const auto& [tag, text] : texts_) {
      body += fmt::format("<h3>{}</h3><pre>{}</pre>", escape(tag), escape(text));
    }
    if (!profile_.empty()) body += fmt::format("<h2>Profile</h2><pre>{}</pre>", escape(profile_));
    if (!notices_.empty()) {
      body += "<h2>Notices</h2><ul>";
      for (const auto& n : notices_) body += fmt::format("<li>{}</li>", escape(n));
      body += "</ul>";
    }
    body += fmt::format("<h2>Settings</h2><pre id=\"settings\">{}</pre>", escape(settings_));
    body += "<p id=\"self-check\">not checked (scripts are off)</p>";

    return fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kokoro run {}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1150px; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 1.6em; }} h3 {{ font-size: 14px; }}
table.facts th {{ text-align: left; padding-right: 1em; font-weight: 600; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 10px; }}
svg.chart {{ background: #fafafa; border: 1px solid #ddd; }}
svg .frame {{ fill: none; stroke: #bbb; }} svg .title {{ font-size: 12px; font-weight: 600; }}
svg .axis, svg .legend {{ font-size: 10px; }}
.media {{ display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; }}
figure {{ margin: 0; }} figure img {{ max-width: 540px; image-rendering: pixelated; }}
pre {{ background: #f4f4f4; padding: 8px; overflow-x: auto; font-size: 12px; }}
</style></head>
<body>
{}
<script>
// Says whether every audio element loaded (and whether the page raised
// errors), in #self-check: what a person sees and a test reads.
(function () {{
  var errors = [];
  window.addEventListener('error', function (e) {{ errors.push(String(e.message)); }});
  var players = Array.prototype.slice.call(document.querySelectorAll('audio'));
  var loaded = 0, failed = 0;
  function report() {{
    var out = document.getElementById('self-check');
    out.textContent = 'audio ' + loaded + '/' + players.length + ' loaded, ' + failed +
      ' failed; ' + document.querySelectorAll('.series').length + ' curves; errors: ' +
      (errors.length ? errors.join(' | ') : 'none');
    out.dataset.audioLoaded = loaded;
    out.dataset.audioFailed = failed;
    out.dataset.errors = errors.length;
  }}
  players.forEach(function (a) {{
    if (a.readyState >= 1) {{ loaded++; return; }}
    a.addEventListener('loadedmetadata', function () {{ loaded++; report(); }});
    a.addEventListener('error', function () {{ failed++; report(); }});
  }});
  report();
}})();
</script>
</body></html>
)",
                       escape(std::filesystem::path(run_directory_).filename().string()), body);
  }

 private:
  void write() const {
    if (run_directory_.empty()) return;
    write_file_atomically(path(), html());
  }

  using Points = std::vector<std::pair<double, double>>;

  /// A point at `step`, after dropping those at or after it: a step taken
  /// again (a resume, a rollback) replaces what it had logged before.
  static void add(Points& points, std::int64_t step, double value) {
    if (!std::isfinite(value)) return;
    const auto x = static_cast<double>(step);
    while (!points.empty() && points.back().first >= x) points.pop_back();
    points.emplace_back(x, value);
  }

  /// The task's quality figures: a table of the latest evaluation (each
  /// figure beside its reference levels) and a chart per figure over the
  /// steps, its reference levels dashed.
  std::string quality_section() const {
    using detail::report::chart;
    using detail::report::escape;
    using detail::report::label;
    using detail::report::Series;
    if (evaluation_.empty()) return {};
    std::vector<std::string> figures, references;
    for (const auto& [name, points] : evaluation_) {
      if (name == "clips" || points.empty()) continue;
      const auto at = name.find('@');
      if (at == std::string::npos) {
        figures.push_back(name);
      } else if (std::find(references.begin(), references.end(), name.substr(at + 1)) ==
                 references.end()) {
        references.push_back(name.substr(at + 1));
      }
    }
    std::string out = "<h2>Quality (free-running synthesis against the recordings)</h2>";
    const auto clips = evaluation_.find("clips");
    out += fmt::format(
        "<p>Latest evaluation at step {}{}; evaluations took {:.1f}% of the run's time. "
        "Reference levels: the same measure on the recordings themselves (recording) and on "
        "Griffin-Lim of their mels (griffin_lim, the vocoder alone).</p>",
        static_cast<std::int64_t>(evaluation_.begin()->second.back().first),
        clips != evaluation_.end() && !clips->second.empty()
            ? fmt::format(", {} clips", clips->second.back().second)
            : "",
        100.0 * evaluation_share_);
    out += "<table class=\"quality\" id=\"quality\"><tr><th>measure</th><th>model</th>";
    for (const auto& r : references) out += fmt::format("<th>{}</th>", escape(r));
    out += "</tr>";
    for (const auto& f : figures) {
      out += fmt::format("<tr><th>{}</th><td>{}</td>", escape(f),
                         label(evaluation_.at(f).back().second));
      for (const auto& r : references) {
        const auto it = evaluation_.find(f + "@" + r);
        out += fmt::format("<td>{}</td>", it != evaluation_.end() && !it->second.empty()
                                              ? label(it->second.back().second)
                                              : "-");
      }
      out += "</tr>";
    }
    out += "</table><div class=\"charts\">";
    const std::vector<std::string> colors = {"#2ca02c", "#9467bd", "#8c564b", "#e377c2"};
    for (const auto& f : figures) {
      std::vector<Series> series{{"model", "#1f77b4", evaluation_.at(f), false}};
      for (std::size_t i = 0; i < references.size(); ++i) {
        if (const auto it = evaluation_.find(f + "@" + references[i]); it != evaluation_.end()) {
          series.push_back({references[i], colors[i % colors.size()], it->second, false, true});
        }
      }
      out += chart("chart-eval-" + f, "eval/" + f, series);
    }
    return out + "</div>";
  }

  /// The steps before `start_step` from the run's metrics.jsonl (written
  /// by JsonlLogger), when there is one; a damaged line is skipped.
  void read_history(std::int64_t start_step) {
    std::ifstream in(std::filesystem::path(run_directory_) / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!row.is_object() || !row.contains("global_step")) continue;
      const auto step = row["global_step"].get<std::int64_t>();
      if (step > start_step) continue;  // steps redone after the checkpoint
      const auto take = [&](const nlohmann::json& values, auto& into) {
        if (!values.is_object()) return;
        for (const auto& [name, v] : values.items()) {
          if (v.is_number()) add(into[name], step, v.template get<double>());
        }
      };
      if (row.value("type", "") == "step" && row.contains("metrics")) take(row["metrics"], steps_);
      if (row.value("type", "") == "epoch" && row.contains("validation")) {
        take(row["validation"], validation_);
      }
      if (row.value("type", "") == "evaluation" && row.contains("metrics")) {
        take(row["metrics"], evaluation_);
      }
    }
  }

  std::string run_directory_;
  std::string settings_;
  std::vector<std::pair<std::string, std::string>> facts_;
  std::map<std::string, Points> steps_;
  std::map<std::string, Points> validation_;
  std::map<std::string, Points> evaluation_;  // the task's quality figures, ceilings as "x@ref"
  double evaluation_share_ = 0.0;
  std::vector<std::pair<std::string, std::string>> images_;
  std::vector<std::pair<std::string, std::string>> audio_;
  std::map<std::string, std::string> texts_;
  std::vector<std::string> notices_;
  std::string profile_;
  std::string finished_;
  std::int64_t media_step_ = 0;
  bool enabled_ = true;
};

static_assert(LoggerPolicy<ReportLogger>);

}  // namespace kokoro
