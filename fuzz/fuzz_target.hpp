// One fuzz target: a function that feeds arbitrary bytes to one of kokoro's
// readers of outside input. A reader may refuse the input with kokoro::Error
// (the project's clear error); anything else that escapes (another exception
// type, a crash, a sanitizer report, a hang, an allocation past the fuzzer's
// limit) is a finding.
//
//   KOKORO_FUZZ_TARGET(textgrid) { ...use data, size...; return 0; }
//
// Built with KOKORO_FUZZ_LIBFUZZER (clang, -fsanitize=fuzzer, by scripts/fuzz)
// the macro defines libFuzzer's entry point, one target per program. In the
// ordinary build every target registers itself by name in one replay
// program (replay_main.cpp), which the test suite runs over each target's
// seeds and the inputs that once failed (fuzz/regressions/<target>/), so
// every finding stays fixed without clang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::fuzz {

using TargetFunction = int (*)(const std::uint8_t*, std::size_t);

/// Every target linked into this program, by name (the replay build).
inline std::map<std::string, TargetFunction>& targets() {
  static std::map<std::string, TargetFunction> all;
  return all;
}

inline bool register_target(const char* name, TargetFunction function) {
  targets().emplace(name, function);
  return true;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The input cut at its first NUL byte: what comes before (a file's text),
/// and what comes after (further inputs: overrides, a second file).
inline std::pair<std::string_view, std::string_view> split_at_nul(std::string_view input) {
  const auto nul = input.find('\0');
  if (nul == std::string_view::npos) return {input, {}};
  return {input.substr(0, nul), input.substr(nul + 1)};
}

/// The lines of `text` ('\n' apart; a final empty line dropped).
inline std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto end = text.find('\n');
    out.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}

/// A folder of this process's own under the fastest temporary storage
/// (/dev/shm where there is one), for readers that take a path.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? "/dev/shm"
                                           : std::filesystem::temp_directory_path();
    auto d = base / ("kokoro-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes `bytes` to `name` in scratch() and returns its path.
inline std::filesystem::path write_file(const std::string& name, std::string_view bytes) {
  const auto path = scratch() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace kokoro::fuzz

#define KOKORO_FUZZ_FUNCTION(name) kokoro_fuzz_target_##name

#ifdef KOKORO_FUZZ_LIBFUZZER
#define KOKORO_FUZZ_ENTRY(name)                                                       \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return KOKORO_FUZZ_FUNCTION(name)(data, size);                                    \
  }
#else
#define KOKORO_FUZZ_ENTRY(name)                                      \
  [[maybe_unused]] static const bool kokoro_fuzz_registered_##name = \
      ::kokoro::fuzz::register_target(#name, &KOKORO_FUZZ_FUNCTION(name));
#endif

/// Defines the target `name`; the body that follows sees `data` and `size`.
#define KOKORO_FUZZ_TARGET(name)                                                     \
  static int KOKORO_FUZZ_FUNCTION(name)(const std::uint8_t* data, std::size_t size); \
  KOKORO_FUZZ_ENTRY(name)                                                            \
  static int KOKORO_FUZZ_FUNCTION(name)(const std::uint8_t* data, std::size_t size)
