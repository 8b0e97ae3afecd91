// Praat TextGrids as the Montreal Forced Aligner writes them: reading both text
// formats (long "key = value" and short values-only, UTF-8 or UTF-16), writing
// the long one, finding the aligner's tiers, classifying its labels, and
// turning a tier into per-interval frame counts (phone_projection.hpp gives
// them to the model's tokens: the duration predictor's targets).
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// One labelled stretch of time, in seconds.
struct Interval {
  double start = 0, end = 0;
  std::string label;
};

/// An interval tier ("words", "phones"). Point tiers are not kept.
struct Tier {
  std::string name;
  std::vector<Interval> intervals;
};

struct TextGrid {
  double xmin = 0, xmax = 0;
  std::vector<Tier> tiers;

  /// The first tier called `name`, or nullptr.
  const Tier* tier(std::string_view name) const {
    for (const Tier& t : tiers) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }

  /// The aligner's tier of `kind` ("phones", "words"): one called so, else
  /// the first whose name ends in it after a speaker's name, as multi-speaker
  /// MFA runs write them ("LJ - phones", "LJ-phones", "LJ_phones"), in any
  /// case. nullptr when there is none.
  const Tier* aligner_tier(std::string_view kind) const {
    if (const Tier* exact = tier(kind)) return exact;
    const auto lower = [](std::string_view text) {
      std::string out;
      for (const char c : text)
        out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      return out;
    };
    const std::string wanted = lower(kind);
    for (const Tier& t : tiers) {
      std::string name = lower(t.name);
      while (!name.empty() && name.back() == ' ') name.pop_back();
      if (name == wanted) return &t;
      if (name.size() > wanted.size() && name.ends_with(wanted)) {
        const char before = name[name.size() - wanted.size() - 1];
        if (before == ' ' || before == '-' || before == '_') return &t;
      }
    }
    return nullptr;
  }
};

namespace detail::textgrid {

enum class TokenKind { kNumber, kString, kFlag, kBadValue, kEnd };

/// A value of the file. Both formats hold the same values in the same order;
/// the long one adds a key before each, kept here so it can be checked.
struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;  ///< the number as written, the unquoted string, the flag
  std::string key;   ///< the text before the value on its line, "=" removed; "" in short files
  int line = 0;
};

inline std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return std::string(s.substr(first, last - first + 1));
}

/// Splits the text into values. Everything else is key text: words, "=",
/// ":", bracketed indices ("item [3]:"), and "!" comments, which Praat allows.
inline std::vector<Token> tokenize(std::string_view s, const std::string& source) {
  if (s.starts_with("ooBinaryFile")) {
    throw Error(fmt::format(
        "{}:1: expected a text TextGrid, found a binary one (save it as a text file in Praat)",
        source));
  }
  std::vector<Token> tokens;
  int line = 1;
  std::size_t key_start = 0;  // where the key text of the next value begins
  bool after_equals = false;  // a value must follow on this line
  auto push = [&](TokenKind kind, std::string text, std::size_t value_start, int at_line) {
    std::string key = trim(s.substr(key_start, value_start - key_start));
    if (!key.empty() && key.back() == '=') {
      key = trim(std::string_view(key).substr(0, key.size() - 1));
    }
    tokens.push_back(Token{kind, std::move(text), std::move(key), at_line});
    after_equals = false;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const bool digit_next =
        i + 1 < s.size() && (std::isdigit(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '.');
    if (c == '\n') {
      if (after_equals) push(TokenKind::kBadValue, "", i, line);
      ++line;
      key_start = ++i;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
    } else if (c == '"') {
      const int start_line = line;
      std::string text;
      std::size_t j = i + 1;
      for (;; ++j) {
        if (j >= s.size()) {
          throw Error(fmt::format("{}:{}: expected a closing '\"' for the string opened here",
                                  source, start_line));
        }
        if (s[j] == '"') {
          if (j + 1 < s.size() && s[j + 1] == '"') {
            text += '"';  // "" inside a string is one quote
            ++j;
            continue;
          }
          break;
        }
        if (s[j] == '\n') ++line;
        text += s[j];
      }
      push(TokenKind::kString, std::move(text), i, start_line);
      key_start = i = j + 1;
    } else if (c == '<') {
      const std::size_t close = s.find('>', i);
      const std::size_t eol = s.find('\n', i);
      if (close == std::string_view::npos || close > eol) {
        throw Error(fmt::format("{}:{}: expected a flag such as <exists>, found an unclosed '<'",
                                source, line));
      }
      push(TokenKind::kFlag, std::string(s.substr(i, close + 1 - i)), i, line);
      key_start = i = close + 1;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               ((c == '-' || c == '+' || c == '.') && digit_next)) {
      std::size_t j = i;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.' ||
                              s[j] == 'e' || s[j] == 'E' || s[j] == '-' || s[j] == '+')) {
        ++j;
      }
      push(TokenKind::kNumber, std::string(s.substr(i, j - i)), i, line);
      key_start = i = j;
    } else if (c == '[') {
      const std::size_t close = s.find(']', i);
      i = close == std::string_view::npos ? s.size() : close + 1;
    } else if (c == '!') {
      const std::size_t eol = s.find('\n', i);
      i = eol == std::string_view::npos ? s.size() : eol;
    } else if (after_equals) {
      // "xmin = abc": a value was due and this is none.
      std::size_t j = i;
      while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '\n') ++j;
      push(TokenKind::kBadValue, std::string(s.substr(i, j - i)), i, line);
      key_start = i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c))) {
      // A key word; digits inside it ("x1") are no values.
      while (i < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' || s[i] == '?')) {
        ++i;
      }
    } else {
      if (c == '=') after_equals = true;
      ++i;
    }
  }
  if (after_equals) push(TokenKind::kBadValue, "", s.size(), line);
  // The end belongs to the last line, not to the empty one after its newline.
  const int last_line = (line > 1 && s.ends_with('\n')) ? line - 1 : line;
  tokens.push_back(Token{TokenKind::kEnd, "", "", last_line});
  return tokens;
}

