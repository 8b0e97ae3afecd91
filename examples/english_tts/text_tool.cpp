// kokoro-text: what the English TTS front end makes of a text. For each line
// (the arguments, a file, or standard input): the normalised text, the
// tokens and their ids, and the symbols outside the vocabulary. With
// --textgrid, the frames each token takes from an aligner's phone tier, the
// phone it was paired with, and the clip's match score. --json for scripts.
#include <kokoro/log/json.hpp>
#include <kokoro/tts/align/phone_projection.hpp>
#include <kokoro/tts/text/normalizer.hpp>
#include <kokoro/tts/text/phoneme_processor.hpp>

#include <cstdint>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/command_line.hpp"

namespace {

namespace tts = kokoro::tts;

/// A token as printed: the word boundary is shown as "|".
std::string shown(const std::string& token) { return token == " " ? "|" : token; }

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : " ") + shown(item);
  return out;
}

struct Alignment {
  std::string file;
  std::string tier;
  std::int64_t frames = 0;
  tts::TokenProjection projection;
  std::vector<std::string> phone_of_token;  ///< the paired interval's label, or ""
};

Alignment align(const std::string& path, const std::vector<std::string>& tokens,
                tts::PhoneSet token_set, int sample_rate, int hop_length) {
  Alignment a;
  a.file = path;
  const auto grid = tts::read_textgrid(path);
  const tts::Tier* phones = grid.aligner_tier("phones");
  if (phones == nullptr) throw kokoro::Error(fmt::format("{}: no `phones` tier", path));
  a.tier = phones->name;
  a.frames = tts::time_to_frame(grid.xmax, sample_rate, hop_length);
  const auto per_interval = tts::frame_durations(*phones, sample_rate, hop_length, a.frames);
  a.projection = tts::project_durations(tokens, *phones, per_interval,
                                        &tts::EnglishPhonemeProcessor::is_pause_token,
                                        {.token_set = token_set}, grid.aligner_tier("words"));
  if (!a.projection.ok) throw kokoro::Error(fmt::format("{}: {}", path, a.projection.problem));
  for (const auto index : a.projection.interval_of_token) {
    a.phone_of_token.push_back(
        index < 0 ? "" : phones->intervals[static_cast<std::size_t>(index)].label);
  }
  return a;
}

void print_text(const std::string& line, const std::string& normalized,
                const std::vector<std::string>& tokens, const std::vector<std::int64_t>& ids,
                const std::map<std::string, std::int64_t>& unknown,
                const std::optional<Alignment>& alignment) {
  fmt::print("text:        {}\nnormalized:  {}\ntokens:      {}\nids:        ", line, normalized,
             joined(tokens));
  for (const auto id : ids) fmt::print(" {}", id);
  fmt::print("\nunknown:    ");
  if (unknown.empty()) fmt::print(" none");
  for (const auto& [symbol, count] : unknown) fmt::print(" '{}' x{}", symbol, count);
  fmt::print("\n");
  if (alignment) {
    const auto& p = alignment->projection;
    fmt::print(
        "alignment:   {} tier \"{}\" ({}), {} frames, match score {:.2f} ({} exact, {} similar, "
        "{} phones and {} tokens unpaired, {} tokens from spn)\n",
        alignment->file, alignment->tier, tts::phone_set_name(p.grid_set), alignment->frames,
        p.match_score, p.exact_pairs, p.similar_pairs, p.unpaired_phones, p.unpaired_tokens,
        p.spoken_noise_tokens);
    fmt::print("  {:<8} {:>6}  {}\n", "token", "frames", "phone");
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      const bool none = p.interval_of_token[t] < 0;
      const auto& phone = alignment->phone_of_token[t];
      fmt::print("  {:<8} {:>6}  {}\n", shown(tokens[t]), p.durations[t],
                 none                                                ? "-"
                 : tts::label_kind(phone) == tts::LabelKind::silence ? "(silence)"
                                                                     : phone);
    }
  }
  fmt::print("\n");
}

