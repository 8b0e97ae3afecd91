// A corpus made ready for training: the LJSpeech metadata read, the clips
// split into training and validation, and every clip's features (log-mel,
// phoneme ids, durations) in the feature cache, computed in parallel where
// they are missing or stale. A clip that cannot be used (unreadable audio,
// too long, no usable alignment under a `skip` policy) is left out with a
// message naming it; the report counts every such case and the run goes on.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "kokoro/audio/audio_file.hpp"
#include "kokoro/audio/mel.hpp"
#include "kokoro/tts/align/phone_projection.hpp"
#include "kokoro/tts/align/textgrid.hpp"
#include "kokoro/tts/data/feature_cache.hpp"
#include "kokoro/tts/data/ljspeech.hpp"
#include "kokoro/tts/text/phoneme_processor.hpp"
#include "kokoro/tts/tts_config.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// One usable clip: where its features are and how long they are.
struct CorpusClip {
  std::string id;
  std::string text;
  std::filesystem::path features;
  std::int64_t frames = 0;
  std::int64_t tokens = 0;
  std::filesystem::path audio{};  ///< the recording (for evaluation against it)
};

/// What preparing the corpus found and did.
struct CorpusReport {
  std::int64_t listed = 0;      ///< clips in the metadata (bad lines included)
  std::int64_t usable = 0;      ///< clips with features
  std::int64_t computed = 0;    ///< features computed this time
  std::int64_t from_cache = 0;  ///< features found in the cache
  std::int64_t uniform_durations = 0;  ///< no usable TextGrid (learned, or spread evenly)
  std::int64_t aligned = 0;      ///< durations from their TextGrids
  std::string durations = "textgrid";  ///< data.durations
  double match_score_sum = 0.0;  ///< over the aligned clips
  double exact_share_sum = 0.0;  ///< each clip's share of phones paired with the same sound
  std::int64_t truncated = 0;

  double mean_match_score() const { return aligned > 0 ? match_score_sum / aligned : 0.0; }
  double mean_exact_share() const { return aligned > 0 ? exact_share_sum / aligned : 0.0; }
  std::map<std::string, std::int64_t> skipped;  ///< reason -> clips
  std::map<std::string, std::int64_t> unknown_symbols;
  std::vector<std::string> messages;  ///< one per skipped clip or fallback, naming it
  double audio_hours = 0.0;           ///< of the usable clips
  double seconds = 0.0;

  std::int64_t skipped_total() const {
    std::int64_t n = 0;
    for (const auto& [reason, count] : skipped) n += count;
    return n;
  }

  /// A few lines for the console and the logs.
  std::string summary() const {
    std::string out = fmt::format(
        "corpus: {} clips usable of {} listed ({:.2f} h of audio); features: {} computed, {} from "
        "the cache in {:.1f} s",
        usable, listed, audio_hours, computed, from_cache, seconds);
    if (!skipped.empty()) {
      out += "\n  skipped:";
      for (const auto& [reason, count] : skipped) out += fmt::format(" {} {},", count, reason);
      out.pop_back();
    }
    if (aligned > 0) {
      out += fmt::format(
          "\n  aligned from TextGrids: {} clips, mean match score {:.3f}, {:.1f}% of phones "
          "paired with the same sound",
          aligned, mean_match_score(), 100.0 * mean_exact_share());
    }
    if (durations == "learned") {
      out += fmt::format("\n  durations learned by the aligner for all {} clips (data.durations: "
                         "learned; TextGrids set aside)",
                         usable);
    } else if (uniform_durations > 0 && durations == "auto") {
      out += fmt::format("\n  durations learned by the aligner (no usable TextGrid): {} clips",
                         uniform_durations);
    } else if (uniform_durations > 0) {
      out +=
          fmt::format("\n  uniform durations (no usable alignment): {} clips", uniform_durations);
    }
    if (truncated > 0) out += fmt::format("\n  truncated to audio.max_frames: {} clips", truncated);
    if (!unknown_symbols.empty()) {
      out += "\n  phoneme symbols outside the vocabulary (mapped to <unk>):";
      for (const auto& [symbol, count] : unknown_symbols)
        out += fmt::format(" '{}' x{}", symbol, count);
    }
    return out;
  }
};

