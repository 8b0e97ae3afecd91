// Latin text in plain ASCII, for front ends that read nothing else (flite's
// CMU lexicon and its letter-to-sound rules drop every other byte, so that
// "Müller" came out as "M L ER0"): "Müller" -> "Muller", "célèbre" ->
// "celebre", "Straße" -> "Strasse", "Æsir" -> "AEsir", typographic quotes and
// dashes to their ASCII forms. ICU's Latin-ASCII transliterator does the work;
// text in other scripts passes through unchanged.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include <unicode/translit.h>
#include <unicode/unistr.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// `text` (UTF-8) with its Latin letters and punctuation in ASCII. Throws
/// kokoro::Error when ICU cannot make the transliterator (its data missing).
inline std::string ascii_folded(std::string_view text) {
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(text);
  }
  // One per thread: transliterate() is const, but ICU documents no
  // guarantee for sharing an instance across threads.
  thread_local std::unique_ptr<icu::Transliterator> fold;
  if (!fold) {
    UErrorCode status = U_ZERO_ERROR;
    fold.reset(icu::Transliterator::createInstance("Latin-ASCII", UTRANS_FORWARD, status));
    if (U_FAILURE(status) || !fold) {
      fold.reset();
      throw Error(fmt::format("ICU's Latin-ASCII transliterator is not available ({})",
                              u_errorName(status)));
    }
  }
  auto unicode = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<std::int32_t>(text.size())));
  fold->transliterate(unicode);
  std::string out;
  unicode.toUTF8String(out);
  return out;
}

}  // namespace kokoro::tts