kokoro::Json as_json(const std::string& line, const std::string& normalized,
                     const std::vector<std::string>& tokens, const std::vector<std::int64_t>& ids,
                     const std::map<std::string, std::int64_t>& unknown,
                     const std::optional<Alignment>& alignment) {
  kokoro::Json out = {{"text", line},
                      {"normalized", normalized},
                      {"tokens", tokens},
                      {"ids", ids},
                      {"unknown", unknown}};
  if (alignment) {
    const auto& p = alignment->projection;
    out["alignment"] = {{"file", alignment->file},
                        {"tier", alignment->tier},
                        {"phone_set", tts::phone_set_name(p.grid_set)},
                        {"frames", alignment->frames},
                        {"match_score", p.match_score},
                        {"exact_pairs", p.exact_pairs},
                        {"similar_pairs", p.similar_pairs},
                        {"unpaired_phones", p.unpaired_phones},
                        {"unpaired_tokens", p.unpaired_tokens},
                        {"spoken_noise_tokens", p.spoken_noise_tokens},
                        {"durations", p.durations},
                        {"phones", alignment->phone_of_token}};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Shows what the English TTS front end makes of a text: normalised text, tokens, ids,\n"
      "symbols outside the vocabulary; with --textgrid, each token's frames from an aligner's\n"
      "phone tier and the phone it was paired with.",
      "kokoro-text");
  std::vector<std::string> lines;
  std::string file;
  std::string phoneme_set = "espeak";
  std::string vocabulary;
  std::string textgrid;
  int sample_rate = 22050;
  int hop_length = 256;
  bool json = false;
  app.add_option("text", lines, "lines of text (none: --file, else standard input)");
  app.add_option("--file", file, "read the lines from FILE")->option_text("FILE");
  app.add_option("--phoneme-set", phoneme_set, "the front end (as data.phoneme_set)")
      ->check(CLI::IsMember({"espeak", "arpabet"}))
      ->option_text("espeak|arpabet");
  app.add_option("--vocabulary", vocabulary,
                 "a run's phonemes.txt: its vocabulary and front end (overrides --phoneme-set)")
      ->option_text("FILE");
  app.add_option("--textgrid", textgrid, "align the (first) line's tokens to this TextGrid")
      ->option_text("FILE");
  app.add_option("--sample-rate", sample_rate, "audio.sample_rate, for --textgrid frames")
      ->check(examples::whole_number_above_0)
      ->option_text("HZ");
  app.add_option("--hop-length", hop_length, "audio.hop_length, for --textgrid frames")
      ->check(examples::whole_number_above_0)
      ->option_text("N");
  app.add_flag("--json", json, "one JSON object per line of text");
  if (const auto exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;

  try {
    auto processor = vocabulary.empty() ? tts::EnglishPhonemeProcessor::for_phoneme_set(phoneme_set)
                                        : tts::load_phoneme_processor(vocabulary);
    if (lines.empty()) {
      std::ifstream in;
      if (!file.empty()) {
        in.open(file);
        if (!in) throw kokoro::Error(fmt::format("{}: cannot open for reading", file));
      }
      std::istream& source = file.empty() ? std::cin : in;
      for (std::string line; std::getline(source, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) lines.push_back(line);
      }
    }
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const auto normalized = tts::normalize_english(lines[i]);
      const auto tokens = processor.tokens(lines[i]);
      processor.reset_unknown();
      const auto ids = processor.encode_tokens(tokens);
      const auto unknown = processor.unknown_symbols();
      std::optional<Alignment> alignment;
      if (!textgrid.empty() && i == 0) {
        alignment = align(textgrid, tokens, processor.phone_set(), sample_rate, hop_length);
      }
      if (json) {
        fmt::print("{}\n", kokoro::detail::dump(
                               as_json(lines[i], normalized, tokens, ids, unknown, alignment)));
      } else {
        print_text(lines[i], normalized, tokens, ids, unknown, alignment);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kokoro-text: {}\n", e.what());
    return 1;
  }
}