/// The feature settings of the `audio` section.
inline audio::MelOptions mel_options(const AudioSection& a) {
  return {.sample_rate = a.sample_rate,
          .n_fft = a.n_fft,
          .hop_length = a.hop_length,
          .win_length = a.win_length,
          .n_mels = a.n_mels,
          .fmin = a.fmin,
          .fmax = a.fmax,
          .mel_power = a.mel_power};
}

/// Called from a background thread about every `interval` while features are
/// computed (clips done so far, clips in all), and once at the end with
/// done == total, also when every clip came from the cache.
struct CorpusProgress {
  std::function<void(std::size_t done, std::size_t total)> report;
  std::chrono::milliseconds interval{1000};
};

struct PreparedCorpus {
  std::vector<CorpusClip> train;
  std::vector<CorpusClip> validation;
  std::filesystem::path cache_dir;  ///< the folder for these settings
  CorpusReport report;
};

/// `frames` spread over `tokens` as evenly as whole frames allow (the first
/// `frames % tokens` tokens get one more); sums to `frames`.
inline std::vector<std::int64_t> uniform_durations(std::int64_t tokens, std::int64_t frames) {
  std::vector<std::int64_t> d(static_cast<std::size_t>(tokens), tokens > 0 ? frames / tokens : 0);
  for (std::int64_t i = 0; i < (tokens > 0 ? frames % tokens : 0); ++i)
    ++d[static_cast<std::size_t>(i)];
  return d;
}

/// Durations cut to the first `frames` frames (for clips truncated to
/// audio.max_frames): later phonemes get fewer frames, or none.
inline std::vector<std::int64_t> truncate_durations(std::vector<std::int64_t> durations,
                                                    std::int64_t frames) {
  std::int64_t start = 0;
  for (auto& d : durations) {
    const auto end = std::min(start + d, frames);
    const auto begin = std::min(start, frames);
    start += d;
    d = end - begin;
  }
  return durations;
}

namespace detail::corpus {

/// Everything that shapes the features, as text; its hash names the cache folder.
inline std::string settings_text(const TtsConfig& config,
                                 const EnglishPhonemeProcessor& processor) {
  std::string text = "kokoro-tts-features 3\n";
  AudioSection::fields(config.audio,
                       [&](const char* key, const auto& value, const char*, const auto&...) {
                         text += fmt::format("audio.{}: {}\n", key, value);
                       });
  text += fmt::format(
      "data.too_long: {}\ndata.durations: {}\ndata.missing_alignment: {}\n"
      "data.alignment_mismatch: {}\ndata.alignment_min_match: {}\n"
      "data.alignment_tolerance_ms: {}\n",
      config.data.too_long, config.data.durations, config.data.missing_alignment,
      config.data.alignment_mismatch,
      config.data.alignment_min_match, config.data.alignment_tolerance_ms);
  text += "voice: " + processor.voice() + "\nvocabulary:";
  for (const auto& symbol : processor.vocabulary())
    text += " " + detail::phonemes::escape_symbol(symbol);
  return text + "\n";
}

inline std::string file_identity(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return path.string() + ":none";
  const auto time = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
  return fmt::format("{}:{}:{}", path.string(), size, time);
}

inline std::string tier_names(const TextGrid& grid) {
  std::string out;
  for (const auto& t : grid.tiers) out += (out.empty() ? "\"" : ", \"") + t.name + "\"";
  return out.empty() ? "none" : out;
}

/// The outcome of one clip.
struct Outcome {
  bool usable = false;
  std::string skip_reason;  ///< when not usable
  std::string message;      ///< for the report (skips and fallbacks)
  CacheHeader header;
  bool computed = false;
};

/// Phonemes (tokens) a second of audio: the speaking rate of a clip.
inline double speaking_rate(const CacheHeader& h, const AudioSection& audio) {
  const double seconds =
      static_cast<double>(h.frames * audio.hop_length) / static_cast<double>(audio.sample_rate);
  return seconds > 0.0 ? static_cast<double>(h.tokens) / seconds : 0.0;
}

/// The clips a speaking-rate check needs before it trusts their median.
inline constexpr std::size_t kSpeakingRateClips = 10;

/// The median speaking rate of the usable clips not cut to audio.max_frames
/// (whose rate says nothing of how they were spoken); 0 below
/// kSpeakingRateClips of them.
inline double median_speaking_rate(const std::vector<Outcome>& outcomes,
                                   const AudioSection& audio) {
  std::vector<double> rates;
  for (const auto& o : outcomes) {
    if (o.usable && !(o.header.flags & kTruncated)) rates.push_back(speaking_rate(o.header, audio));
  }
  if (rates.size() < kSpeakingRateClips) return 0.0;
  const auto middle = rates.begin() + static_cast<std::ptrdiff_t>(rates.size() / 2);
  std::nth_element(rates.begin(), middle, rates.end());
  return *middle;
}

}  // namespace detail::corpus

