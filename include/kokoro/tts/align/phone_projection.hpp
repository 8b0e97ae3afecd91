// Durations for the model's tokens from an aligner's phone tier written in
// any phone set: the phones are paired with the tokens by a monotonic
// alignment (dynamic programming, costs from phone_table.hpp), so that a
// grapheme-to-phoneme disagreement (a schwa for a full vowel, a glottal stop
// for a t, a word pronounced otherwise) costs a few frames, not the clip.
// With the aligner's words tier, pairs that keep the grid's word boundaries
// on the tokens' are preferred, and unpaired phones and tokens keep to their
// own word.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kokoro/tts/align/textgrid.hpp"
#include "kokoro/tts/text/phone_table.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// How the phones of a grid are paired with the tokens.
struct ProjectionOptions {
  PhoneSet token_set = PhoneSet::espeak;  ///< the front end's notation
  std::optional<PhoneSet> grid_set{};     ///< the aligner's; nothing: guessed from the labels
  double gap_cost = 0.55;                 ///< a phone or a token left unpaired
  double spoken_noise_cost = 0.2;         ///< an `spn` interval taking a word's tokens
  double good_pair = 0.5;                 ///< pairs cheaper than this count as matched
  /// Added to a pair where one side starts a word and the other does not
  /// (only with a words tier). Below any real phone difference, it decides
  /// between alignments that cost the same, such as which of two words an
  /// unpaired token belongs to.
  double word_boundary_cost = 0.1;
};

/// The outcome of project_durations.
struct TokenProjection {
  bool ok = false;
  std::string problem;                  ///< why not ok
  std::vector<std::int64_t> durations;  ///< per token; sums to the tier's frames
  /// Matched units over the larger of (phones, phone tokens): 1 when every
  /// phone pairs with a similar token and none is left over.
  double match_score = 0.0;
  PhoneSet grid_set = PhoneSet::espeak;
  std::int64_t phones = 0;               ///< phone intervals (not silence)
  std::int64_t phone_tokens = 0;         ///< tokens that are not pauses
  std::int64_t exact_pairs = 0;          ///< paired with the same sound
  std::int64_t similar_pairs = 0;        ///< paired with a close sound (cost < good_pair)
  std::int64_t unpaired_phones = 0;      ///< frames given to a neighbouring token
  std::int64_t unpaired_tokens = 0;      ///< frames shared with a neighbour
  std::int64_t spoken_noise_tokens = 0;  ///< tokens whose frames came from an `spn` word
  /// For each token, the tier interval (0-based) whose frames it took first,
  /// or -1: for displays such as kokoro-text.
  std::vector<std::int64_t> interval_of_token;
};

namespace detail::projection {

/// A label of ASCII punctuation only that names no phone of `set`, such as
/// espeak-ng's ";#" (a break between spelled letters; its "?#" is a glottal
/// stop and stays a phone): on either side, no phone.
inline bool is_break_label(std::string_view label, PhoneSet set) {
  return !label.empty() && std::all_of(label.begin(), label.end(), [](char c) {
    return std::ispunct(static_cast<unsigned char>(c)) != 0;
  }) && !phone_features(label, set);
}

/// label_kind, with break labels counted as silence.
inline LabelKind interval_kind(std::string_view label, PhoneSet set) {
  return is_break_label(label, set) ? LabelKind::silence : label_kind(label);
}

enum class Step : std::uint8_t { none, pair, skip_phone, skip_token, noise_word };

/// For each of `intervals` (indices into `phones`), the index of the words
/// interval holding its midpoint, or -1 outside any word (a silence in the
/// words tier, or no words tier).
inline std::vector<std::int64_t> grid_words(const Tier& phones,
                                            const std::vector<std::size_t>& intervals,
                                            const Tier* words) {
  std::vector<std::int64_t> out(intervals.size(), -1);
  if (words == nullptr) return out;
  std::size_t w = 0;
  for (std::size_t k = 0; k < intervals.size(); ++k) {
    const auto& iv = phones.intervals[intervals[k]];
    const double mid = 0.5 * (iv.start + iv.end);
    while (w < words->intervals.size() && words->intervals[w].end <= mid) ++w;
    if (w < words->intervals.size() && words->intervals[w].start <= mid &&
        label_kind(words->intervals[w].label) != LabelKind::silence) {
      out[k] = static_cast<std::int64_t>(w);
    }
  }
  return out;
}

}  // namespace detail::projection

