// TextGrids as users' aligners write them (long, short, UTF-8 or UTF-16):
// read, turned into frames as a corpus does, written and read back.
#include <cstdlib>

#include "fuzz_target.hpp"
#include "kokoro/tts/align/textgrid.hpp"

KOKORO_FUZZ_TARGET(textgrid) {
  namespace tts = kokoro::tts;
  try {
    const auto text = tts::detail::textgrid::to_utf8(kokoro::fuzz::as_text(data, size), "fuzz");
    const auto grid = tts::parse_textgrid(text, "fuzz.TextGrid");
    for (const auto& tier : grid.tiers) {
      try {
        const auto frames = tts::time_to_frame(grid.xmax, 22050, 256);
        tts::frame_durations(tier, 22050, 256, frames < 0 ? 0 : frames);
      } catch (const kokoro::Error&) {
      }
    }
    // What kokoro writes it reads back, tier for tier.
    const auto again = tts::parse_textgrid(tts::format_textgrid(grid), "fuzz.TextGrid written");
    if (again.tiers.size() != grid.tiers.size()) std::abort();
    for (std::size_t i = 0; i < grid.tiers.size(); ++i) {
      if (again.tiers[i].intervals.size() != grid.tiers[i].intervals.size()) std::abort();
    }
  } catch (const kokoro::Error&) {
  }
  return 0;
}