/// Reads the values in the order Praat writes them, checking each long-format
/// key, and reports the first surprise with its line.
class Parser {
 public:
  Parser(std::string_view text, const std::string& source)
      : tokens_(tokenize(text, source)), source_(source) {}

  TextGrid parse() {
    const std::string file_type = read_string("type", [] { return "File type = \"ooTextFile\""; });
    if (file_type != "ooTextFile" && file_type != "ooTextFile short") {
      fail(previous(), "File type = \"ooTextFile\"");
    }
    if (read_string("class", [] { return "Object class = \"TextGrid\""; }) != "TextGrid") {
      fail(previous(), "Object class = \"TextGrid\"");
    }
    TextGrid grid;
    grid.xmin = read_number("xmin", [] { return "the TextGrid's xmin (a number)"; });
    grid.xmax = read_number("xmax", [] { return "the TextGrid's xmax (a number)"; });
    const Token& exists = next();
    if (exists.kind != TokenKind::kFlag ||
        (exists.text != "<exists>" && exists.text != "<absent>") || !key_is(exists, "tiers?")) {
      fail(exists, "tiers? <exists> or <absent>");
    }
    const std::int64_t n_tiers =
        exists.text == "<absent>" ? 0 : read_count("size", [] { return "the number of tiers"; });
    for (std::int64_t t = 1; t <= n_tiers; ++t) read_tier(grid, t);
    const Token& end = next();
    if (end.kind != TokenKind::kEnd) {
      fail(end, fmt::format("the end of the file after {} tiers (as its size says)", n_tiers));
    }
    return grid;
  }

 private:
  void read_tier(TextGrid& grid, std::int64_t t) {
    const std::string cls =
        read_string("class", [&] { return fmt::format("the class of tier {}", t); });
    const Token& class_token = previous();
    Tier tier;
    tier.name = read_string("name", [&] { return fmt::format("the name of tier {}", t); });
    auto where = [&] { return fmt::format("tier {} \"{}\"", t, tier.name); };
    read_number("xmin", [&] { return fmt::format("the xmin of {} (a number)", where()); });
    read_number("xmax", [&] { return fmt::format("the xmax of {} (a number)", where()); });
    if (cls == "IntervalTier") {
      const std::int64_t n =
          read_count("size", [&] { return "the number of intervals of " + where(); });
      tier.intervals.reserve(static_cast<std::size_t>(std::min<std::int64_t>(n, 1 << 16)));
      for (std::int64_t k = 1; k <= n; ++k) {
        auto field = [&](const char* what) {
          return fmt::format("the {} of interval [{}] of {}", what, k, where());
        };
        Interval interval;
        interval.start = read_number("xmin", [&] { return field("xmin") + " (a number)"; });
        interval.end = read_number("xmax", [&] { return field("xmax") + " (a number)"; });
        if (interval.end < interval.start) {
          fail(previous(),
               fmt::format("{} to be at least its xmin {}", field("xmax"), interval.start));
        }
        interval.label = read_string("text", [&] { return field("text") + " (a quoted string)"; });
        tier.intervals.push_back(std::move(interval));
      }
      grid.tiers.push_back(std::move(tier));
    } else if (cls == "TextTier") {
      // Point tiers carry events, not durations: read past them.
      const std::int64_t n =
          read_count("size", [&] { return "the number of points of " + where(); });
      for (std::int64_t k = 1; k <= n; ++k) {
        read_number("", [&] { return fmt::format("the time of point [{}] of {}", k, where()); });
        read_string("mark",
                    [&] { return fmt::format("the mark of point [{}] of {}", k, where()); });
      }
    } else {
      fail(class_token,
           fmt::format("the class of tier {} to be \"IntervalTier\" or \"TextTier\"", t));
    }
  }

