// How closely one alignment's boundaries follow another's (kokoro-align
// --compare; the learned alignment against MFA's or the demo corpus's own
// grids): the intervals of a tier that are not silence are paired by label
// in order (the longest common subsequence of their labels, so a word one
// side splits or spells otherwise leaves only itself out), and each pair's
// start and end count as two boundaries, within the tolerance or not.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kokoro/tts/align/textgrid.hpp"

namespace kokoro::tts::align {

struct BoundaryAgreement {
  std::int64_t intervals = 0;  ///< non-silent intervals of the reference
  std::int64_t paired = 0;     ///< of them, paired with one of ours by label
  std::int64_t boundaries = 0;  ///< 2 per pair
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

inline std::string folded(const std::string& label) {
  std::string out;
  for (const char c : label) {
    if (c == ' ' || c == '\t') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

inline std::vector<const Interval*> spoken(const Tier& tier) {
  std::vector<const Interval*> out;
  for (const auto& iv : tier.intervals) {
    if (label_kind(iv.label) != LabelKind::silence) out.push_back(&iv);
  }
  return out;
}

}  // namespace detail::boundaries

/// `ours` against `reference` (the same tier of two grids of one clip).
inline BoundaryAgreement boundary_agreement(const Tier& ours, const Tier& reference,
                                            double tolerance_seconds) {
  using namespace detail::boundaries;
  const auto a = spoken(ours), b = spoken(reference);
  const auto n = a.size(), m = b.size();
  // Longest common subsequence of the labels (case and spaces aside).
  std::vector<std::vector<std::int32_t>> lcs(n + 1, std::vector<std::int32_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      lcs[i][j] = folded(a[i]->label) == folded(b[j]->label)
                      ? lcs[i + 1][j + 1] + 1
                      : std::max(lcs[i + 1][j], lcs[i][j + 1]);
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
    if (folded(a[i]->label) == folded(b[j]->label)) {
      ++r.paired;
      count(a[i]->start, b[j]->start);
      count(a[i]->end, b[j]->end);
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