/// Gives each token its frames from the aligned phone tier, where
/// interval_frames[i] are the frames of phones.intervals[i] (frame_durations).
/// `is_pause_token` says which tokens may stand for a pause (the word
/// boundary, punctuation).
///
/// - Phone intervals and phone tokens are aligned monotonically at the least
///   total cost: pairing costs phone_distance, leaving a phone or a token
///   unpaired costs gap_cost, and an `spn` interval takes the tokens of the
///   word it starts on for spoken_noise_cost. With `words` (the grid's words
///   tier), a pair where only one side starts a word costs
///   word_boundary_cost more.
/// - A paired token takes its phone's frames; an `spn` word's frames are
///   spread over its tokens. An unpaired phone's frames go to the token
///   before it, or with `words` to the token after it when the phone begins
///   its word (and at the start). A run of unpaired tokens shares, evenly,
///   the frames of the token before it, or of the token after it when the
///   run begins a word (and at the start).
/// - A silence (sil, sp, "", <eps>) goes to the first pause token between
///   the tokens of the phones around it; with none there, to the token before
///   it (the first token at the start).
///
/// The durations sum to the sum of interval_frames. Not ok only when there
/// are frames and no token to give them to. Throws kokoro::Error when
/// interval_frames and the tier differ in size or is_pause_token is empty.
inline TokenProjection project_durations(
    const std::vector<std::string>& tokens, const Tier& tier,
    const std::vector<std::int64_t>& interval_frames,
    const std::function<bool(std::string_view)>& is_pause_token,
    const ProjectionOptions& options = {}, const Tier* words = nullptr) {
  using namespace detail::projection;
  if (interval_frames.size() != tier.intervals.size()) {
    throw Error(
        fmt::format("project_durations: {} frame counts for the {} intervals of tier \"{}\"",
                    interval_frames.size(), tier.intervals.size(), tier.name));
  }
  if (!is_pause_token) throw Error("project_durations: is_pause_token is empty");
  TokenProjection out;
  out.durations.assign(tokens.size(), 0);
  out.interval_of_token.assign(tokens.size(), -1);

  // The two sequences: phone intervals (spn included) and phone tokens.
  std::vector<std::string> phone_labels;
  for (const auto& interval : tier.intervals) {
    if (label_kind(interval.label) == LabelKind::phone) phone_labels.push_back(interval.label);
  }
  out.grid_set = options.grid_set ? *options.grid_set : guess_phone_set(phone_labels);
  const auto kind_of = [&](std::string_view label) { return interval_kind(label, out.grid_set); };
  std::vector<std::size_t> phone_at;  // tier index of each phone/spn interval
  for (std::size_t i = 0; i < tier.intervals.size(); ++i) {
    if (kind_of(tier.intervals[i].label) != LabelKind::silence) phone_at.push_back(i);
  }
  std::vector<std::size_t> token_at;  // token index of each phone token
  std::vector<std::size_t> word_end;  // for each phone token, one past its word's last
  std::vector<bool> token_starts_word;
  // Tokens like espeak-ng's ";#" (a break between spelled letters) are no
  // phone: like pauses they take silence or nothing, and are not scored.
  const auto is_break = [&](const std::string& token) {
    return is_pause_token(token) || is_break_label(token, options.token_set);
  };
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    if (!is_break(tokens[t])) token_at.push_back(t);
  }
  for (std::size_t j = 0; j < token_at.size(); ++j) {
    token_starts_word.push_back(j == 0 || token_at[j] != token_at[j - 1] + 1);
    std::size_t k = j + 1;
    while (k < token_at.size() && token_at[k] == token_at[k - 1] + 1) ++k;
    word_end.push_back(k);
  }
  const std::size_t m = phone_at.size(), n = token_at.size();
  out.phones = static_cast<std::int64_t>(m);
  out.phone_tokens = static_cast<std::int64_t>(n);

  std::int64_t total = 0;
  for (const auto f : interval_frames) total += f;
  if (tokens.empty()) {
    if (total > 0) {
      out.problem = fmt::format("{} has {} frames but there are no tokens", tier.name, total);
      return out;
    }
    out.ok = true;
    return out;
  }

  std::vector<std::optional<PhoneFeatures>> pf(m), tf(n);
  std::vector<bool> noise(m);
  for (std::size_t i = 0; i < m; ++i) {
    const auto& label = tier.intervals[phone_at[i]].label;
    noise[i] = kind_of(label) == LabelKind::spoken_noise;
    if (!noise[i]) pf[i] = phone_features(label, out.grid_set);
  }
  for (std::size_t j = 0; j < n; ++j)
    tf[j] = phone_features(tokens[token_at[j]], options.token_set);
  auto distance = [&](std::size_t i, std::size_t j) {
    if (tier.intervals[phone_at[i]].label == tokens[token_at[j]]) return 0.0;
    return phone_distance(pf[i], tf[j]);
  };
  const std::vector<std::int64_t> word_of_phone = grid_words(tier, phone_at, words);
  std::vector<bool> phone_starts_word(m);
  for (std::size_t i = 0; i < m; ++i)
    phone_starts_word[i] = i == 0 || word_of_phone[i] != word_of_phone[i - 1];
  auto pair_cost = [&](std::size_t i, std::size_t j) {
    const bool boundary_differs = words != nullptr && phone_starts_word[i] != token_starts_word[j];
    return distance(i, j) + (boundary_differs ? options.word_boundary_cost : 0.0);
  };

  // Least cost to align phones [0, i) with tokens [0, j).
  constexpr double inf = std::numeric_limits<double>::infinity();
  const std::size_t w = n + 1;
  std::vector<double> cost((m + 1) * w, inf);
  std::vector<Step> step((m + 1) * w, Step::none);
  std::vector<std::uint32_t> from_j((m + 1) * w, 0);
  cost[0] = 0.0;
  auto relax = [&](std::size_t i, std::size_t j, double c, Step s, std::size_t pj) {
    if (c < cost[i * w + j]) {
      cost[i * w + j] = c;
      step[i * w + j] = s;
      from_j[i * w + j] = static_cast<std::uint32_t>(pj);
    }
  };
  for (std::size_t i = 0; i <= m; ++i) {
    for (std::size_t j = 0; j <= n; ++j) {
      const double here = cost[i * w + j];
      if (here == inf) continue;
      if (i < m && j < n && !noise[i]) relax(i + 1, j + 1, here + pair_cost(i, j), Step::pair, j);
      if (i < m) relax(i + 1, j, here + options.gap_cost, Step::skip_phone, j);
      if (j < n) relax(i, j + 1, here + options.gap_cost, Step::skip_token, j);
      if (i < m && j < n && noise[i]) {
        relax(i + 1, word_end[j], here + options.spoken_noise_cost, Step::noise_word, j);
      }
    }
  }

  // Walk back, then assign frames in order.
  struct Move {
    Step step;
    std::size_t i, j, j_end;
  };
  std::vector<Move> moves;
  for (std::size_t i = m, j = n; i > 0 || j > 0;) {
    const Step s = step[i * w + j];
    const std::size_t pj = from_j[i * w + j];
    const std::size_t pi = (s == Step::skip_token) ? i : i - 1;
    moves.push_back({s, pi, pj, j});
    i = pi;
    j = pj;
  }
  std::reverse(moves.begin(), moves.end());

  std::vector<std::int64_t> token_of_phone(m, -1);
  std::vector<bool> fed(n, false);  // the phone token took frames from a phone
  std::int64_t pending = 0;         // unpaired phones' frames for the next token
  std::int64_t last = -1;           // the last token that took frames
  std::int64_t matched_units = 0, phone_units = 0;
  auto give = [&](std::int64_t token, std::int64_t frames, std::size_t interval) {
    out.durations[token] += frames + pending;
    pending = 0;
    if (out.interval_of_token[token] < 0)
      out.interval_of_token[token] = static_cast<std::int64_t>(interval);
    last = token;
  };
  for (const auto& mv : moves) {
    switch (mv.step) {
      case Step::pair: {
        const auto token = static_cast<std::int64_t>(token_at[mv.j]);
        give(token, interval_frames[phone_at[mv.i]], phone_at[mv.i]);
        fed[mv.j] = true;
        token_of_phone[mv.i] = token;
        ++phone_units;
        const double d = distance(mv.i, mv.j);
        if (d == 0.0) ++out.exact_pairs;
        if (d < options.good_pair) ++matched_units;
        if (d > 0.0 && d < options.good_pair) ++out.similar_pairs;
        break;
      }
      case Step::noise_word: {
        const std::int64_t frames = interval_frames[phone_at[mv.i]];
        const auto count = static_cast<std::int64_t>(mv.j_end - mv.j);
        for (std::size_t k = mv.j; k < mv.j_end; ++k) {
          const auto share =
              frames / count + (static_cast<std::int64_t>(k - mv.j) < frames % count);
          give(static_cast<std::int64_t>(token_at[k]), share, phone_at[mv.i]);
          fed[k] = true;
        }
        token_of_phone[mv.i] = static_cast<std::int64_t>(token_at[mv.j]);
        phone_units += count;
        matched_units += count;
        out.spoken_noise_tokens += count;
        break;
      }
      case Step::skip_phone: {
        ++out.unpaired_phones;
        ++phone_units;
        const std::int64_t frames = interval_frames[phone_at[mv.i]];
        // Forward when nothing came before, and within a word that began
        // with unpaired phones (their frames are already waiting).
        const bool forward =
            last < 0 || pending > 0 || (words != nullptr && phone_starts_word[mv.i]);
        if (forward) {
          pending += frames;
        } else {
          out.durations[last] += frames;
        }
        token_of_phone[mv.i] = forward ? -1 : last;
        break;
      }
      case Step::skip_token:
        ++out.unpaired_tokens;
        break;
      case Step::none:
        break;
    }
  }
  if (pending > 0) {  // unpaired phones with no token after them
    out.durations[last >= 0 ? static_cast<std::size_t>(last)
                            : (token_at.empty() ? 0 : token_at.front())] += pending;
    pending = 0;
  }

  // Unpaired phone tokens share the frames of the fed token before them,
  // or after them where the run begins a word (and at the start).
  for (std::size_t j = 0; j < n;) {
    if (fed[j]) {
      ++j;
      continue;
    }
    std::size_t end = j;
    while (end < n && !fed[end]) ++end;
    std::int64_t donor = -1;
    const bool forward_first =
        words != nullptr && token_starts_word[j] && end < n && !token_starts_word[end];
    if (j > 0 && !forward_first) {
      donor = static_cast<std::int64_t>(j - 1);
    } else if (end < n) {
      donor = static_cast<std::int64_t>(end);
    }
    if (donor >= 0) {
      const std::size_t d = static_cast<std::size_t>(donor);
      const std::int64_t pool = out.durations[token_at[d]];
      const auto members = static_cast<std::int64_t>(end - j + 1);
      std::int64_t k = 0;
      auto share = [&] { return pool / members + (k++ < pool % members); };
      out.durations[token_at[d]] = share();
      for (std::size_t t = j; t < end; ++t) out.durations[token_at[t]] = share();
    }
    j = end;
  }

  // Silences: to the first pause token between the tokens of the phones
  // around them, else to the token before (the first token at the start).
  std::size_t phone_index = 0;  // phone intervals seen so far
  for (std::size_t i = 0; i < tier.intervals.size(); ++i) {
    if (kind_of(tier.intervals[i].label) != LabelKind::silence) {
      ++phone_index;
      continue;
    }
    const std::int64_t frames = interval_frames[i];
    std::int64_t before = -1;
    for (std::size_t k = phone_index; k-- > 0;) {
      if (token_of_phone[k] >= 0) {
        before = token_of_phone[k];
        break;
      }
    }
    auto after = static_cast<std::int64_t>(tokens.size());
    for (std::size_t k = phone_index; k < m; ++k) {
      if (token_of_phone[k] >= 0) {
        after = token_of_phone[k];
        break;
      }
    }
    std::int64_t target = -1;
    for (std::int64_t t = before + 1; t < after; ++t) {
      if (is_break(tokens[static_cast<std::size_t>(t)])) {
        target = t;
        break;
      }
    }
    if (target < 0) target = before >= 0 ? before : 0;
    out.durations[static_cast<std::size_t>(target)] += frames;
    if (out.interval_of_token[static_cast<std::size_t>(target)] < 0)
      out.interval_of_token[static_cast<std::size_t>(target)] = static_cast<std::int64_t>(i);
  }

  const auto units = std::max<std::int64_t>(phone_units, static_cast<std::int64_t>(n));
  out.match_score = units > 0 ? static_cast<double>(matched_units) / units : 1.0;
  out.ok = true;
  return out;
}

}  // namespace kokoro::tts