  const Token& previous() const { return tokens_[pos_ - 1]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (t.kind != TokenKind::kEnd) ++pos_;
    return t;
  }

  /// A long-format key names its value last ("intervals: size = 3"); short
  /// files have no keys, and an empty `expected` accepts any key.
  static bool key_is(const Token& t, std::string_view expected) {
    if (t.key.empty() || expected.empty()) return true;
    const auto space = t.key.find_last_of(" \t");
    const std::string_view last =
        std::string_view(t.key).substr(space == std::string::npos ? 0 : space + 1);
    return last == expected;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kNumber:
        return "the number " + t.text;
      case TokenKind::kString:
        return fmt::format("the string \"{}\"", t.text);
      case TokenKind::kFlag:
        return "the flag " + t.text;
      case TokenKind::kBadValue:
        return t.text.empty() ? "nothing after '='" : fmt::format("'{}'", t.text);
      case TokenKind::kEnd:
        return "the end of the file";
    }
    return "?";
  }

  [[noreturn]] void fail(const Token& t, std::string_view expected) const {
    throw Error(
        fmt::format("{}:{}: expected {}, found {}", source_, t.line, expected, describe(t)));
  }

  /// The next token, which must be of `kind` under `key`.
  template <class Describe>
  const Token& expect(TokenKind kind, std::string_view key, Describe&& what) {
    const Token& t = next();
    if (t.kind != kind) fail(t, what());
    if (!key_is(t, key)) {
      throw Error(
          fmt::format("{}:{}: expected {}, found the key '{}'", source_, t.line, what(), t.key));
    }
    return t;
  }

  template <class Describe>
  std::string read_string(std::string_view key, Describe&& what) {
    return expect(TokenKind::kString, key, what).text;
  }

  template <class Describe>
  double read_number(std::string_view key, Describe&& what) {
    const Token& t = expect(TokenKind::kNumber, key, what);
    double value = 0;
    const char* first = t.text.data() + (t.text[0] == '+' ? 1 : 0);
    const char* last = t.text.data() + t.text.size();
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last || !std::isfinite(value)) fail(t, what());
    return value;
  }

  template <class Describe>
  std::int64_t read_count(std::string_view key, Describe&& what) {
    const Token& t = expect(TokenKind::kNumber, key, what);
    std::int64_t value = 0;
    const char* last = t.text.data() + t.text.size();
    const auto [end, ec] = std::from_chars(t.text.data(), last, value);
    if (ec != std::errc() || end != last || value < 0) {
      fail(t, fmt::format("{} (a count: a whole number, 0 or more)", what()));
    }
    return value;
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  const std::string& source_;
};

inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// The file's text as UTF-8. Praat writes UTF-16 with a byte-order mark when a
/// label is not ASCII; a file without a mark whose first or second byte is 0
/// is taken for UTF-16 too, since a TextGrid starts with the ASCII "File type".
inline std::string to_utf8(std::string_view bytes, const std::string& source) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  if (bytes.size() >= 3 && byte(0) == 0xEF && byte(1) == 0xBB && byte(2) == 0xBF) {
    return std::string(bytes.substr(3));
  }
  bool big_endian = false;
  std::size_t i = 0;
  if (bytes.size() >= 2 && byte(0) == 0xFE && byte(1) == 0xFF) {
    big_endian = true;
    i = 2;
  } else if (bytes.size() >= 2 && byte(0) == 0xFF && byte(1) == 0xFE) {
    i = 2;
  } else if (bytes.size() >= 2 && (byte(0) == 0) != (byte(1) == 0)) {
    big_endian = byte(0) == 0;
  } else {
    return std::string(bytes);
  }
  std::string out;
  out.reserve(bytes.size() / 2);
  int line = 1;
  auto unit = [&](std::size_t k) -> char32_t {
    if (k + 1 >= bytes.size()) {
      throw Error(fmt::format("{}:{}: expected another UTF-16 byte, found the end of the file",
                              source, line));
    }
    return big_endian ? (byte(k) << 8 | byte(k + 1)) : (byte(k + 1) << 8 | byte(k));
  };
  for (; i < bytes.size(); i += 2) {
    char32_t cp = unit(i);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      const char32_t low = i + 2 < bytes.size() ? unit(i + 2) : 0;
      if (low < 0xDC00 || low > 0xDFFF) {
        throw Error(fmt::format("{}:{}: expected a UTF-16 low surrogate after {:#06x}", source,
                                line, static_cast<std::uint32_t>(cp)));
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      i += 2;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      throw Error(fmt::format("{}:{}: expected a UTF-16 character, found a lone low surrogate",
                              source, line));
    }
    if (cp == '\n') ++line;
    append_utf8(out, cp);
  }
  return out;
}

inline std::string praat_quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + '"';
}

/// numpy.round: halves go to the even neighbour, whatever the FPU mode.
inline double round_half_even(double x) {
  const double floor = std::floor(x);
  const double fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return std::fmod(floor, 2.0) == 0 ? floor : floor + 1;
}

}  // namespace detail::textgrid

/// Parses a TextGrid in Praat's long ("key = value") or short (values only)
/// text format; `source` names it in errors. Strings may contain doubled quotes
/// ("" is one ") and newlines. Interval tiers are kept in file order; point
/// tiers (TextTier) are read and dropped. Throws kokoro::Error with a message
/// "<source>:<line>: expected ..., found ..." at the first value that is
/// missing, malformed, out of place (a long-format key that does not match), an
/// interval ending before it starts, or anything after the last tier.
inline TextGrid parse_textgrid(std::string_view text, const std::string& source) {
  return detail::textgrid::Parser(text, source).parse();
}

/// Reads and parses a TextGrid file: UTF-8 (with or without a byte-order mark)
/// or UTF-16 of either byte order (Praat marks it with a byte-order mark).
inline TextGrid read_textgrid(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw Error(fmt::format("{}: read failed", path.string()));
  return parse_textgrid(detail::textgrid::to_utf8(bytes, path.string()), path.string());
}

/// The grid in Praat's long text format, laid out as Praat and MFA write it
/// (trailing space after each value included). Each tier spans the grid's
/// xmin..xmax. Times use the shortest text that reads back to the same double.
inline std::string format_textgrid(const TextGrid& grid) {
  using detail::textgrid::praat_quoted;
  std::string out = "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\n";
  fmt::format_to(std::back_inserter(out), "xmin = {} \nxmax = {} \ntiers? <exists> \nsize = {} \n",
                 grid.xmin, grid.xmax, grid.tiers.size());
  out += "item []: \n";
  for (std::size_t t = 0; t < grid.tiers.size(); ++t) {
    const Tier& tier = grid.tiers[t];
    fmt::format_to(std::back_inserter(out),
                   "    item [{}]:\n        class = \"IntervalTier\" \n        name = {} \n"
                   "        xmin = {} \n        xmax = {} \n        intervals: size = {} \n",
                   t + 1, praat_quoted(tier.name), grid.xmin, grid.xmax, tier.intervals.size());
    for (std::size_t k = 0; k < tier.intervals.size(); ++k) {
      const Interval& iv = tier.intervals[k];
      fmt::format_to(std::back_inserter(out),
                     "        intervals [{}]:\n            xmin = {} \n            xmax = {} \n"
                     "            text = {} \n",
                     k + 1, iv.start, iv.end, praat_quoted(iv.label));
    }
  }
  return out;
}

/// Writes format_textgrid(grid) to `path` atomically (UTF-8, no byte-order mark).
inline void write_textgrid(const TextGrid& grid, const std::filesystem::path& path) {
  write_file_atomically(path, format_textgrid(grid));
}

