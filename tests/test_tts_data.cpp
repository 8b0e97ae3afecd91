// The TTS data pipeline's torch side: audio reading and resampling, log-mel
// features against a direct DFT, the LJSpeech reader, length bucketing,
// padding into batches and the prefetching loader.
#include <doctest/doctest.h>

#include <kokoro/audio/audio_file.hpp>
#include <kokoro/audio/griffin_lim.hpp>
#include <kokoro/audio/mel.hpp>
#include <kokoro/data/length_buckets.hpp>
#include <kokoro/data/prefetch_loader.hpp>
#include <kokoro/tts/data/batch.hpp>
#include <kokoro/tts/data/ljspeech.hpp>
#include <kokoro/util/seeded_shuffle.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <set>

#include "test_tasks.hpp"

using namespace kokoro;
using namespace kokoro::tts;
using namespace kokoro::data;
using namespace kokoro::audio;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> sine(double hz, int rate, int n, double phase = 0.0) {
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    out[i] = static_cast<float>(0.5 * std::sin(2 * kPi * hz * i / rate + phase));
  return out;
}

/// Writes interleaved float frames with libsndfile as 16-bit PCM WAV.
void write_wav(const fs::path& path, const std::vector<float>& interleaved, int rate,
               int channels) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  sf_writef_float(f, interleaved.data(), static_cast<sf_count_t>(interleaved.size() / channels));
  sf_close(f);
}

