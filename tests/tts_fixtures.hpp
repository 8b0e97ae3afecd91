// A tiny demo corpus for the TTS tests: 8 clips of espeak-ng speech with
// their TextGrids, built once per test process (about a second), and a tiny
// model's configuration to train on it.
#pragma once

#include "english_tts/demo_corpus.hpp"

#include <kokoro/tts/tts_config.hpp>

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

/// A tiny model on the tiny corpus, quick to train; validation on 2 clips,
/// no media, no quality evaluation (the tests that want them turn them on).
inline tts::TtsConfig tiny_tts_config(const std::filesystem::path& output) {
  tts::TtsConfig c(test::quick_framework_config());
  c.data.data_dir = test::tiny_demo_corpus().string();
  static const auto cache = test::scratch_dir("tts-trainer-cache");  // shared by the runs
  c.data.cache_dir = cache.string();
  c.data.validation_split = 0.25;
  c.data.num_workers = 1;
  c.model.hidden_dim = 32;
  c.model.encoder_layers = 1;
  c.model.decoder_layers = 1;
  c.model.num_heads = 2;
  c.model.ff_dim = 64;
  c.model.dropout = 0.1;
  c.training.batch_size = 3;
  c.training.learning_rate = 3e-3;
  c.training.grad_clip_norm = 1.0;
  c.logging.output_dir = output.string();
  c.logging.media_every_epochs = 0;
  c.evaluation.every_epochs = 0;  // tests/test_tts_eval.cpp tries it
  c.audio.max_frames = 1000;
  return c;
}

}  // namespace kokoro::test
