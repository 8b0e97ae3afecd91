// How closely one alignment's boundaries follow another's (kokoro-align
// --compare; the learned alignment against MFA's or the demo corpus's own
// grids). The intervals of a tier that are not silence are read as the words
// of their labels (an interval labelled "of the" holds two: espeak-ng speaks
// some words as one, MFA never does); the two sides' words are paired in
// order by the longest common subsequence of their labels (case aside), so a
// word one side spells otherwise leaves only itself out. A paired word's
// start is a boundary both sides mark when it starts an interval on both
// sides, its end when it ends one on both; each such boundary is within the
// tolerance or not. A boundary inside one side's interval ("of|the") is not
// marked there, so it is not counted.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kokoro/tts/align/textgrid.hpp"

namespace kokoro::tts::align {

struct BoundaryAgreement {
  std::int64_t intervals = 0;  ///< words of the reference's non-silent intervals
  std::int64_t paired = 0;     ///< of them, paired with one of ours by label
  std::int64_t boundaries = 0;  ///< boundaries of paired words that both sides mark
  std::int64_t within = 0;      ///< within the tolerance
  double absolute_error_sum = 0.0;  ///< seconds, over the boundaries

  double share_within() const {
    return boundaries > 0 ? static_cast<double>(within) / static_cast<double>(boundaries) : 0.0;
  }
  double mean_absolute_error() const {
    return boundaries > 0 ? absolute_error_sum / static_cast<double>(boundaries) : 0.0;
  }
  BoundaryAgreement& operator+=(const BoundaryAgreement& o) {
    intervals += o.intervals;
    paired += o.paired;
    boundaries += o.boundaries;
    within += o.within;
    absolute_error_sum += o.absolute_error_sum;
    return *this;
  }
};

namespace detail::boundaries {

/// A word of an interval's label: where it sits in the interval.
struct Word {
  std::string text;  ///< lower case
  const Interval* interval = nullptr;
  bool first = false, last = false;  ///< the interval's first / last word
};

/// The words of the tier's non-silent intervals, in order.
inline std::vector<Word> words_of(const Tier& tier) {
  std::vector<Word> out;
  for (const auto& iv : tier.intervals) {
    if (label_kind(iv.label) == LabelKind::silence) continue;
    const auto begin = out.size();
    std::string word;
    auto flush = [&] {
      if (!word.empty()) out.push_back({.text = word, .interval = &iv});
      word.clear();
    };
    for (const char c : iv.label) {
      if (c == ' ' || c == '\t') {
        flush();
      } else {
        word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
    }
    flush();
    if (out.size() > begin) {
      out[begin].first = true;
      out.back().last = true;
    }
  }
  return out;
}

}  // namespace detail::boundaries

/// `ours` against `reference` (the same tier of two grids of one clip).
/// `intervals` and `paired` count the reference's words.
inline BoundaryAgreement boundary_agreement(const Tier& ours, const Tier& reference,
                                            double tolerance_seconds) {
  using namespace detail::boundaries;
  const auto a = words_of(ours), b = words_of(reference);
  const auto n = a.size(), m = b.size();
  std::vector<std::vector<std::int32_t>> lcs(n + 1, std::vector<std::int32_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      lcs[i][j] =
          a[i].text == b[j].text ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  BoundaryAgreement r;
  r.intervals = static_cast<std::int64_t>(m);
  auto count = [&](double x, double y) {
    const double e = std::abs(x - y);
    ++r.boundaries;
    r.absolute_error_sum += e;
    if (e <= tolerance_seconds + 1e-9) ++r.within;
  };
  for (std::size_t i = 0, j = 0; i < n && j < m;) {
    if (a[i].text == b[j].text) {
      ++r.paired;
      if (a[i].first && b[j].first) count(a[i].interval->start, b[j].interval->start);
      if (a[i].last && b[j].last) count(a[i].interval->end, b[j].interval->end);
      ++i;
      ++j;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      ++i;
    } else {
      ++j;
    }
  }
  return r;
}

}  // namespace kokoro::tts::align
