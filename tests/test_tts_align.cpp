// The learned alignment's pieces (tts/align): monotonic alignment search
// against a plain dynamic program and against every path of small cases;
// durations that sum to the frames; the beta-binomial prior and the
// forward-sum loss against scipy and a CTC written out in numpy
// (tests/python/check_alignment.py); the binarization loss; the aligner
// learning, from mels and tokens alone, where each token's frames are; the
// alignment as an MFA-style TextGrid read back to the same frames; and the
// aligner inside a TTS run (data.durations learned and auto).
#include <doctest/doctest.h>

#include <kokoro/log/json.hpp>
#include <kokoro/trainer.hpp>
#include <kokoro/tts/align/aligner.hpp>
#include <kokoro/tts/align/alignment_health.hpp>
#include <kokoro/tts/align/alignment_losses.hpp>
#include <kokoro/tts/align/alignment_prior.hpp>
#include <kokoro/tts/align/alignment_textgrid.hpp>
#include <kokoro/tts/align/boundary_agreement.hpp>
#include <kokoro/tts/align/monotonic_alignment.hpp>
#include <kokoro/tts/english_tts_task.hpp>
#include <kokoro/tts/synthesizer.hpp>
#include <kokoro/util/errors.hpp>

#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "python_check.hpp"
#include "test_tasks.hpp"
#include "tts_fixtures.hpp"

using namespace kokoro;
using namespace kokoro::tts;
using namespace kokoro::tts::align;
namespace fs = std::filesystem;

namespace {

/// The best monotonic path's durations by the textbook recursion, written
/// plainly: best[t][i] = score[t][i] + max(best[t-1][i], best[t-1][i-1]),
/// then the path traced back, staying on a token where the two tie.
std::vector<std::int64_t> plain_search(const std::vector<std::vector<double>>& score) {
  const auto frames = static_cast<int>(score.size());
  const auto tokens = static_cast<int>(score[0].size());
  const double none = -std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(frames, std::vector<double>(tokens, none));
  best[0][0] = score[0][0];
  for (int t = 1; t < frames; ++t) {
    for (int i = 0; i < tokens; ++i) {
      if (i > t || tokens - i > frames - t) continue;  // unreachable, or the rest cannot fit
      const double came = std::max(best[t - 1][i], i > 0 ? best[t - 1][i - 1] : none);
      best[t][i] = came + score[t][i];
    }
  }
  std::vector<std::int64_t> durations(tokens, 0);
  int i = tokens - 1;
  for (int t = frames - 1; t >= 0; --t) {
    ++durations[i];
    if (t > 0 && i > 0 && (i == t || best[t - 1][i - 1] > best[t - 1][i])) --i;
  }
  return durations;
}

/// Every monotonic path of a small case (each token at least one frame):
/// the best total score.
double best_of_all_paths(const std::vector<std::vector<double>>& score) {
  const auto frames = static_cast<int>(score.size());
  const auto tokens = static_cast<int>(score[0].size());
  double best = -std::numeric_limits<double>::infinity();
  std::function<void(int, int, double)> walk = [&](int t, int i, double sum) {
    sum += score[t][i];
    if (t == frames - 1) {
      if (i == tokens - 1) best = std::max(best, sum);
      return;
    }
    walk(t + 1, i, sum);
    if (i + 1 < tokens) walk(t + 1, i + 1, sum);
  };
  walk(0, 0, 0.0);
  return best;
}

double path_score(const std::vector<std::vector<double>>& score,
                  const std::vector<std::int64_t>& durations) {
  double sum = 0.0;
  int t = 0;
  for (std::size_t i = 0; i < durations.size(); ++i) {
    for (std::int64_t k = 0; k < durations[i]; ++k) sum += score[t++][i];
  }
  return sum;
}

std::vector<std::vector<double>> random_scores(int frames, int tokens, std::mt19937& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<std::vector<double>> s(frames, std::vector<double>(tokens));
  for (auto& row : s) {
    for (auto& v : row) v = static_cast<double>(static_cast<float>(n(rng)));  // float-exact
  }
  return s;
}

torch::Tensor to_tensor(const std::vector<std::vector<double>>& s) {
  auto t = torch::empty({static_cast<std::int64_t>(s.size()), static_cast<std::int64_t>(s[0].size())});
  for (std::size_t f = 0; f < s.size(); ++f) {
    for (std::size_t i = 0; i < s[f].size(); ++i) {
      t[static_cast<std::int64_t>(f)][static_cast<std::int64_t>(i)] = s[f][i];
    }
  }
  return t;
}

std::vector<std::int64_t> row(const torch::Tensor& t, std::int64_t n) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < n; ++i) out.push_back(t[i].item<std::int64_t>());
  return out;
}

}  // namespace

