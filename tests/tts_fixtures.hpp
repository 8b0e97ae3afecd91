// A tiny demo corpus for the TTS tests: 8 clips of espeak-ng speech with
// their TextGrids, built once per test process (about a second).
#pragma once

#include "english_tts/demo_corpus.hpp"

#include <doctest/doctest.h>

#include <filesystem>

#include "test_tasks.hpp"

namespace kokoro::test {

inline const std::filesystem::path& tiny_demo_corpus() {
  static const std::filesystem::path root = [] {
    english_tts::DemoCorpusOptions options;
    options.out = scratch_dir("tts-tiny-corpus") / "demo";
    options.clips = 8;
    const auto report = english_tts::build_demo_corpus(options);
    REQUIRE(report.clips == 8);
    return report.root;
  }();
  return root;
}

}  // namespace kokoro::test