/// What an aligner's phone label stands for.
enum class LabelKind {
  silence,       ///< "" (MFA 2.x+), sil and sp (MFA 1.x), <eps>, <sil>
  spoken_noise,  ///< spn (a whole out-of-dictionary word), <unk>
  phone,
};

/// The kind of `label`, compared without whitespace and in any case.
inline LabelKind label_kind(std::string_view label) {
  std::string lower;
  for (const char c : label) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (lower.empty() || lower == "sil" || lower == "sp" || lower == "<eps>" || lower == "<sil>")
    return LabelKind::silence;
  if (lower == "spn" || lower == "<unk>") return LabelKind::spoken_noise;
  return LabelKind::phone;
}

/// The mel frame a time falls on: round(seconds * sample_rate / hop_length),
/// computed in that order in double and rounding halves to even, as numpy does.
/// Throws kokoro::Error for a non-finite time, one over 2^53 frames, or a
/// non-positive rate or hop.
inline std::int64_t time_to_frame(double seconds, int sample_rate, int hop_length) {
  if (sample_rate <= 0 || hop_length <= 0) {
    throw Error(
        fmt::format("time_to_frame: sample_rate and hop_length must be positive, got {} and {}",
                    sample_rate, hop_length));
  }
  if (!std::isfinite(seconds))
    throw Error(fmt::format("time_to_frame: time {} is not finite", seconds));
  const double frame = detail::textgrid::round_half_even(seconds * sample_rate / hop_length);
  // Beyond 2^53 frames (millennia of audio) the conversion would lose frames,
  // and beyond int64 it is undefined (a time of 1e119 s was found by
  // fuzz/textgrid.cpp).
  if (std::abs(frame) > 9007199254740992.0) {
    throw Error(fmt::format("time_to_frame: time {} s is out of range", seconds));
  }
  return static_cast<std::int64_t>(frame);
}

/// `tier`, reaching `end` seconds: when it stops earlier on a phone (a grid a
/// little shorter than its audio, no trailing silence), a silence interval
/// fills the rest, so that the audio's extra frames go to silence and never
/// into the last phone. Otherwise the tier as it is.
inline Tier with_trailing_silence(Tier tier, double end) {
  if (!tier.intervals.empty() && tier.intervals.back().end < end &&
      label_kind(tier.intervals.back().label) != LabelKind::silence) {
    tier.intervals.push_back({.start = tier.intervals.back().end, .end = end, .label = ""});
  }
  return tier;
}

/// Frames per interval of `tier`, summing to exactly `n_frames`.
///
/// Boundaries are rounded, not lengths: duration_i = time_to_frame(end_i) -
/// time_to_frame(start_i), so rounding errors never accumulate (clamped at 0,
/// which only an interval ending before it starts could need). The mel's real
/// frame count may differ from the grid's by a frame or two (padding, the
/// grid's xmax); the difference is settled at the end, where MFA grids usually
/// have silence: a shortfall is added to the last interval, an excess is taken
/// from the last interval down to 0, then from the one before it, and so on.
/// No duration is ever negative. An empty tier gives an empty vector when
/// n_frames is 0 and throws kokoro::Error otherwise, as it does for a negative
/// n_frames.
inline std::vector<std::int64_t> frame_durations(const Tier& tier, int sample_rate, int hop_length,
                                                 std::int64_t n_frames) {
  if (n_frames < 0) {
    throw Error(fmt::format("frame_durations: n_frames must be 0 or more, got {}", n_frames));
  }
  if (tier.intervals.empty()) {
    if (n_frames == 0) return {};
    throw Error(fmt::format("frame_durations: tier \"{}\" has no intervals to hold {} frames",
                            tier.name, n_frames));
  }
  std::vector<std::int64_t> durations;
  durations.reserve(tier.intervals.size());
  std::int64_t total = 0;
  for (const Interval& iv : tier.intervals) {
    const std::int64_t d =
        std::max<std::int64_t>(0, time_to_frame(iv.end, sample_rate, hop_length) -
                                      time_to_frame(iv.start, sample_rate, hop_length));
    durations.push_back(d);
    total += d;
  }
  if (total < n_frames) {
    durations.back() += n_frames - total;
  } else {
    std::int64_t excess = total - n_frames;
    for (auto it = durations.rbegin(); it != durations.rend() && excess > 0; ++it) {
      const std::int64_t take = std::min(*it, excess);
      *it -= take;
      excess -= take;
    }
  }
  return durations;
}

}  // namespace kokoro::tts
