// The corpus end to end on a tiny demo corpus made with espeak-ng: features
// computed, cached and reused, durations from the TextGrids matching the
// phonemizer's tokens, bad clips skipped and counted, and batches served.
#include <doctest/doctest.h>

#include <kokoro/tts/data/corpus.hpp>
#include <kokoro/tts/data/tts_data.hpp>
#include <kokoro/tts/text/arpabet.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "test_tasks.hpp"
#include "tts_fixtures.hpp"

using namespace kokoro;
using namespace kokoro::tts;
using namespace kokoro::audio;
namespace fs = std::filesystem;

namespace {

const fs::path& tiny_corpus() { return test::tiny_demo_corpus(); }

/// TextGrids only (data.durations: textgrid), so that their policies
/// (missing_alignment, alignment_mismatch) decide; auto is tested apart.
TtsConfig corpus_config() {
  TtsConfig config(test::quick_framework_config());
  config.data.durations = "textgrid";
  config.data.validation_split = 0.25;
  config.data.num_workers = 2;
  config.training.batch_size = 3;
  return config;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Copies the tiny corpus to `root` (to be damaged by a test) and returns
/// its clip ids in metadata order.
std::vector<std::string> copy_of_tiny_corpus(const fs::path& root) {
  fs::copy(tiny_corpus(), root, fs::copy_options::recursive);
  std::vector<std::string> ids;
  std::ifstream in(root / "metadata.csv");
  for (std::string line; std::getline(in, line);) ids.push_back(line.substr(0, line.find('|')));
  return ids;
}

}  // namespace

TEST_CASE("the demo corpus gives features whose durations come from its alignments") {
  const auto cache = test::scratch_dir("tts-cache");
  const EnglishPhonemeProcessor processor;
  const auto config = corpus_config();
  const auto corpus = prepare_corpus(config, processor, tiny_corpus(), cache);
  const auto& r = corpus.report;
  CHECK(r.listed == 8);
  CHECK(r.usable == 8);
  CHECK(r.computed == 8);
  CHECK(r.uniform_durations == 0);  // every TextGrid matched the phonemizer
  CHECK(r.aligned == 8);            // espeak-ng's own grids: every phone paired exactly
  CHECK(r.mean_match_score() == 1.0);
  CHECK(r.summary().find("aligned from TextGrids: 8 clips, mean match score 1.000") !=
        std::string::npos);
  CHECK(r.skipped.empty());
  CHECK(r.unknown_symbols.empty());
  CHECK(corpus.validation.size() == 2);
  CHECK(corpus.train.size() == 6);
  CHECK(r.audio_hours > 8 * 1.0 / 3600);
  for (const auto& clip : corpus.train) {
    const auto item = TtsData::load(clip);
    CHECK(item.mel.size(0) == clip.frames);
    CHECK(item.mel.size(1) == config.audio.n_mels);
    CHECK(item.durations.sum().item<std::int64_t>() == clip.frames);
    CHECK(item.phonemes.min().item<std::int64_t>() >= 2);  // no <pad>, no <unk>
    // Silence at the ends of a clip is heard: durations there are not all zero.
    CHECK(item.durations.gt(0).sum().item<std::int64_t>() > item.durations.size(0) / 2);
  }

  // A second run finds everything in the cache.
  const auto again = prepare_corpus(config, processor, tiny_corpus(), cache);
  CHECK(again.report.from_cache == 8);
  CHECK(again.report.computed == 0);
  CHECK(again.report.aligned == 8);  // the cache keeps each clip's match score
  CHECK(again.report.mean_match_score() == 1.0);
  CHECK(again.report.mean_exact_share() == 1.0);
  CHECK(again.cache_dir == corpus.cache_dir);
  // Other audio settings: another folder, everything computed afresh.
  auto other = config;
  other.audio.n_mels = 40;
  const auto changed = prepare_corpus(other, processor, tiny_corpus(), cache);
  CHECK(changed.cache_dir != corpus.cache_dir);
  CHECK(changed.report.computed == 8);
  CHECK(TtsData::load(changed.train[0]).mel.size(1) == 40);
  fs::remove_all(cache);
}

TEST_CASE("bad clips are skipped, named and counted, the rest of the corpus trains") {
  const auto root = test::scratch_dir("tts-bad-corpus");
  const auto ids = copy_of_tiny_corpus(root);
  // Clip 0: truncated audio. Clip 1: stereo at 44.1 kHz (usable). Clip 2: its
  // TextGrid removed (uniform durations). Clip 3: a TextGrid of another clip
  // (mismatch: skipped). A malformed metadata line.
  const auto wav0 = root / "wavs" / (ids[0] + ".wav");
  const auto bytes = read_all(wav0);
  std::ofstream(wav0, std::ios::binary | std::ios::trunc).write(bytes.data(), 40);
  {
    const auto mono = load_audio(root / "wavs" / (ids[1] + ".wav"), 44100);
    std::vector<float> stereo;
    for (const float s : mono) stereo.insert(stereo.end(), {s, s});
    SF_INFO info{};
    info.samplerate = 44100;
    info.channels = 2;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open((root / "wavs" / (ids[1] + ".wav")).c_str(), SFM_WRITE, &info);
    REQUIRE(f);
    sf_writef_float(f, stereo.data(), static_cast<sf_count_t>(mono.size()));
    sf_close(f);
  }
  fs::remove(root / "TextGrid" / (ids[2] + ".TextGrid"));
  fs::copy_file(root / "TextGrid" / (ids[4] + ".TextGrid"),
                root / "TextGrid" / (ids[3] + ".TextGrid"), fs::copy_options::overwrite_existing);
  std::ofstream(root / "metadata.csv", std::ios::app) << "BROKEN-LINE-WITHOUT-FIELDS\n";

  const auto cache = test::scratch_dir("tts-bad-cache");
  const EnglishPhonemeProcessor processor;
  const auto corpus = prepare_corpus(corpus_config(), processor, root, cache);
  const auto& r = corpus.report;
  CHECK(r.listed == 9);
  CHECK(r.usable == 6);
  CHECK(r.skipped.at("unreadable") == 1);
  CHECK(r.skipped.at("alignment mismatch") == 1);
  CHECK(r.skipped.at("bad metadata line") == 1);
  CHECK(r.uniform_durations == 1);
  auto mentions = [&](const std::string& what) {
    for (const auto& m : r.messages) {
      if (m.find(what) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(mentions(ids[0] + ".wav"));
  CHECK(mentions(ids[3] + ".TextGrid"));
  CHECK(mentions("metadata.csv:9:"));
  CHECK(r.summary().find("skipped:") != std::string::npos);
  CHECK(read_all(corpus.cache_dir / "report.txt").find(ids[3] + ".TextGrid") != std::string::npos);

  // The policies flip: no alignment -> skipped; mismatch -> uniform.
  auto strict = corpus_config();
  strict.data.missing_alignment = "skip";
  strict.data.alignment_mismatch = "uniform";
  const auto flipped = prepare_corpus(strict, processor, root, cache).report;
  CHECK(flipped.skipped.at("no alignment") == 1);
  CHECK(flipped.uniform_durations == 1);
  CHECK(flipped.usable == 6);

  // With durations learned where no TextGrid serves (auto), neither the
  // missing grid nor the mismatched one costs its clip: both are the aligner's.
  auto learning = corpus_config();
  learning.data.durations = "auto";
  learning.data.missing_alignment = "skip";
  const auto kept = prepare_corpus(learning, processor, root, cache).report;
  CHECK(kept.usable == 7);
  CHECK(kept.uniform_durations == 2);
  CHECK(kept.skipped.count("no alignment") == 0);
  CHECK(kept.skipped.count("alignment mismatch") == 0);
  CHECK(kept.summary().find("durations learned by the aligner (no usable TextGrid): 2 clips") !=
        std::string::npos);
  fs::remove_all(root);
  fs::remove_all(cache);
}

TEST_CASE(
    "clips spoken at an implausible rate for their corpus are skipped and named: a recording cut "
    "short, a text longer or shorter than what was said") {
  const auto root = test::scratch_dir("tts-rate-corpus");
  const auto ids = copy_of_tiny_corpus(root);
  // Twice the tiny corpus (16 clips: the check needs 10), each copy its own clip.
  {
    std::ifstream in(root / "metadata.csv");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::ofstream out(root / "metadata.csv", std::ios::app);
    for (const auto& line : lines) out << "B-" << line << "\n";
    for (const auto& id : ids)
      fs::copy_file(root / "wavs" / (id + ".wav"), root / "wavs" / ("B-" + id + ".wav"));
  }
  // B-clip 0: the audio cut to its first third. B-clip 1: three times the
  // silence after it. Clip 2 keeps its audio, but its text is read three times over.
  const auto wav0 = root / "wavs" / ("B-" + ids[0] + ".wav");
  auto cut = load_audio(wav0, 22050);
  cut.resize(cut.size() / 3);
  save_wav(wav0, cut, 22050);
  const auto wav1 = root / "wavs" / ("B-" + ids[1] + ".wav");
  auto padded = load_audio(wav1, 22050);
  padded.resize(padded.size() * 3, 0.0f);
  save_wav(wav1, padded, 22050);
  {
    std::ifstream in(root / "metadata.csv");
    std::string all, line;
    while (std::getline(in, line)) {
      if (line.rfind(ids[2] + "|", 0) == 0) {
        const auto text = line.substr(line.rfind('|') + 1);
        line = ids[2] + "|" + text + " " + text + " " + text + "|" + text + " " + text + " " + text;
      }
      all += line + "\n";
    }
    std::ofstream(root / "metadata.csv", std::ios::trunc) << all;
  }
  auto config = corpus_config();
  config.data.durations = "learned";  // the TextGrids no longer fit the texts: beside the point
  const auto cache = test::scratch_dir("tts-rate-cache");
  const EnglishPhonemeProcessor processor;
  const auto corpus = prepare_corpus(config, processor, root, cache);
  const auto& r = corpus.report;
  CHECK(r.listed == 16);
  CHECK(r.usable == 13);
  REQUIRE(r.skipped.count("speaking rate") == 1);
  CHECK(r.skipped.at("speaking rate") == 3);
  auto message_of = [&](const std::string& file) -> std::string {
    for (const auto& m : r.messages) {
      if (m.find(file) != std::string::npos) return m;
    }
    return "";
  };
  CHECK(message_of("B-" + ids[0] + ".wav").find("times faster") != std::string::npos);
  CHECK(message_of("B-" + ids[1] + ".wav").find("times slower") != std::string::npos);
  CHECK(message_of("/" + ids[2] + ".wav").find("times faster") != std::string::npos);
  CHECK(message_of("/" + ids[2] + ".wav").find("data.speaking_rate_limit") != std::string::npos);
  for (const auto* set : {&corpus.train, &corpus.validation}) {
    for (const auto& c : *set) CHECK(c.id != ids[2]);
  }
  // 0 keeps them all; a limit past their factor (3) keeps them too.
  config.data.speaking_rate_limit = 0.0;
  CHECK(prepare_corpus(config, processor, root, cache).report.usable == 16);
  config.data.speaking_rate_limit = 4.0;
  CHECK(prepare_corpus(config, processor, root, cache).report.usable == 16);
  // A factor of 1 or under would leave out all but the median clip: refused, by name.
  config.data.speaking_rate_limit = 0.8;
  const auto problems = validate(config);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].field == "data.speaking_rate_limit");
  // Under 10 clips no median is trusted: the tiny corpus alone loses none.
  config.data.speaking_rate_limit = 1.6;
  CHECK(prepare_corpus(config, processor, tiny_corpus(), cache).report.usable == 8);
  fs::remove_all(root);
  fs::remove_all(cache);
}

TEST_CASE("a TextGrid a little longer than its audio aligns, one far longer is a mismatch") {
  const auto root = test::scratch_dir("tts-long-grids");
  const auto ids = copy_of_tiny_corpus(root);
  // Clip 0's grid ends 40 ms after its audio, clip 1's 2 s after: the last
  // interval of each tier (silence) and the grid are stretched.
  const auto stretch = [&](const std::string& id, double seconds) {
    const auto path = root / "TextGrid" / (id + ".TextGrid");
    auto grid = read_textgrid(path);
    grid.xmax += seconds;
    for (auto& tier : grid.tiers) tier.intervals.back().end += seconds;
    write_textgrid(grid, path);
  };
  const EnglishPhonemeProcessor processor;
  const auto before_cache = test::scratch_dir("tts-long-grids-before");
  const auto before = prepare_corpus(corpus_config(), processor, root, before_cache);
  stretch(ids[0], 0.040);
  stretch(ids[1], 2.0);
  const auto cache = test::scratch_dir("tts-long-grids-cache");
  const auto corpus = prepare_corpus(corpus_config(), processor, root, cache);
  const auto& r = corpus.report;
  CHECK(r.usable == 7);
  CHECK(r.aligned == 7);
  CHECK(r.skipped.at("alignment mismatch") == 1);
  const auto message = std::find_if(r.messages.begin(), r.messages.end(), [&](const auto& m) {
    return m.find(ids[1] + ".TextGrid") != std::string::npos;
  });
  REQUIRE(message != r.messages.end());
  CHECK(message->find("but the audio lasts") != std::string::npos);
  CHECK(message->find("(+2000 ms, over data.alignment_tolerance_ms = 100)") != std::string::npos);
  // The 40 ms clip's extra time was its final silence's: every token keeps
  // the frames it had before the stretch, and they still sum to the mel's.
  const auto durations_of = [&](const PreparedCorpus& c, const std::string& id) {
    for (const auto* split : {&c.train, &c.validation}) {
      for (const auto& clip : *split) {
        if (clip.id == id) return TtsData::load(clip).durations;
      }
    }
    FAIL("clip " << id << " not prepared");
    return torch::Tensor();
  };
  const auto stretched = durations_of(corpus, ids[0]);
  CHECK(torch::equal(stretched, durations_of(before, ids[0])));
  for (const auto& clip : corpus.train) {
    const auto item = TtsData::load(clip);
    CHECK(item.durations.sum().item<std::int64_t>() == clip.frames);
  }
  fs::remove_all(root);
  fs::remove_all(cache);
  fs::remove_all(before_cache);
}

/// The tiny corpus with its phone tiers rewritten in `notation`, prepared
/// with both phoneme sets: {espeak report, arpabet report}.
std::pair<CorpusReport, CorpusReport> reports_with_grids(english_tts::GridPhones notation,
                                                         const std::string& name) {
  const auto root = test::scratch_dir("tts-" + name + "-grids");
  fs::copy(tiny_corpus(), root, fs::copy_options::recursive);
  CHECK(english_tts::rewrite_phone_tiers(root, notation) == 8);
  const auto cache = test::scratch_dir("tts-" + name + "-cache");
  const EnglishPhonemeProcessor espeak;
  auto with_espeak = prepare_corpus(corpus_config(), espeak, root, cache).report;
  auto config = corpus_config();
  config.data.phoneme_set = "arpabet";
  const auto arpabet = EnglishPhonemeProcessor::for_phoneme_set("arpabet");
  auto with_arpabet = prepare_corpus(config, arpabet, root, cache).report;
  // Read back from the cache, the report says the same past its first line.
  const auto past_first_line = [](const std::string& text) { return text.substr(text.find('\n')); };
  CHECK(past_first_line(prepare_corpus(config, arpabet, root, cache).report.summary()) ==
        past_first_line(with_arpabet.summary()));
  MESSAGE(with_espeak.summary());
  MESSAGE(with_arpabet.summary());
  fs::remove_all(root);
  fs::remove_all(cache);
  return {std::move(with_espeak), std::move(with_arpabet)};
}

TEST_CASE("ARPAbet grids from the CMU lexicon align with espeak tokens, and exactly with arpabet") {
  const auto [with_espeak, with_arpabet] =
      reports_with_grids(english_tts::GridPhones::arpabet, "arpabet");
  // espeak-ng's phonemes against CMUdict's: another G2P, paired by similarity.
  CHECK(with_espeak.usable == 8);
  CHECK(with_espeak.aligned == 8);
  CHECK(with_espeak.mean_match_score() > 0.8);
  CHECK(with_espeak.mean_match_score() < 1.0);
  // The same lexicon on both sides: every phone pairs with its own token.
  CHECK(with_arpabet.aligned == 8);
  CHECK(with_arpabet.mean_match_score() >= 0.98);
  CHECK(with_arpabet.mean_exact_share() >= 0.98);
  CHECK(with_espeak.mean_exact_share() < with_arpabet.mean_exact_share());
  CHECK(with_arpabet.summary().find("% of phones paired with the same sound") != std::string::npos);
}

TEST_CASE("MFA-style IPA grids (espeak-ng's own IPA) align with both phoneme sets") {
  // The IPA comes from espeak-ng, not from kokoro's phone table: a check that
  // the table reads espeak-ng's mnemonics as espeak-ng itself writes them.
  const auto [with_espeak, with_arpabet] = reports_with_grids(english_tts::GridPhones::ipa, "ipa");
  CHECK(with_espeak.aligned == 8);
  CHECK(with_espeak.mean_match_score() >= 0.95);
  // ARPAbet tokens against IPA grids: no label is shared, only the sounds.
  CHECK(with_arpabet.aligned == 8);
  CHECK(with_arpabet.mean_match_score() > 0.85);
  CHECK(with_arpabet.unknown_symbols.empty());
}

TEST_CASE("TtsData serves every training clip each epoch and the validation clips once") {
  const auto cache = test::scratch_dir("tts-data-cache");
  const EnglishPhonemeProcessor processor;
  const auto config = corpus_config();
  TtsData data(prepare_corpus(config, processor, tiny_corpus(), cache), config);
  for (const std::int64_t epoch : {0, 1}) {
    std::multiset<std::string> seen;
    std::int64_t batches = 0;
    for (const auto& batch : data.train(epoch)) {
      ++batches;
      CHECK(batch.size() <= 3);
      CHECK(batch.durations.sum(1).equal(batch.mel_lengths));
      seen.insert(batch.ids.begin(), batch.ids.end());
    }
    CHECK(batches == 2);
    CHECK(seen.size() == 6);
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 6);
  }
  std::int64_t valid = 0;
  for (const auto& batch : data.validation()) valid += batch.size();
  CHECK(valid == 2);
  // Validation keeps to data.max_frames_per_batch as training does: a cap
  // the two clips do not fit under together gives a batch each.
  std::int64_t longest = 0;
  for (const auto& clip : data.corpus().validation) longest = std::max(longest, clip.frames);
  auto capped = config;
  capped.data.max_frames_per_batch = longest;
  TtsData capped_data(prepare_corpus(capped, processor, tiny_corpus(), cache), capped);
  std::int64_t batches = 0;
  valid = 0;
  for (const auto& batch : capped_data.validation()) {
    ++batches;
    valid += batch.size();
    CHECK(static_cast<std::int64_t>(batch.size()) * batch.mel_lengths.max().item<std::int64_t>() <=
          longest);
  }
  CHECK(batches == 2);
  CHECK(valid == 2);
  fs::remove_all(cache);
}

TEST_CASE("feature preparation tells its progress and always its end") {
  const auto cache = test::scratch_dir("tts-progress");
  const EnglishPhonemeProcessor processor;
  const auto config = corpus_config();
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  const CorpusProgress progress{
      .report = [&](std::size_t done, std::size_t total) { calls.emplace_back(done, total); },
      .interval = std::chrono::milliseconds(1)};
  prepare_corpus(config, processor, tiny_corpus(), cache, progress);
  REQUIRE_FALSE(calls.empty());
  CHECK(calls.back() == std::pair<std::size_t, std::size_t>{8, 8});
  for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i].first >= calls[i - 1].first);
  // All from the cache the second time: the end is still told.
  calls.clear();
  prepare_corpus(config, processor, tiny_corpus(), cache, progress);
  CHECK(calls.back() == std::pair<std::size_t, std::size_t>{8, 8});
  fs::remove_all(cache);
}