double max_error(const std::vector<float>& a, const std::vector<float>& b, std::size_t from,
                 std::size_t to) {
  double worst = 0;
  for (std::size_t i = from; i < to; ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("resampling keeps a tone and its length, down and up") {
  // 440 Hz from 44.1 kHz to 22.05 kHz, and from 16 kHz to 22.05 kHz: away
  // from the edges (where the filter runs off the signal) the result is the
  // tone sampled at the new rate.
  const auto down = resample(sine(440, 44100, 44100), 44100, 22050);
  CHECK(down.size() == 22050);
  CHECK(max_error(down, sine(440, 22050, 22050), 200, 21850) < 2e-3);
  const auto up = resample(sine(440, 16000, 16000), 16000, 22050);
  CHECK(up.size() == 22050);
  CHECK(max_error(up, sine(440, 22050, 22050), 200, 21850) < 2e-3);
  // A tone above the new Nyquist frequency is filtered out, not aliased.
  const auto high = resample(sine(15000, 44100, 44100), 44100, 22050);
  CHECK(max_error(high, std::vector<float>(high.size(), 0.0f), 200, 21850) < 5e-3);
  CHECK(resample(down, 22050, 22050) == down);
  // Other lengths round to the nearest sample, halves up.
  CHECK(resample(std::vector<float>(1001, 0.5f), 44100, 22050).size() == 501);
  CHECK(resample(std::vector<float>(44101, 0.5f), 16000, 22050).size() == 60777);
  CHECK(resample(std::vector<float>(44101, 0.5f), 48000, 22050).size() == 20259);
  CHECK_THROWS_WITH_AS(resample(down, 0, 22050), doctest::Contains("must be positive"), Error);
}

TEST_CASE("audio files are read as mono at the configured rate, bad files are named") {
  const auto dir = test::scratch_dir("tts-audio");
  fs::create_directories(dir);
  // Stereo at 44.1 kHz: left a tone, right silence -> mono is half the tone.
  const auto tone = sine(300, 44100, 4410);
  std::vector<float> stereo;
  for (const float s : tone) {
    stereo.push_back(s);
    stereo.push_back(0.0f);
  }
  write_wav(dir / "stereo.wav", stereo, 44100, 2);
  AudioInfo info;
  const auto mono = load_audio(dir / "stereo.wav", 22050, &info);
  CHECK(info.channels == 2);
  CHECK(info.sample_rate == 44100);
  CHECK(mono.size() == 2205);
  std::vector<float> half(2205);
  const auto expected = sine(300, 22050, 2205);
  for (std::size_t i = 0; i < half.size(); ++i) half[i] = expected[i] * 0.5f;
  CHECK(max_error(mono, half, 100, 2100) < 2e-3);

  // Truncated: the header promises more data than the file holds.
  write_wav(dir / "whole.wav", sine(300, 22050, 22050), 22050, 1);
  std::ifstream in(dir / "whole.wav", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir / "truncated.wav", std::ios::binary).write(bytes.data(), 44 + 1000);
  std::ofstream(dir / "empty.wav", std::ios::binary).flush();
  std::ofstream(dir / "text.wav") << "not audio at all";
  for (const char* name : {"truncated.wav", "empty.wav", "text.wav", "missing.wav"}) {
    CAPTURE(name);
    try {
      load_audio(dir / name, 22050);
      // libsndfile may read a truncated file's shorter data without an error;
      // then it must at least not claim the promised length.
      CHECK(std::string(name) == "truncated.wav");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(name) != std::string::npos);
    }
  }
  CHECK(load_audio(dir / "truncated.wav", 22050).size() < 22050);
  fs::remove_all(dir);
}

TEST_CASE(
    "audio is read in blocks up to a length limit: a long file whole, a longer one and an odd "
    "sample rate refused by name") {
  const auto dir = test::scratch_dir("tts-audio-limits");
  fs::create_directories(dir);
  // 3 s of 3 channels at 48 kHz: 432000 samples, several blocks of 64k.
  const auto tone = sine(440, 48000, 3 * 48000);
  std::vector<float> interleaved;
  for (const float s : tone) {
    interleaved.push_back(s);
    interleaved.push_back(-s);
    interleaved.push_back(s);
  }
  write_wav(dir / "long.wav", interleaved, 48000, 3);
  AudioInfo info;
  const auto mono = load_audio(dir / "long.wav", 48000, &info, 3.0);
  REQUIRE(mono.size() == tone.size());
  CHECK(info.frames == 3 * 48000);
  std::vector<float> third(tone.size());
  for (std::size_t i = 0; i < tone.size(); ++i) third[i] = tone[i] / 3.0f;
  CHECK(max_error(mono, third, 0, tone.size()) < 1e-4);  // the last block's samples too
  try {
    load_audio(dir / "long.wav", 22050, nullptr, 2.5);
    FAIL("3 s of audio read under a 2.5 s limit");
  } catch (const kokoro::Error& e) {
    CHECK(std::string(e.what()).find("long.wav") != std::string::npos);
    CHECK(std::string(e.what()).find("3.0 s of audio") != std::string::npos);
  }
  write_wav(dir / "slow.wav", sine(10, 500, 500), 500, 1);
  try {
    load_audio(dir / "slow.wav", 22050);
    FAIL("a 500 Hz file was read");
  } catch (const kokoro::Error& e) {
    CHECK(std::string(e.what()).find("slow.wav: a sample rate of 500 Hz") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("the Slaney mel scale is linear to 1 kHz and logarithmic above") {
  CHECK(hz_to_mel_slaney(200) == doctest::Approx(3.0));
  CHECK(hz_to_mel_slaney(1000) == doctest::Approx(15.0));
  CHECK(hz_to_mel_slaney(6400) == doctest::Approx(42.0));  // one factor of 6.4: 27 mels
  CHECK(mel_to_hz_slaney(hz_to_mel_slaney(4321.0)) == doctest::Approx(4321.0));
  // Area normalisation: every triangle integrates (over Hz) to about 1 (the
  // sum over FFT bins approximates the integral; without the normalisation
  // the areas would be half the filters' widths, tens to thousands of Hz).
  const auto fb = slaney_mel_filterbank(22050, 1024, 80, 0, 8000);
  CHECK(fb.sizes() == torch::IntArrayRef({80, 513}));
  const auto areas = fb.sum(1) * (22050.0 / 1024);
  CHECK(areas.slice(0, 10, 80).min().item<double>() > 0.9);
  CHECK(areas.slice(0, 10, 80).max().item<double>() < 1.1);
  CHECK(fb.slice(1, 372).abs().sum().item<double>() == 0.0);  // nothing above 8 kHz (bin 371.5)
}

TEST_CASE("log-mel features match a direct DFT to 1e-4") {
  audio::MelOptions audio;  // 22050 Hz, n_fft 1024, hop 256, win 1024, 80 mels, 0-8000 Hz
  audio.win_length = 800;   // exercises the window's zero padding inside n_fft
  const MelSpectrogram mel(audio);
  torch::manual_seed(3);
  const int n = 3000;
  const auto wave = torch::randn({n}, torch::kDouble) * 0.1;
  const auto out = mel(wave.to(torch::kFloat));
  REQUIRE(out.size(0) == mel.frames_for(n));
  REQUIRE(out.size(0) == 1 + n / 256);
  REQUIRE(out.size(1) == 80);

  // Reference: reflect padding by n_fft/2, a periodic Hann window of 800
  // centred in 1024, the DFT summed directly, |X|, the same filterbank.
  const int n_fft = 1024, hop = 256, win = 800, bins = 513;
  const auto x = wave.to(torch::kFloat).to(torch::kDouble);  // the same float samples
  const auto* s = x.data_ptr<double>();
  auto padded = [&](int i) {  // reflect without repeating the edge
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return s[i];
  };
  std::vector<double> window(n_fft, 0.0);
  for (int i = 0; i < win; ++i)
    window[(n_fft - win) / 2 + i] = 0.5 - 0.5 * std::cos(2 * kPi * i / win);
  const auto fb = mel.filterbank().to(torch::kDouble);
  double worst = 0;
  for (int t = 0; t < out.size(0); ++t) {
    auto magnitude = torch::zeros({bins}, torch::kDouble);
    auto m = magnitude.accessor<double, 1>();
    for (int k = 0; k < bins; ++k) {
      double re = 0, im = 0;
      for (int j = 0; j < n_fft; ++j) {
        const double v = padded(t * hop + j - n_fft / 2) * window[j];
        re += v * std::cos(2 * kPi * k * j / n_fft);
        im -= v * std::sin(2 * kPi * k * j / n_fft);
      }
      m[k] = std::sqrt(re * re + im * im);
    }
    const auto expected = torch::log(torch::clamp_min(torch::matmul(fb, magnitude), 1e-5));
    worst = std::max(worst, (expected - out[t].to(torch::kDouble)).abs().max().item<double>());
  }
  CHECK(worst < 1e-4);

  audio.mel_power =
      2.0;  // the power mel: twice the log of... no: log of the squared magnitudes' mel
  const auto power = MelSpectrogram(audio)(wave.to(torch::kFloat));
  CHECK((power > out).sum().item<int>() > 0);  // different features, same shape
  CHECK(power.sizes() == out.sizes());
}

TEST_CASE("LJSpeech metadata: quotes kept, bad lines named and skipped, the rest read") {
  const auto dir = test::scratch_dir("tts-ljs");
  fs::create_directories(dir / "wavs");
  for (const char* id : {"LJ001-0001", "LJ001-0002", "LJ001-0004", "LJ001-0006"}) {
    write_wav(dir / "wavs" / (std::string(id) + ".wav"), sine(200, 22050, 2205), 22050, 1);
  }
  std::ofstream(dir / "metadata.csv", std::ios::binary)
      << "\xEF\xBB\xBFLJ001-0001|He said \"no\" twice.|He said \"no\" twice.\r\n"
      << "LJ001-0002|Two fields only, 1st text\n"
      << "LJ001-0003|Missing audio|Missing audio\n"
      << "LJ001-0004|||\n"
      << "LJ001-0005|one|two|three|four\n"
      << "\n"
      << "LJ001-0006|Dr. Smith paid $5.|Doctor Smith paid five dollars.\n"
      << "LJ001-0001|A repeat|A repeat\n";
  const auto meta = read_ljspeech_metadata(dir / "metadata.csv", dir / "wavs", dir / "TextGrid");
  REQUIRE(meta.utterances.size() == 3);
  CHECK(meta.utterances[0].id == "LJ001-0001");
  CHECK(meta.utterances[0].text == "He said \"no\" twice.");
  CHECK(meta.utterances[1].normalized == "Two fields only, 1st text");  // no third column
  CHECK(meta.utterances[2].normalized == "Doctor Smith paid five dollars.");
  CHECK(meta.utterances[2].line == 7);
  CHECK(meta.utterances[2].audio == dir / "wavs" / "LJ001-0006.wav");
  CHECK(meta.utterances[2].alignment == dir / "TextGrid" / "LJ001-0006.TextGrid");
  REQUIRE(meta.problems.size() == 4);
  CHECK(meta.problems[0].find("metadata.csv:3: clip LJ001-0003") != std::string::npos);
  CHECK(meta.problems[1].find("metadata.csv:4: expected 3 fields") != std::string::npos);
  CHECK(meta.problems[2].find("metadata.csv:5: expected 3 fields") != std::string::npos);
  CHECK(meta.problems[3].find("metadata.csv:8: clip LJ001-0001 appears twice") !=
        std::string::npos);
  CHECK_THROWS_WITH_AS(read_ljspeech_metadata(dir / "nope.csv", dir, dir),
                       doctest::Contains("nope.csv: cannot open"), Error);
  fs::remove_all(dir);
}

TEST_CASE("the validation split is deterministic, sized, and stable as the corpus grows") {
  std::vector<Utterance> clips;
  for (int i = 0; i < 200; ++i)
    clips.push_back(
        Utterance{.id = fmt::format("c{:03}", i), .text = "t", .normalized = "t", .line = i});
  const auto [train, valid] = split_train_validation(clips, 0.05, 42);
  CHECK(valid.size() == 10);
  CHECK(train.size() == 190);
  auto ids = [](const std::vector<Utterance>& v) {
    std::set<std::string> s;
    for (const auto& u : v) s.insert(u.id);
    return s;
  };
  // The same clips whatever the order of the file.
  auto reversed = clips;
  std::reverse(reversed.begin(), reversed.end());
  CHECK(ids(split_train_validation(reversed, 0.05, 42).second) == ids(valid));
  // Another seed, another split.
  CHECK(ids(split_train_validation(clips, 0.05, 7).second) != ids(valid));
  // A validation clip stays one when clips are added (unless displaced by a
  // newcomer with a smaller hash: most stay).
  for (int i = 200; i < 210; ++i)
    clips.push_back(
        Utterance{.id = fmt::format("c{:03}", i), .text = "t", .normalized = "t", .line = i});
  const auto grown = ids(split_train_validation(clips, 0.05, 42).second);
  int kept = 0;
  for (const auto& id : ids(valid)) kept += static_cast<int>(grown.count(id));
  CHECK(kept >= 8);
  CHECK(split_train_validation({clips[0], clips[1]}, 0.01, 1).second.size() == 1);
  CHECK(split_train_validation({clips[0], clips[1]}, 0.0, 1).second.empty());
}

TEST_CASE("the seeded shuffle is a permutation fixed by its seed, on any standard library") {
  // mt19937_64's 10000th output is fixed by the standard ([rand.predef]):
  // the shuffle draws from nothing else, so its orders are portable.
  std::mt19937_64 reference;
  reference.discard(9999);
  CHECK(reference() == 9981545732273789042ull);
  std::vector<int> items(50);
  std::iota(items.begin(), items.end(), 0);
  auto a = items, b = items, c = items;
  kokoro::seeded_shuffle(a, 7);
  kokoro::seeded_shuffle(b, 7);
  kokoro::seeded_shuffle(c, 8);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != items);
  std::sort(a.begin(), a.end());
  CHECK(a == items);
  // One generator carries on across shuffles: the second differs from the first.
  std::mt19937_64 rng(3);
  auto first = items, second = items;
  kokoro::seeded_shuffle(first, rng);
  kokoro::seeded_shuffle(second, rng);
  CHECK(first != second);
}

TEST_CASE("length buckets: every clip once, similar lengths together, new batches each epoch") {
  std::mt19937_64 rng(5);
  std::vector<std::int64_t> lengths;
  for (int i = 0; i < 500; ++i) lengths.push_back(50 + static_cast<std::int64_t>(rng() % 800));
  BucketingOptions options;
  options.batch_size = 16;
  options.pool_batches = 8;
  options.seed = 42;
  const auto e0 = bucket_batches(lengths, options, 0);
  const auto e1 = bucket_batches(lengths, options, 1);
  CHECK(e0 == bucket_batches(lengths, options, 0));  // deterministic
  auto flatten = [](const auto& batches) {
    std::multiset<std::size_t> all;
    for (const auto& b : batches) all.insert(b.begin(), b.end());
    return all;
  };
  const auto all = flatten(e0);
  CHECK(all.size() == 500);
  CHECK(std::set<std::size_t>(all.begin(), all.end()).size() == 500);
  std::set<std::vector<std::size_t>> first(e0.begin(), e0.end());
  int same = 0;
  for (const auto& b : e1) same += static_cast<int>(first.count(b));
  CHECK(same == 0);  // membership reshuffled

  // Padding: bucketed batches waste far less than random ones would.
  auto waste = [&](const std::vector<std::vector<std::size_t>>& batches) {
    double padded = 0, real = 0;
    for (const auto& b : batches) {
      std::int64_t longest = 0;
      for (auto i : b) longest = std::max(longest, lengths[i]), real += lengths[i];
      padded += static_cast<double>(longest) * b.size();
    }
    return padded / real - 1;
  };
  options.pool_batches = 1;  // a pool of one batch: no sorting across batches
  CHECK(waste(e0) < 0.5 * waste(bucket_batches(lengths, options, 0)));

  // The frame cap and drop_last.
  options.pool_batches = 8;
  options.max_frames_per_batch = 4000;
  for (const auto& b : bucket_batches(lengths, options, 3)) {
    std::int64_t longest = 0;
    for (auto i : b) longest = std::max(longest, lengths[i]);
    CHECK((b.size() == 1 || longest * static_cast<std::int64_t>(b.size()) <= 4000));
  }
  options.max_frames_per_batch = 0;
  options.drop_last = true;
  for (const auto& b : bucket_batches(lengths, options, 0)) CHECK(b.size() == 16);
}

TEST_CASE("collate pads, marks the last frame and derives masks from the lengths") {
  auto item = [](const char* id, int tokens, int frames) {
    auto durations = torch::zeros({tokens}, torch::kLong);
    durations[0] = frames;
    return TtsItem{id, torch::ones({frames, 4}), torch::arange(1, tokens + 1), durations};
  };
  const auto b = collate({item("a", 3, 5), item("b", 2, 7)});
  CHECK(b.size() == 2);
  CHECK(b.phonemes.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(b.mels.sizes() == torch::IntArrayRef({2, 7, 4}));
  CHECK(b.phonemes[1][2].item<std::int64_t>() == 0);  // <pad>
  CHECK(b.mels[0][6][0].item<float>() == doctest::Approx(std::log(1e-5)));
  CHECK(b.stop_targets[0].sum().item<float>() == 1.0f);
  CHECK(b.stop_targets[0][4].item<float>() == 1.0f);
  CHECK(b.stop_targets[1][6].item<float>() == 1.0f);
  CHECK(b.mel_mask().sum().item<std::int64_t>() == 12);
  CHECK(b.phoneme_mask().sum().item<std::int64_t>() == 5);
  const auto half = b.slice(1, 2);
  CHECK(half.ids == std::vector<std::string>{"b"});
  CHECK(half.mel_lengths[0].item<std::int64_t>() == 7);
  auto bad = item("c", 2, 5);
  bad.durations[0] = 4;
  CHECK_THROWS_WITH_AS(collate({bad}), doctest::Contains("clip c"), Error);
}

TEST_CASE("the loader delivers batches in order, at most `prefetch` ahead, errors at their batch") {
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t i = 0; i < 40; ++i) batches.push_back({i, i + 100});
  std::atomic<int> built{0};
  std::atomic<int> consumed{0};
  std::atomic<int> most_ahead{0};
  auto make = [&](const std::vector<std::size_t>& b) {
    const int ahead = ++built - consumed;
    int seen = most_ahead;
    while (ahead > seen && !most_ahead.compare_exchange_weak(seen, ahead)) {
    }
    return static_cast<int>(b[0]);
  };
  for (const int workers : {0, 1, 3}) {
    CAPTURE(workers);
    built = consumed = most_ahead = 0;
    PrefetchLoader<int> loader(batches, make, workers, 4);
    CHECK(loader.size() == 40);
    std::vector<int> order;
    for (const int v : loader) {
      order.push_back(v);
      ++consumed;
    }
    std::vector<int> expected(40);
    std::iota(expected.begin(), expected.end(), 0);
    CHECK(order == expected);
    CHECK(most_ahead <= 4 + 1);  // prefetch, plus the one being handed over
  }
  PrefetchLoader<int> failing(
      batches,
      [](const std::vector<std::size_t>& b) {
        if (b[0] == 5) throw Error("clip 5 is unreadable");
        return static_cast<int>(b[0]);
      },
      2, 3);
  int delivered = 0;
  CHECK_THROWS_WITH_AS(
      [&] {
        for (const int v : failing) delivered = v + 1;
      }(),
      "clip 5 is unreadable", Error);
  CHECK(delivered == 5);
}

TEST_CASE("Griffin-Lim turns a log-mel back into audio with nearly the same log-mel") {
  audio::MelOptions audio;
  const MelSpectrogram mel(audio);
  // A vowel-like test signal: harmonics of 150 Hz under a slow envelope.
  const int n = 22050;
  std::vector<float> signal(n);
  for (int i = 0; i < n; ++i) {
    double v = 0;
    for (int h = 1; h <= 12; ++h) v += std::sin(2 * kPi * 150 * h * i / 22050.0) / h;
    signal[i] = static_cast<float>(0.2 * v * (0.6 + 0.4 * std::sin(2 * kPi * 2 * i / 22050.0)));
  }
  const auto original = mel(torch::tensor(signal));
  const GriffinLim vocoder(audio);
  const auto audio_out = vocoder(original);
  CHECK(audio_out.size() == static_cast<std::size_t>(256 * (original.size(0) - 1)));
  CHECK(vocoder(original) == audio_out);  // deterministic
  const auto again = mel(torch::tensor(audio_out));
  const auto frames = std::min(again.size(0), original.size(0));
  auto error = [&](const torch::Tensor& m) {
    return (m.slice(0, 2, frames - 2) - original.slice(0, 2, frames - 2))
        .abs()
        .mean()
        .item<double>();
  };
  const double vocoded = error(again);
  // Baseline: white noise of the same loudness.
  torch::manual_seed(1);
  const auto noise = mel(torch::randn({n}) * torch::tensor(signal).std());
  CHECK(vocoded < 0.5);
  CHECK(vocoded < 0.25 * error(noise));
}

TEST_CASE("Griffin-Lim turns a mel of a few frames into that many hops of audio") {
  // An early model may stop after two frames; the vocoder must not fail on it.
  const GriffinLim vocoder(MelOptions{});
  for (const std::int64_t frames : {2, 3, 4}) {
    CAPTURE(frames);
    const auto mel = torch::full({frames, 80}, -2.0);
    const auto wave = vocoder(mel);
    CHECK(wave.size() == static_cast<std::size_t>(256 * (frames - 1)));
    for (const float s : wave) CHECK(std::isfinite(s));
  }
  CHECK(vocoder(torch::full({1, 80}, -2.0)).empty());
}