TEST_CASE("monotonic alignment search finds the best path of every small case") {
  std::mt19937 rng(7);
  for (int frames = 1; frames <= 8; ++frames) {
    for (int tokens = 1; tokens <= std::min(frames, 5); ++tokens) {
      for (int trial = 0; trial < 3; ++trial) {
        const auto s = random_scores(frames, tokens, rng);
        const auto d = monotonic_alignment_search(to_tensor(s).unsqueeze(0),
                                                  torch::tensor({std::int64_t{tokens}}),
                                                  torch::tensor({std::int64_t{frames}}));
        const auto found = row(d[0], tokens);
        CAPTURE(frames);
        CAPTURE(tokens);
        std::int64_t total = 0;
        for (const auto v : found) {
          CHECK(v >= 1);
          total += v;
        }
        CHECK(total == frames);
        CHECK(path_score(s, found) == doctest::Approx(best_of_all_paths(s)).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("monotonic alignment search matches a plain dynamic program on a padded batch") {
  std::mt19937 rng(11);
  const std::vector<std::pair<int, int>> sizes = {{120, 37}, {64, 64}, {200, 1}, {90, 20}};
  const std::int64_t max_frames = 200, max_tokens = 64;
  auto batch = torch::full({4, max_frames, max_tokens}, 1e6f);  // padding that must be ignored
  std::vector<std::vector<std::vector<double>>> scores;
  std::vector<std::int64_t> token_lengths, frame_lengths;
  for (std::size_t b = 0; b < sizes.size(); ++b) {
    const auto [frames, tokens] = sizes[b];
    scores.push_back(random_scores(frames, tokens, rng));
    batch[static_cast<std::int64_t>(b)].narrow(0, 0, frames).narrow(1, 0, tokens).copy_(
        to_tensor(scores.back()));
    token_lengths.push_back(tokens);
    frame_lengths.push_back(frames);
  }
  const auto d = monotonic_alignment_search(batch, torch::tensor(token_lengths),
                                            torch::tensor(frame_lengths));
  REQUIRE(d.sizes() == torch::IntArrayRef({4, max_tokens}));
  for (std::size_t b = 0; b < sizes.size(); ++b) {
    CAPTURE(b);
    const auto found = row(d[static_cast<std::int64_t>(b)], max_tokens);
    const auto plain = plain_search(scores[b]);
    CHECK(std::vector<std::int64_t>(found.begin(), found.begin() + sizes[b].second) == plain);
    for (auto i = static_cast<std::size_t>(sizes[b].second); i < found.size(); ++i) {
      CHECK(found[i] == 0);
    }
    CHECK(d[static_cast<std::int64_t>(b)].sum().item<std::int64_t>() == sizes[b].first);
  }
  // The hard alignment has one token per frame, as many frames per token as its duration.
  const auto hard = hard_alignment(d, max_frames);
  CHECK(hard[0].narrow(0, 0, 120).sum(1).eq(1).all().item<bool>());
  CHECK(hard.sum(1).to(torch::kLong).equal(d));
}

TEST_CASE("monotonic alignment search: ties keep the token, and impossible clips are refused") {
  // Every path scores the same: the last token takes every frame it can.
  const auto flat = torch::zeros({1, 6, 3});
  const auto d = monotonic_alignment_search(flat, torch::tensor({std::int64_t{3}}),
                                            torch::tensor({std::int64_t{6}}));
  CHECK(row(d[0], 3) == std::vector<std::int64_t>{1, 1, 4});
  // A clear diagonal is followed exactly.
  auto diagonal = torch::full({1, 6, 3}, -10.0f);
  for (int t = 0; t < 6; ++t) diagonal[0][t][t / 2] = 0.0f;
  CHECK(row(monotonic_alignment_search(diagonal, torch::tensor({std::int64_t{3}}),
                                       torch::tensor({std::int64_t{6}}))[0],
            3) == std::vector<std::int64_t>{2, 2, 2});
  CHECK_THROWS_WITH_AS(monotonic_alignment_search(torch::zeros({1, 4, 5}),
                                                  torch::tensor({std::int64_t{5}}),
                                                  torch::tensor({std::int64_t{4}})),
                       doctest::Contains("4 frames for 5 tokens"), Error);
  CHECK_THROWS_AS(monotonic_alignment_search(torch::zeros({1, 4, 5}),
                                             torch::tensor({std::int64_t{6}}),
                                             torch::tensor({std::int64_t{4}})),
                  Error);
}

TEST_CASE("the beta-binomial prior is a distribution per frame that walks the diagonal, kept per length pair") {
  const auto p = beta_binomial_log_prior(10, 40);
  REQUIRE(p.sizes() == torch::IntArrayRef({40, 10}));
  CHECK(torch::allclose(p.exp().sum(1), torch::ones({40}), 1e-5, 1e-5));
  // The most likely token moves forward (never back) from the first to the last.
  const auto mode = p.argmax(1);
  CHECK(mode[0].item<std::int64_t>() == 0);
  CHECK(mode[39].item<std::int64_t>() == 9);
  CHECK((mode.slice(0, 1) - mode.slice(0, 0, 39)).ge(0).all().item<bool>());
  // A larger scaling is sharper.
  CHECK(beta_binomial_log_prior(10, 40, 4.0).exp().amax(1).mean().item<double>() >
        p.exp().amax(1).mean().item<double>());
  AlignmentPriorCache cache(1.0, /*max_bytes=*/3 * 40 * 10 * 4);
  const auto a = cache.get(10, 40);
  CHECK(a.data_ptr() == cache.get(10, 40).data_ptr());  // kept, not computed again
  cache.get(11, 40);
  cache.get(12, 40);
  CHECK(cache.size() == 2);  // the bound holds ~3 priors of 10 tokens; 11 and 12 need more
  CHECK(cache.get(12, 40).data_ptr() != nullptr);
  const auto padded = cache.batch({3, 5}, {7, 9}, 6, 10);
  CHECK(padded.sizes() == torch::IntArrayRef({2, 10, 6}));
  CHECK(torch::equal(padded[0].narrow(0, 0, 7).narrow(1, 0, 3), beta_binomial_log_prior(3, 7)));
  CHECK(padded[0].narrow(0, 7, 3).abs().sum().item<double>() == 0.0);
}

TEST_CASE("the alignment prior and the forward-sum loss agree with scipy and a plain CTC") {
  const std::string python = KOKORO_CROSSCHECK_PYTHON;
  if (python.empty() || !fs::exists(python)) {
    MESSAGE("kokoro-skip: no kokoro Python environment (scripts/setup makes it)");
    return;
  }
  Json cases = Json::object();
  Json priors = Json::array();
  for (const auto& [tokens, frames, scaling] :
       std::vector<std::tuple<std::int64_t, std::int64_t, double>>{
           {1, 5, 1.0}, {7, 30, 1.0}, {12, 12, 1.0}, {9, 50, 0.5}, {20, 160, 2.0}}) {
    const auto p = beta_binomial_log_prior(tokens, frames, scaling).to(torch::kDouble);
    Json rows = Json::array();
    for (std::int64_t t = 0; t < frames; ++t) {
      Json r = Json::array();
      for (std::int64_t k = 0; k < tokens; ++k) r.push_back(p[t][k].item<double>());
      rows.push_back(r);
    }
    priors.push_back({{"tokens", tokens}, {"frames", frames}, {"scaling", scaling}, {"log_prior", rows}});
  }
  cases["priors"] = priors;
  // A padded batch of random alignments, as the aligner would give them.
  torch::manual_seed(3);
  const std::vector<std::int64_t> tokens = {4, 7, 2}, frames = {9, 15, 2};
  auto logits = torch::randn({3, 15, 7}) * 2.0;
  const auto token_mask = torch::arange(7).unsqueeze(0) < torch::tensor(tokens).unsqueeze(1);
  const auto log_probs = torch::log_softmax(
      logits.masked_fill(token_mask.logical_not().unsqueeze(1), -INFINITY), 2);
  const auto loss = forward_sum_loss(log_probs, torch::tensor(tokens), torch::tensor(frames));
  Json lp = Json::array();
  for (int b = 0; b < 3; ++b) {
    Json rows = Json::array();
    for (std::int64_t t = 0; t < frames[b]; ++t) {
      Json r = Json::array();
      for (std::int64_t k = 0; k < tokens[b]; ++k) r.push_back(log_probs[b][t][k].item<double>());
      rows.push_back(r);
    }
    lp.push_back(rows);
  }
  cases["forward_sum"] = {{"log_probs", lp}, {"tokens", tokens}, {"frames", frames},
                          {"blank", -1.0}, {"loss", loss.item<double>()}};
  const auto dir = test::scratch_dir("tts-align-crosscheck");
  test::check_python_agrees(python, KOKORO_ALIGN_CROSSCHECK_SCRIPT, cases, dir);
  fs::remove_all(dir);
}

TEST_CASE("the forward-sum loss prefers an alignment that can be walked in order, and binarization is zero on a sharp one") {
  // 3 tokens over 6 frames: in order (two frames each) against reversed.
  auto in_order = torch::full({1, 6, 3}, std::log(0.01f));
  auto reversed = in_order.clone();
  for (int t = 0; t < 6; ++t) {
    in_order[0][t][t / 2] = std::log(0.98f);
    reversed[0][t][2 - t / 2] = std::log(0.98f);
  }
  const auto tokens = torch::tensor({std::int64_t{3}}), frames = torch::tensor({std::int64_t{6}});
  CHECK(forward_sum_loss(in_order, tokens, frames).item<double>() + 1.0 <
        forward_sum_loss(reversed, tokens, frames).item<double>());
  // Too few frames: no path, a zero loss rather than infinity.
  CHECK(forward_sum_loss(in_order.narrow(1, 0, 2), tokens, torch::tensor({std::int64_t{2}}))
            .item<double>() == 0.0);
  const auto d = monotonic_alignment_search(in_order, tokens, frames);
  const auto hard = hard_alignment(d, 6);
  CHECK(binarization_loss(hard, in_order).item<double>() == doctest::Approx(-std::log(0.98)));
  // Padding at -inf off the path gives no NaN.
  auto padded = torch::cat({in_order, torch::full({1, 6, 1}, -INFINITY)}, 2);
  const auto loss = binarization_loss(torch::cat({hard, torch::zeros({1, 6, 1})}, 2), padded);
  CHECK(std::isfinite(loss.item<double>()));
}

TEST_CASE("the aligner learns from mels and tokens alone where each token's frames are") {
  // A toy language: each token id has its own mel shape; a clip is a random
  // token sequence, each token held for a random 2..6 frames, plus noise.
  // After training on the forward-sum loss alone, the hard path's durations
  // must match the true ones.
  torch::manual_seed(5);
  std::mt19937 rng(5);
  const std::int64_t vocab = 12, n_mels = 16, batch = 8, max_tokens = 10;
  const auto sounds = torch::randn({vocab, n_mels}) * 2.0;
  struct ToyBatch {
    torch::Tensor ids, mels, token_lengths, frame_lengths, durations;
    std::vector<std::int64_t> tokens, frames;
  };
  auto make_batch = [&] {
    ToyBatch t;
    std::vector<torch::Tensor> ids, mels, truths;
    std::uniform_int_distribution<std::int64_t> id(1, vocab - 1), hold(2, 6), count(5, max_tokens);
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto n = count(rng);
      auto tokens = torch::empty({n}, torch::kLong);
      auto durations = torch::empty({n}, torch::kLong);
      std::int64_t previous = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        // A token differs from the one before: a boundary inside a run of
        // one sound could not be heard.
        auto next = id(rng);
        while (next == previous) next = id(rng);
        tokens[i] = previous = next;
        durations[i] = hold(rng);
      }
      auto mel = sounds.index_select(0, tokens).repeat_interleave(durations, 0);
      mel = mel + 0.3 * torch::randn(mel.sizes());
      t.tokens.push_back(n);
      t.frames.push_back(mel.size(0));
      ids.push_back(tokens);
      mels.push_back(mel);
      truths.push_back(durations);
    }
    const auto max_frames = *std::max_element(t.frames.begin(), t.frames.end());
    t.ids = torch::zeros({batch, max_tokens}, torch::kLong);
    t.mels = torch::zeros({batch, max_frames, n_mels});
    t.durations = torch::zeros({batch, max_tokens}, torch::kLong);
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto i = static_cast<std::size_t>(b);
      t.ids[b].narrow(0, 0, t.tokens[i]).copy_(ids[i]);
      t.mels[b].narrow(0, 0, t.frames[i]).copy_(mels[i]);
      t.durations[b].narrow(0, 0, t.tokens[i]).copy_(truths[i]);
    }
    t.token_lengths = torch::tensor(t.tokens);
    t.frame_lengths = torch::tensor(t.frames);
    return t;
  };
  Aligner aligner(AlignerOptions{.vocab_size = vocab, .n_mels = n_mels, .embedding_dim = 32,
                                 .channels = 16, .temperature = 0.05});
  AlignmentPriorCache priors;
  torch::optim::Adam optimizer(aligner->parameters(), torch::optim::AdamOptions(3e-3));
  auto run = [&](const ToyBatch& b) {
    const auto token_mask = torch::arange(max_tokens).unsqueeze(0) < b.token_lengths.unsqueeze(1);
    const auto mel_mask = torch::arange(b.mels.size(1)).unsqueeze(0) < b.frame_lengths.unsqueeze(1);
    return aligner->forward(b.ids, token_mask, b.mels, mel_mask,
                            priors.batch(b.tokens, b.frames, max_tokens, b.mels.size(1)));
  };
  auto share_exact = [&](const ToyBatch& b) {
    torch::NoGradGuard no_grad;
    const auto out = run(b);
    const auto d = monotonic_alignment_search(out.log_soft, b.token_lengths, b.frame_lengths);
    const auto mask = torch::arange(max_tokens).unsqueeze(0) < b.token_lengths.unsqueeze(1);
    return (d.eq(b.durations) & mask).sum().item<double>() / mask.sum().item<double>();
  };
  const auto held_out = make_batch();
  const double before = share_exact(held_out);
  double first_loss = 0.0, last_loss = 0.0;
  for (int step = 0; step < 150; ++step) {
    const auto b = make_batch();
    const auto out = run(b);
    const auto loss = forward_sum_loss(out.log_probs, b.token_lengths, b.frame_lengths);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step == 0) first_loss = loss.item<double>();
    last_loss = loss.item<double>();
  }
  const double after = share_exact(held_out);
  MESSAGE("toy aligner: forward-sum " << first_loss << " -> " << last_loss
                                      << ", exact durations " << before << " -> " << after);
  CHECK(last_loss < 0.75 * first_loss);  // measured: 1.31 -> 0.63
  CHECK(after > 0.9);
  CHECK(after > before + 0.3);
}

TEST_CASE("an aligner that normalises its mels aligns a clip alike at any gain, padded or not") {
  torch::manual_seed(11);
  const std::int64_t vocab = 9, n_mels = 12, tokens = 5, frames = 20;
  const auto ids = torch::randint(1, vocab, {1, tokens}, torch::kLong);
  const auto mels = torch::randn({1, frames, n_mels});
  const auto token_mask = torch::ones({1, tokens}, torch::kBool);
  const auto mel_mask = torch::ones({1, frames}, torch::kBool);
  auto soft = [&](Aligner& a, const torch::Tensor& m, const torch::Tensor& mask) {
    torch::NoGradGuard no_grad;
    return a->forward(ids, token_mask, m, mask).soft.narrow(1, 0, frames);
  };
  // A gain of 20 dB adds log(100) to every log-mel; a brighter microphone
  // adds more to some channels than to others.
  const auto louder = mels + std::log(100.0) + torch::linspace(0.0, 2.0, n_mels);
  // The same clip padded by 7 frames of something else.
  const auto padded = torch::cat({mels, torch::full({1, 7, n_mels}, 5.0)}, 1);
  const auto padded_mask = torch::arange(frames + 7).unsqueeze(0) < frames;

  Aligner normalising(AlignerOptions{.vocab_size = vocab,
                                     .n_mels = n_mels,
                                     .embedding_dim = 8,
                                     .channels = 8,
                                     .temperature = 0.5});
  const auto base = soft(normalising, mels, mel_mask);
  CHECK(torch::allclose(soft(normalising, louder, mel_mask), base, 1e-5, 1e-5));
  CHECK(torch::allclose(soft(normalising, padded, padded_mask), base, 1e-5, 1e-5));

  // The same weights reading the log-mels as they are: the gain moves it.
  Aligner raw(AlignerOptions{.vocab_size = vocab,
                             .n_mels = n_mels,
                             .embedding_dim = 8,
                             .channels = 8,
                             .temperature = 0.5,
                             .normalize_mels = false});
  torch::NoGradGuard no_grad;
  const auto source = normalising->named_parameters();
  for (auto& item : raw->named_parameters()) item.value().copy_(source[item.key()]);
  CHECK_FALSE(torch::allclose(soft(raw, louder, mel_mask), soft(raw, mels, mel_mask), 1e-3, 1e-3));
}

TEST_CASE(
    "a checkpoint saved before alignment.normalize_mels keeps its aligner reading raw log-mels") {
  using kokoro::tts::detail::synthesis::keep_old_aligner_input;
  auto config = kokoro::tts::small_config();
  REQUIRE(config.alignment.normalize_mels);
  keep_old_aligner_input(config, kokoro::to_yaml(config));
  CHECK(config.alignment.normalize_mels);  // saved with the option: as saved
  keep_old_aligner_input(config, "alignment:\n  temperature: 0.0005\n");
  CHECK_FALSE(config.alignment.normalize_mels);  // saved before it
}

TEST_CASE("a learned alignment becomes an MFA-style TextGrid that reads back to its frames") {
  // "the cat , sat ." with a long pause after the comma and a short word boundary.
  AlignedClip clip{.tokens = {"D", "@", " ", "k", "a", "t", ",", " ", "s", "a", "t", "."},
                   .durations = {3, 2, 1, 4, 5, 3, 2, 6, 3, 4, 2, 5},
                   .words = {"the", "cat", "sat"},
                   .silent = {},
                   .seconds = 0.0,
                   .sample_rate = 100,
                   .hop_length = 1};
  std::int64_t frames = 0;
  for (const auto d : clip.durations) frames += d;
  clip.seconds = static_cast<double>(frames) / 100.0;
  const AlignmentTextGridOptions options{
      .min_silence_frames = 3,
      .is_pause = &tts::EnglishPhonemeProcessor::is_pause_token,
      .is_word_boundary = [](std::string_view t) { return t == " "; }};
  const auto grid = alignment_textgrid(clip, options);
  const auto* words = grid.tier("words");
  const auto* phones = grid.tier("phones");
  REQUIRE(words != nullptr);
  REQUIRE(phones != nullptr);
  std::vector<std::string> word_labels, phone_labels;
  for (const auto& iv : words->intervals) word_labels.push_back(iv.label);
  for (const auto& iv : phones->intervals) phone_labels.push_back(iv.label);
  // The 1-frame boundary after "the" is no silence; ", " (8 frames) and "." (5, at the end) are.
  CHECK(word_labels == std::vector<std::string>{"the", "cat", "", "sat", ""});
  CHECK(phone_labels == std::vector<std::string>{"D", "@", "k", "a", "t", "", "s", "a", "t", ""});
  // Tiers cover the clip without gaps.
  for (const auto* tier : {words, phones}) {
    CHECK(tier->intervals.front().start == 0.0);
    CHECK(tier->intervals.back().end == doctest::Approx(clip.seconds));
    for (std::size_t i = 1; i < tier->intervals.size(); ++i) {
      CHECK(tier->intervals[i].start == doctest::Approx(tier->intervals[i - 1].end));
      CHECK(tier->intervals[i].end > tier->intervals[i].start);
    }
  }
  // The boundary's one frame goes to "k" (half of 1, rounded down, to "@"): "k" starts at 5.
  CHECK(phones->intervals[2].start == doctest::Approx(0.05));
  // Through Praat's text format and back, the phones give the same frames.
  const auto back = parse_textgrid(format_textgrid(grid), "test");
  const auto read = frame_durations(*back.tier("phones"), 100, 1, frames);
  CHECK(read == std::vector<std::int64_t>{3, 2, 5, 5, 3, 8, 3, 4, 2, 5});
  // Another count of words than of groups: the groups are named by their phones.
  clip.words = {"the", "cat"};
  const auto unnamed = alignment_textgrid(clip, options);
  CHECK(unnamed.tier("words")->intervals[0].label == "D @");
}

TEST_CASE(
    "an alignment walks the diagonal only when its most likely phonemes never step back or skip") {
  using align::walks_the_diagonal;
  CHECK(walks_the_diagonal({0, 0, 1, 2, 2, 3}, 4));
  CHECK(!walks_the_diagonal({0, 1, 0, 2, 3}, 4));  // steps back
  CHECK(!walks_the_diagonal({0, 0, 2, 3}, 4));     // skips phoneme 1
  CHECK(!walks_the_diagonal({1, 2, 3}, 4));        // never at phoneme 0
  CHECK(!walks_the_diagonal({0, 1, 2}, 4));        // never reaches the last
  // Pause tokens may pass unseen; phones may not.
  CHECK(walks_the_diagonal({0, 0, 2, 3}, 4, {false, true, false, false}));
  CHECK(!walks_the_diagonal({0, 0, 2, 3}, 4, {false, false, true, false}));
  CHECK(walks_the_diagonal({1, 2, 3}, 4, {true, false, false, false}));
  CHECK(!walks_the_diagonal({0, 2, 1, 3}, 4, {true, true, true, true}));  // still never back
  // On a soft alignment that is the path's own, every boundary agrees.
  align::ClipAlignment a;
  a.durations = torch::tensor(std::vector<std::int64_t>{2, 1, 3});
  const auto hard = align::hard_alignment(a.durations.unsqueeze(0), 6);  // [1, 6, 3]
  a.outputs.log_soft = torch::log(hard.to(torch::kFloat) * 0.98 + 0.01);
  a.outputs.log_probs = a.outputs.log_soft;
  align::AlignmentHealth health;
  align::add_alignment_health(health, a, torch::tensor(std::vector<std::int64_t>{2, 1, 3}));
  align::add_alignment_health(health, a, torch::tensor(std::vector<std::int64_t>{4, 2, 0}));
  CHECK(health.clips == 2);
  CHECK(health.monotonic == 2);
  CHECK(health.boundaries == 4);
  CHECK(health.within == 3);  // the first clip's both; ends 2 vs 4 within 2 frames, 3 vs 6 not
  CHECK(std::isfinite(health.mean_forward_sum()));
}

TEST_CASE("with the recording's loudness, a learned grid's silences are where it is quiet") {
  // "the cat , sat ." as above: quiet at the start (inside "D"), in the middle
  // of ", " (frames 20-24 of its 18-25), not at the 1-frame boundary after
  // "the", and for the last 3 frames (inside ".").
  AlignedClip clip{.tokens = {"D", "@", " ", "k", "a", "t", ",", " ", "s", "a", "t", "."},
                   .durations = {3, 2, 1, 4, 5, 3, 2, 6, 3, 4, 2, 5},
                   .words = {"the", "cat", "sat"},
                   .silent = std::vector<bool>(40, false),
                   .seconds = 0.4,
                   .sample_rate = 100,
                   .hop_length = 1};
  for (const int f : {0, 1, 5, 20, 21, 22, 23, 24, 37, 38, 39})
    clip.silent[static_cast<std::size_t>(f)] = true;
  const AlignmentTextGridOptions options{
      .min_silence_frames = 3,
      .is_pause = &tts::EnglishPhonemeProcessor::is_pause_token,
      .is_word_boundary = [](std::string_view t) { return t == " "; }};
  const auto grid = alignment_textgrid(clip, options);
  const auto read = frame_durations(*grid.tier("phones"), 100, 1, 40);
  std::vector<std::string> phones, words;
  for (const auto& iv : grid.tier("phones")->intervals) phones.push_back(iv.label);
  for (const auto& iv : grid.tier("words")->intervals) words.push_back(iv.label);
  CHECK(phones == std::vector<std::string>{"", "D", "@", "k", "a", "t", "", "s", "a", "t", ""});
  // The leading quiet frames leave "D"; "t" keeps the loud frames of ", " before
  // the quiet run, "s" those after it; the 1-frame boundary goes to "@" and "k".
  CHECK(read == std::vector<std::int64_t>{2, 1, 2, 5, 5, 5, 5, 4, 4, 4, 3});
  CHECK(words == std::vector<std::string>{"", "the", "cat", "", "sat", ""});
  // Quiet frames the phones beside a silence took (the end of "t", the start
  // of "s") join it.
  clip.silent[19] = clip.silent[25] = true;
  CHECK(frame_durations(*alignment_textgrid(clip, options).tier("phones"), 100, 1, 40) ==
        std::vector<std::int64_t>{2, 1, 2, 5, 5, 4, 7, 3, 4, 4, 3});
  // A clip that is loud throughout: no silence at all, the ends included.
  clip.silent.assign(40, false);
  const auto loud = alignment_textgrid(clip, options);
  for (const auto& iv : loud.tier("phones")->intervals) CHECK(!iv.label.empty());
  CHECK(frame_durations(*loud.tier("phones"), 100, 1, 40) ==
        std::vector<std::int64_t>{3, 2, 5, 5, 7, 7, 4, 7});
  // silent_frames: 40 dB under the loudest frame's loudest band.
  auto mel = torch::full({4, 3}, std::log(1e-5));
  mel[0][1] = 0.0;              // the loudest
  mel[1][2] = std::log(0.02);   // 34 dB under: loud
  mel[2][0] = std::log(0.005);  // 46 dB under: quiet
  CHECK(silent_frames(mel) == std::vector<bool>{false, false, true, true});
  // The same levels as a power mel (squared magnitudes): the same frames quiet.
  CHECK(silent_frames(2.0 * mel, 40.0, 2.0) == std::vector<bool>{false, false, true, true});
  CHECK(silent_frames(2.0 * mel, 40.0, 1.0) == std::vector<bool>{false, true, true, true});
}

TEST_CASE("a transcription's words name every word group, so a learned grid's words are words") {
  // espeak-ng speaks "out of" and "in the" as one word each: 13 groups for 15 words.
  const std::string text = "He went out of the house at 3 in the morning, and I saw him.";
  const tts::EnglishPhonemeProcessor processor;
  const auto t = processor.transcribe(text);
  std::int64_t groups = 1;
  for (const auto& token : t.tokens) groups += token == tts::kWordBoundary ? 1 : 0;
  REQUIRE(static_cast<std::int64_t>(t.words.size()) == groups);
  CHECK(std::find(t.words.begin(), t.words.end(), "three") != t.words.end());
  std::string joined;
  for (const auto& w : t.words) joined += (joined.empty() ? "" : " ") + w;
  CHECK(joined == "He went out of the house at three in the morning and I saw him");
  // Every group of a grid made from them is named by its words, none by its phones.
  AlignedClip clip{.tokens = t.tokens,
                   .durations = std::vector<std::int64_t>(t.tokens.size(), 2),
                   .words = t.words,
                   .silent = {},
                   .seconds = 0.0,
                   .sample_rate = 100,
                   .hop_length = 1};
  const auto grid = alignment_textgrid(
      clip, {.min_silence_frames = 3,
             .is_pause = &tts::EnglishPhonemeProcessor::is_pause_token,
             .is_word_boundary = [](std::string_view w) { return w == tts::kWordBoundary; }});
  std::vector<std::string> labels;
  for (const auto& iv : grid.tier("words")->intervals) {
    if (!iv.label.empty()) labels.push_back(iv.label);
  }
  CHECK(labels == t.words);
  // The ARPAbet front end: one group per word, "well-known" as two.
  const auto arpabet = tts::EnglishPhonemeProcessor::for_phoneme_set("arpabet").transcribe(
      "A well-known tale, in 1984.");
  CHECK(arpabet.words ==
        std::vector<std::string>{"A", "well", "known", "tale", "in", "nineteen", "eighty", "four"});
}

TEST_CASE(
    "boundary agreement pairs words by label, reads merged words, and counts boundaries both sides "
    "mark") {
  const Tier reference{.name = "words",
                       .intervals = {{.start = 0.0, .end = 0.1, .label = ""},
                                     {.start = 0.1, .end = 0.3, .label = "he"},
                                     {.start = 0.3, .end = 0.5, .label = "went"},
                                     {.start = 0.5, .end = 0.6, .label = "out"},
                                     {.start = 0.6, .end = 0.7, .label = "of"},
                                     {.start = 0.7, .end = 0.8, .label = "the"},
                                     {.start = 0.8, .end = 1.2, .label = "house"},
                                     {.start = 1.2, .end = 1.5, .label = ""}}};
  const Tier ours{.name = "words",
                  .intervals = {{.start = 0.0, .end = 0.11, .label = ""},
                                {.start = 0.11, .end = 0.3, .label = "He"},
                                {.start = 0.3, .end = 0.45, .label = "went"},
                                {.start = 0.45, .end = 0.7, .label = "out of"},
                                {.start = 0.7, .end = 0.85, .label = "the"},
                                {.start = 0.85, .end = 1.2, .label = "home"},
                                {.start = 1.2, .end = 1.5, .label = "sil"}}};
  const auto r = align::boundary_agreement(ours, reference, 0.02);
  CHECK(r.intervals == 6);
  CHECK(r.paired == 5);  // "house" / "home" stay apart
  // he 2, went 2, out (start only), of (end only), the 2: "out|of" is no boundary of ours.
  CHECK(r.boundaries == 8);
  // Off by more than 20 ms: went's end, out's start and the's end.
  CHECK(r.within == 5);
  CHECK(r.mean_absolute_error() == doctest::Approx(0.16 / 8));
  // Against itself, every boundary agrees.
  const auto same = align::boundary_agreement(reference, reference, 0.0);
  CHECK(same.paired == 6);
  CHECK(same.share_within() == 1.0);
}

namespace {

struct AlignPolicies : DefaultPolicies {
  using logger = Loggers<test::SpyLogger>;
};
using AlignTrainer = Trainer<tts::EnglishTtsTask, AlignPolicies>;

/// The first batch of `loader`, if it has one.
std::optional<TtsBatch> first_batch(data::PrefetchLoader<TtsBatch> loader) {
  for (auto& b : loader) return b;
  return std::nullopt;
}

}  // namespace

TEST_CASE("with learned durations the path's durations regulate the model, and the aligner's losses are logged") {
  const auto dir = test::scratch_dir("tts-learned-durations");
  auto config = test::tiny_tts_config(dir);
  config.training.epochs = 2;
  config.data.durations = "learned";
  config.alignment.binarization_start_epochs = 1;
  config.alignment.binarization_ramp_epochs = 2;
  config.logging.checkpoints = true;
  config.logging.run_name = "learned";
  AlignTrainer trainer(config);
  auto& task = trainer.task();
  REQUIRE(task.kokoro_model()->has_aligner());
  CHECK(task.data().corpus().report.summary().find("durations learned by the aligner for all") !=
        std::string::npos);
  // Before training: the path fits every clip, and it is what regulates the model.
  {
    auto batch = first_batch(task.train_data(0));
    REQUIRE(batch.has_value());
    torch::NoGradGuard no_grad;
    const auto a = task.align_batch(*batch);
    CHECK(a.durations.equal(a.batch.hard_durations));  // learned: TextGrids set aside
    CHECK(a.durations.sum(1).equal(batch->mel_lengths));
    const auto mask = batch->phoneme_mask();
    CHECK(a.durations.masked_select(mask).ge(1).all().item<bool>());
    CHECK(std::isfinite(a.batch.forward_sum.item<double>()));
    CHECK(task.binarization_weight() == 0.0);  // epoch 0: not yet
  }
  const auto summary = trainer.fit();
  CHECK(summary.epochs_completed == 2);
  // The alignment's health, as each evaluation logs it: the demo corpus's
  // grids (set aside for training) say how near the path lies.
  const auto health = task.alignment_health(task.evaluation_choice());
  REQUIRE(health.get("align_monotonic").has_value());
  REQUIRE(health.get("align_within_2_frames").has_value());
  CHECK(*health.get("align_monotonic") >= 0.0);
  CHECK(*health.get("align_monotonic") <= 1.0);
  CHECK(*health.get("align_within_2_frames") > 0.0);
  CHECK(*health.get("align_within_2_frames") <= 1.0);
  CHECK(std::isfinite(*health.get("align_ctc")));
  const auto& last = summary.last_validation;
  REQUIRE(last.get("loss/align_ctc").has_value());
  REQUIRE(last.get("loss/align_bin").has_value());
  // Epoch 1: the first of the two ramp epochs.
  CHECK(task.binarization_weight() == doctest::Approx(0.5 * config.alignment.binarization_weight));
  // The checkpoint speaks: the Synthesizer builds the aligner it holds.
  const auto trained = tts::load_trained_model(trainer.run_directory() / "checkpoints" / "final.pt",
                                               torch::kCPU);
  CHECK(trained.model->has_aligner());
  fs::remove_all(dir);
}

TEST_CASE(
    "the aligner learns in a parameter group of its own at alignment.learning_rate, which the "
    "schedule moves with the model's") {
  const auto dir = test::scratch_dir("tts-aligner-group");
  auto config = test::tiny_tts_config(dir);
  config.training.epochs = 1;
  config.data.durations = "learned";
  config.training.learning_rate = 1e-4;
  config.alignment.learning_rate = 3e-3;
  config.logging.run_name = "groups";
  AlignTrainer trainer(config);
  auto& model = trainer.task().kokoro_model();
  auto& groups = trainer.optimizer().param_groups();
  REQUIRE(groups.size() == 2);
  const auto aligner = model->aligner()->parameters();
  REQUIRE(groups[1].params().size() == aligner.size());
  for (std::size_t i = 0; i < aligner.size(); ++i) CHECK(groups[1].params()[i].is_same(aligner[i]));
  CHECK(groups[0].params().size() + aligner.size() == model->parameters().size());
  // Both groups at the same point of the schedule: the same share of the
  // way from each base rate down to its floor.
  const auto before = aligner.front().detach().clone();
  trainer.fit();
  CHECK(!aligner.front().detach().equal(before));
  const double floor = config.training.min_learning_rate;
  const double model_share = (groups[0].options().get_lr() - floor) / (1e-4 - floor);
  const double aligner_share = (groups[1].options().get_lr() - floor) / (3e-3 - floor);
  CHECK(model_share < 1.0);  // the schedule has moved
  CHECK(model_share > 0.0);
  CHECK(aligner_share == doctest::Approx(model_share).epsilon(1e-9));
  // 0: one group, the model's rate for all, as runs before the option had it.
  auto one = test::tiny_tts_config(dir / "one");
  one.data.durations = "learned";
  one.alignment.learning_rate = 0.0;
  AlignTrainer single(one);
  CHECK(single.optimizer().param_groups().size() == 1);
  CHECK(single.optimizer().param_groups()[0].params().size() ==
        single.task().kokoro_model()->parameters().size());
  fs::remove_all(dir);
}

TEST_CASE(
    "a run on learned durations stopped and resumed ends with a straight run's weights, the "
    "aligner's group included, and a run of one group is refused by name") {
  const auto dir = test::scratch_dir("tts-learned-resume");
  auto learned = [&](const fs::path& out) {
    auto c = test::tiny_tts_config(out);
    c.data.durations = "learned";
    c.training.epochs = 10;
    c.alignment.binarization_start_epochs = 1;  // the stop falls inside the ramp
    c.alignment.binarization_ramp_epochs = 2;
    c.logging.checkpoints = true;
    return c;
  };
  auto straight_config = learned(dir / "straight");
  straight_config.training.max_steps = 6;
  AlignTrainer straight(straight_config);
  straight.fit();

  auto config = learned(dir / "resumed");
  config.training.max_steps = 3;  // the middle of the second epoch (2 batches an epoch)
  {
    AlignTrainer first(config);
    first.fit();
  }
  config.training.max_steps = 6;
  config.training.resume = "auto";
  {
    AlignTrainer resumed(config);
    REQUIRE(resumed.optimizer().param_groups().size() == 2);
    CHECK(resumed.global_step() == 3);
    resumed.fit();
    const auto p1 = test::params_of(straight.task().model());
    const auto p2 = test::params_of(resumed.task().model());
    REQUIRE(p1.size() == p2.size());
    for (std::size_t i = 0; i < p1.size(); ++i) CHECK(torch::equal(p1[i], p2[i]));
  }
  // The same run resumed with the aligner in the model's group: the
  // checkpoint's two groups do not fit one, and the error says so.
  config.alignment.learning_rate = 0.0;
  config.training.max_steps = 8;
  CHECK_THROWS_WITH_AS(AlignTrainer{config}, doctest::Contains("parameter groups"), Error);
  fs::remove_all(dir);
}

TEST_CASE("with durations auto a clip's usable TextGrid wins, the aligner takes the rest, and a corpus aligned throughout builds no aligner") {
  const auto dir = test::scratch_dir("tts-auto-durations");
  fs::create_directories(dir);
  // The tiny corpus with two of its TextGrids gone.
  const auto corpus = dir / "corpus";
  fs::copy(test::tiny_demo_corpus(), corpus, fs::copy_options::recursive);
  std::vector<fs::path> grids;
  for (const auto& e : fs::directory_iterator(corpus / "TextGrid")) grids.push_back(e.path());
  std::sort(grids.begin(), grids.end());
  fs::remove(grids[0]);
  fs::remove(grids[1]);
  auto config = test::tiny_tts_config(dir / "runs");
  config.data.data_dir = corpus.string();
  config.data.cache_dir = (dir / "cache").string();
  config.data.validation_split = 0.0;
  config.training.batch_size = 8;
  config.data.durations = "auto";
  {
    AlignTrainer trainer(config);
    auto& task = trainer.task();
    REQUIRE(task.kokoro_model()->has_aligner());
    auto batch = first_batch(task.train_data(0));
    REQUIRE(batch.has_value());
    REQUIRE(batch->size() == 8);
    CHECK(batch->durations_known.logical_not().sum().item<std::int64_t>() == 2);
    torch::NoGradGuard no_grad;
    const auto a = task.align_batch(*batch);
    const auto known = batch->durations_known.unsqueeze(1).expand_as(a.durations);
    // The grids' durations where a clip has one, the path's where it has none.
    CHECK(a.durations.masked_select(known).equal(batch->durations.masked_select(known)));
    CHECK(a.durations.masked_select(known.logical_not())
              .equal(a.batch.hard_durations.masked_select(known.logical_not())));
    CHECK(
        !a.batch.hard_durations.masked_select(known).equal(batch->durations.masked_select(known)));
    // The quality measures take no durations of a clip without a grid (its
    // even spread is no yardstick for the predicted ones).
    const auto clips = eval::evaluation_clips(task.data().corpus().train);
    REQUIRE(clips.size() == 8);
    CHECK(std::count_if(clips.begin(), clips.end(),
                        [](const eval::EvaluationClip& c) { return !c.durations.defined(); }) == 2);
  }
  // Every clip aligned by its TextGrid: no aligner (runs of before it resume as they were).
  auto whole = test::tiny_tts_config(dir / "runs-whole");
  whole.data.durations = "auto";
  AlignTrainer aligned(whole);
  CHECK(!aligned.task().kokoro_model()->has_aligner());
  whole.data.durations = "textgrid";
  AlignTrainer plain(whole);
  CHECK(!plain.task().kokoro_model()->has_aligner());
  fs::remove_all(dir);
}

TEST_CASE("timestamps of spoken words follow the durations it was spoken with and end with its audio") {
  // "Hi, two words." as tokens, with the frames each was given (hop 256 at 22050 Hz).
  SpokenLine line;
  line.text = "Hi, two words.";
  line.tokens = {"h", "aI", ",", " ", "t", "u:", " ", "w", "3:", "d", "z", "."};
  line.words = {"Hi", "two", "words"};
  line.durations = torch::tensor(std::vector<std::int64_t>{4, 6, 5, 4, 3, 7, 1, 3, 6, 2, 4, 10});
  const std::int64_t frames = 55;
  line.mel = torch::zeros({frames, 80});
  line.sample_rate = 22050;
  line.samples.assign(static_cast<std::size_t>((frames - 1) * 256), 0.0f);
  AudioSection audio;
  const auto grid = timestamps(line, audio);
  const auto* words = grid.tier("words");
  REQUIRE(words != nullptr);
  std::vector<std::string> labels;
  for (const auto& iv : words->intervals) {
    if (!iv.label.empty()) labels.push_back(iv.label);
  }
  CHECK(labels == std::vector<std::string>{"Hi", "two", "words"});
  // "two" starts after "Hi" (10 frames) and the 9-frame pause ", ": at frame 19.
  const auto two = std::find_if(words->intervals.begin(), words->intervals.end(),
                                [](const Interval& iv) { return iv.label == "two"; });
  CHECK(two->start == doctest::Approx(19 * 256 / 22050.0));
  // The audio ends a hop before the last frame: so does every tier.
  CHECK(grid.xmax == doctest::Approx(line.seconds()));
  for (const auto& tier : grid.tiers) CHECK(tier.intervals.back().end == doctest::Approx(line.seconds()));
  // A line the stop token ended early: its durations are cut from the end.
  line.mel = torch::zeros({30, 80});
  line.samples.assign(29 * 256, 0.0f);
  const auto cut = timestamps(line, audio);
  for (const auto& tier : cut.tiers) {
    for (const auto& iv : tier.intervals) CHECK(iv.end <= line.seconds() + 1e-9);
  }
}