/// Where a run keeps its corpus's features: data.cache_dir, else
/// <logging.output_dir>/cache.
inline std::filesystem::path corpus_cache_dir(const TtsConfig& config) {
  return config.data.cache_dir.empty() ? std::filesystem::path(config.logging.output_dir) / "cache"
                                       : std::filesystem::path(config.data.cache_dir);
}

/// Reads `<data_dir>/<data.metadata_file>`, splits it (data.validation_split,
/// training.seed) and makes sure every clip's features are in
/// `<cache_root>/<settings key>`, computing the missing ones on
/// max(1, data.num_workers) threads, telling `progress` how far it got.
/// `write_summaries`: whether to (re)write the cache's settings.txt and
/// report.txt (false: a rank of a data-parallel run that reads the cache
/// rank 0 made). Throws kokoro::Error when the metadata cannot be read or no
/// clip is usable.
inline PreparedCorpus prepare_corpus(const TtsConfig& config,
                                     const EnglishPhonemeProcessor& processor,
                                     const std::filesystem::path& data_dir,
                                     const std::filesystem::path& cache_root,
                                     const CorpusProgress& progress = {},
                                     bool write_summaries = true) {
  const auto start = std::chrono::steady_clock::now();
  const auto& data = config.data;
  const auto& audio = config.audio;
  // With learned durations in reach (auto, learned) no clip is left out for
  // its TextGrid: the aligner takes the clips without a usable one.
  const bool only_textgrids = data.durations == "textgrid";
  auto metadata = read_ljspeech_metadata(data_dir / data.metadata_file, data_dir / data.wavs_dir,
                                         data_dir / data.alignments_dir);
  PreparedCorpus out;
  auto& report = out.report;
  report.durations = data.durations;
  report.listed = static_cast<std::int64_t>(metadata.utterances.size() + metadata.problems.size());
  report.messages = metadata.problems;
  if (!metadata.problems.empty())
    report.skipped["bad metadata line"] = static_cast<std::int64_t>(metadata.problems.size());

  const auto settings = detail::corpus::settings_text(config, processor);
  out.cache_dir = cache_root / fmt::format("{:016x}", detail::fnv1a(settings));
  std::filesystem::create_directories(out.cache_dir);
  if (write_summaries) write_file_atomically(out.cache_dir / "settings.txt", settings);

  const audio::MelSpectrogram mel(mel_options(audio));
  const auto& utterances = metadata.utterances;
  std::vector<detail::corpus::Outcome> outcomes(utterances.size());

  auto process = [&](std::size_t i) {
    const auto& u = utterances[i];
    auto& o = outcomes[i];
    const auto file = out.cache_dir / (u.id + ".feat");
    const auto source =
        detail::fnv1a(detail::corpus::file_identity(u.audio) + "|" +
                      detail::corpus::file_identity(u.alignment) + "|" + u.normalized);
    if (const auto h = read_cache_header(file); h && h->source_hash == source) {
      o.usable = true;
      o.header = *h;
      return;
    }
    try {
      const auto samples = audio::load_audio(u.audio, static_cast<int>(audio.sample_rate));
      auto features =
          mel(torch::from_blob(const_cast<float*>(samples.data()),
                               {static_cast<std::int64_t>(samples.size())}, torch::kFloat));
      std::int64_t frames = features.size(0);
      std::uint32_t flags = 0;
      const bool too_long = frames > audio.max_frames;
      if (too_long && data.too_long == "skip") {
        o.skip_reason = "too long";
        o.message = fmt::format("{}: {} frames, over audio.max_frames = {} (data.too_long: skip)",
                                u.audio.string(), frames, audio.max_frames);
        return;
      }
      const auto tokens = processor.tokens(u.normalized);
      if (tokens.empty()) {
        o.skip_reason = "no phonemes";
        o.message = fmt::format("{}:{}: clip {}: the text gives no phonemes",
                                (data_dir / data.metadata_file).string(), u.line, u.id);
        return;
      }
      std::vector<std::int64_t> durations;
      std::string fallback;
      if (std::filesystem::exists(u.alignment)) {
        const auto grid = read_textgrid(u.alignment);
        const Tier* phones = grid.aligner_tier("phones");
        const Tier* words = grid.aligner_tier("words");
        const double audio_seconds =
            static_cast<double>(samples.size()) / static_cast<double>(audio.sample_rate);
        const double grid_seconds = grid.xmax;
        if (!phones) {
          fallback = fmt::format("{}: no `phones` tier (tiers: {})", u.alignment.string(),
                                 detail::corpus::tier_names(grid));
        } else if (std::abs(grid_seconds - audio_seconds) * 1000.0 > data.alignment_tolerance_ms) {
          fallback = fmt::format(
              "{}: the grid ends at {:.3f} s but the audio lasts {:.3f} s ({:+.0f} ms, over "
              "data.alignment_tolerance_ms = {})",
              u.alignment.string(), grid_seconds, audio_seconds,
              (grid_seconds - audio_seconds) * 1000.0, data.alignment_tolerance_ms);
        } else {
          const auto tier = with_trailing_silence(*phones, audio_seconds);
          const auto frames_per_interval =
              frame_durations(tier, static_cast<int>(audio.sample_rate),
                              static_cast<int>(audio.hop_length), frames);
          const auto projected = project_durations(tokens, tier, frames_per_interval,
                                                   &EnglishPhonemeProcessor::is_pause_token,
                                                   {.token_set = processor.phone_set()}, words);
          if (!projected.ok) {
            fallback = fmt::format("{}: {}", u.alignment.string(), projected.problem);
          } else if (projected.match_score < data.alignment_min_match) {
            fallback = fmt::format(
                "{}: match score {:.2f} under data.alignment_min_match = {} ({} phones in {}, "
                "{} phonemes: {} exact, {} similar, {} phones and {} phonemes unpaired)",
                u.alignment.string(), projected.match_score, data.alignment_min_match,
                projected.phones, phone_set_name(projected.grid_set), projected.phone_tokens,
                projected.exact_pairs, projected.similar_pairs, projected.unpaired_phones,
                projected.unpaired_tokens);
          } else {
            durations = projected.durations;
            flags = with_match_score(flags | kProjected, projected.match_score);
            flags = with_exact_share(flags, projected.phones > 0
                                                ? static_cast<double>(projected.exact_pairs) /
                                                      static_cast<double>(projected.phones)
                                                : 1.0);
          }
        }
        if (!fallback.empty() && only_textgrids && data.alignment_mismatch == "skip") {
          o.skip_reason = "alignment mismatch";
          o.message = fallback + " (data.alignment_mismatch: skip)";
          return;
        }
      } else {
        fallback = fmt::format("{}: no TextGrid", u.alignment.string());
        if (only_textgrids && data.missing_alignment == "skip") {
          o.skip_reason = "no alignment";
          o.message = fallback + " (data.missing_alignment: skip)";
          return;
        }
      }
      if (durations.empty()) {
        durations = uniform_durations(static_cast<std::int64_t>(tokens.size()), frames);
        flags |= kUniformDurations;
        o.message = fallback + (only_textgrids ? ": durations spread evenly"
                                               : ": durations to be learned by the aligner");
      }
      if (too_long) {
        features = features.slice(0, 0, audio.max_frames);
        durations = truncate_durations(std::move(durations), audio.max_frames);
        frames = audio.max_frames;
        flags |= kTruncated;
      }
      const auto ids = processor.encode_tokens(tokens);
      TtsItem item{u.id, features, torch::tensor(ids, torch::kLong),
                   torch::tensor(durations, torch::kLong)};
      write_cache_file(file, item, source, flags);
      o.usable = true;
      o.computed = true;
      o.header = CacheHeader{source, frames, features.size(1),
                             static_cast<std::int64_t>(ids.size()), flags};
    } catch (const std::exception& e) {
      o.skip_reason = "unreadable";
      o.message = e.what();
    }
  };

  // Workers take clips in turn; espeak-ng calls queue on its own lock.
  std::atomic<std::size_t> next{0}, done{0};
  auto worker = [&] {
    for (std::size_t i; (i = next++) < utterances.size(); ++done) process(i);
  };
  const auto n_threads = static_cast<std::size_t>(std::max<std::int64_t>(1, data.num_workers));
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  std::thread reporter;
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool finished = false;
  if (progress.report && !utterances.empty()) {
    reporter = std::thread([&] {
      std::size_t shown = 0;
      std::unique_lock lock(wake_mutex);
      while (!wake.wait_for(lock, progress.interval, [&] { return finished; })) {
        const std::size_t d = done;
        if (d == shown) continue;
        shown = d;
        progress.report(d, utterances.size());
      }
    });
  }
  worker();
  for (auto& t : threads) t.join();
  if (reporter.joinable()) {
    {
      std::lock_guard lock(wake_mutex);
      finished = true;
    }
    wake.notify_all();
    reporter.join();
    progress.report(utterances.size(), utterances.size());
  }

  // A clip spoken far faster or slower than the rest of its corpus was cut
  // short, or its text is not what was said: either teaches the aligner and
  // the duration predictor a falsehood.
  const double median_rate =
      data.speaking_rate_limit > 0.0 ? detail::corpus::median_speaking_rate(outcomes, audio) : 0.0;
  std::vector<CorpusClip> usable;
  for (std::size_t i = 0; i < utterances.size(); ++i) {
    auto& o = outcomes[i];
    if (o.usable && median_rate > 0.0 && !(o.header.flags & kTruncated)) {
      const double rate = detail::corpus::speaking_rate(o.header, audio);
      const double factor = std::max(rate / median_rate, median_rate / rate);
      if (factor > data.speaking_rate_limit) {
        o.usable = false;
        o.skip_reason = "speaking rate";
        o.message = fmt::format(
            "{}: {:.1f} phonemes a second, {:.1f} times {} than the corpus's median {:.1f} "
            "(over data.speaking_rate_limit = {}): a recording cut short, or a text that is "
            "not what was said",
            utterances[i].audio.string(), rate, factor, rate > median_rate ? "faster" : "slower",
            median_rate, data.speaking_rate_limit);
      }
    }
    if (!o.message.empty()) report.messages.push_back(o.message);
    if (!o.usable) {
      ++report.skipped[o.skip_reason];
      continue;
    }
    ++(o.computed ? report.computed : report.from_cache);
    if (o.header.flags & kUniformDurations) ++report.uniform_durations;
    if (o.header.flags & kProjected) {
      ++report.aligned;
      report.match_score_sum += match_score_of(o.header.flags);
      report.exact_share_sum += exact_share_of(o.header.flags);
    }
    if (o.header.flags & kTruncated) ++report.truncated;
    report.audio_hours +=
        static_cast<double>(o.header.frames * audio.hop_length) / audio.sample_rate / 3600.0;
    usable.push_back(CorpusClip{utterances[i].id, utterances[i].normalized,
                                out.cache_dir / (utterances[i].id + ".feat"), o.header.frames,
                                o.header.tokens, utterances[i].audio});
  }
  report.usable = static_cast<std::int64_t>(usable.size());
  report.unknown_symbols = processor.unknown_symbols();
  if (usable.empty()) {
    throw Error(fmt::format(
        "{}: no usable clip ({} listed){}", (data_dir / data.metadata_file).string(), report.listed,
        report.messages.empty() ? "" : "; first problem: " + report.messages.front()));
  }

  // Split by id, so that the split does not move when a clip fails.
  std::vector<Utterance> by_id;
  for (const auto& c : usable)
    by_id.push_back(Utterance{.id = c.id, .text = c.text, .normalized = c.text});
  const auto [train_ids, valid_ids] = split_train_validation(
      by_id, data.validation_split, static_cast<std::uint64_t>(config.training.seed));
  std::map<std::string, bool> is_valid;
  for (const auto& u : valid_ids) is_valid[u.id] = true;
  for (auto& c : usable)
    (is_valid.count(c.id) ? out.validation : out.train).push_back(std::move(c));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The report on disk is a convenience: a failure to write it (a full
  // disk) is said in the report itself, and the run goes on.
  try {
    if (write_summaries)
      write_file_atomically(
          out.cache_dir / "report.txt", report.summary() + "\n\n" + [&] {
            std::string all;
            for (const auto& m : report.messages) all += m + "\n";
            return all;
          }());
  } catch (const std::exception& e) {
    out.report.messages.push_back(fmt::format("the report was not written: {}", e.what()));
  }
  return out;
}

}  // namespace kokoro::tts
