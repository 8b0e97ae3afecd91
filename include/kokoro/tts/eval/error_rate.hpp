// Word and character error rates of a transcript against the sentence that
// was meant, as speech recognition reports them: the Levenshtein distance
// (substitutions + deletions + insertions, util/nearest_word.hpp) over the
// reference's length.
//
// Both sides go through the same scoring normalisation first: the TTS
// normaliser's reading (numbers, abbreviations, symbols as words), then
// lower case, hyphens as spaces, every character but letters, digits and
// in-word apostrophes dropped, whitespace collapsed. The character rate
// counts characters of the words joined by single spaces, as jiwer's cer
// does. Totals are kept as counts, so that a set of clips gives the
// corpus rate (all edits over all reference words), not a mean of rates.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kokoro/tts/text/normalizer.hpp"
#include "kokoro/util/nearest_word.hpp"

namespace kokoro::tts::eval {

/// `text` as words for scoring (see the header).
inline std::vector<std::string> scoring_words(std::string_view text) {
  const auto spoken = normalize_english(text);
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    while (!word.empty() && word.back() == '\'') word.pop_back();
    const auto first = word.find_first_not_of('\'');
    if (first != std::string::npos) words.push_back(word.substr(first));
    word.clear();
  };
  for (const char raw : spoken) {
    const char c = (raw >= 'A' && raw <= 'Z') ? static_cast<char>(raw - 'A' + 'a') : raw;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'') {
      word += c;
    } else if (c == ' ' || c == '-' || c == '\t' || c == '\n' || c == '/') {
      flush();
    }
    // other punctuation is dropped within a word ("U.S." -> "us")
  }
  flush();
  return words;
}

/// Edits and reference lengths, words and characters; add clips with +=.
struct ErrorCounts {
  std::int64_t word_edits = 0;
  std::int64_t reference_words = 0;
  std::int64_t char_edits = 0;
  std::int64_t reference_chars = 0;

  double wer() const {
    return reference_words > 0 ? static_cast<double>(word_edits) / reference_words : 0.0;
  }
  double cer() const {
    return reference_chars > 0 ? static_cast<double>(char_edits) / reference_chars : 0.0;
  }
  ErrorCounts& operator+=(const ErrorCounts& o) {
    word_edits += o.word_edits;
    reference_words += o.reference_words;
    char_edits += o.char_edits;
    reference_chars += o.reference_chars;
    return *this;
  }
};

inline std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

/// The errors of `hypothesis` (a recognizer's transcript) against
/// `reference` (the sentence), both normalised for scoring.
inline ErrorCounts transcript_errors(std::string_view reference, std::string_view hypothesis) {
  const auto ref = scoring_words(reference), hyp = scoring_words(hypothesis);
  const auto ref_chars = join_words(ref), hyp_chars = join_words(hyp);
  return ErrorCounts{.word_edits = static_cast<std::int64_t>(sequence_edit_distance(ref, hyp)),
                     .reference_words = static_cast<std::int64_t>(ref.size()),
                     .char_edits = static_cast<std::int64_t>(edit_distance(ref_chars, hyp_chars)),
                     .reference_chars = static_cast<std::int64_t>(ref_chars.size())};
}

}  // namespace kokoro::tts::eval
