// The file loggers: metrics.jsonl rows, and TensorBoard event files checked
// by a reader written here from the format's description (its own CRC-32C,
// its own protobuf decoding), not by the writer's code.
#include <doctest/doctest.h>

#include <kokoro/log/jsonl_logger.hpp>
#include <kokoro/log/media.hpp>
#include <kokoro/log/png.hpp>
#include <kokoro/log/sample_file_logger.hpp>
#include <kokoro/log/tensorboard_logger.hpp>
#include <kokoro/util/endian.hpp>
#include <kokoro/util/wav.hpp>

#include <zlib.h>

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "test_tasks.hpp"

using namespace kokoro;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) { return test::scratch_dir(name); }

// ---- an independent event-file reader ------------------------------------

std::uint32_t crc32c_bitwise(const char* data, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= static_cast<unsigned char>(data[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::uint32_t masked(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

struct Field {
  int number;
  int wire;
  std::uint64_t integer = 0;  // varint, fixed32 and fixed64 bits
  std::string bytes;          // length-delimited
};

std::vector<Field> decode(const std::string& message) {
  std::vector<Field> fields;
  std::size_t i = 0;
  auto varint = [&] {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const auto b = static_cast<unsigned char>(message.at(i++));
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < message.size()) {
    const auto key = varint();
    Field f{static_cast<int>(key >> 3), static_cast<int>(key & 7), 0, {}};
    if (f.wire == 0) {
      f.integer = varint();
    } else if (f.wire == 1 || f.wire == 5) {
      const int n = f.wire == 1 ? 8 : 4;
      std::memcpy(&f.integer, message.data() + i, n);
      i += n;
    } else if (f.wire == 2) {
      const auto n = varint();
      f.bytes = message.substr(i, n);
      i += n;
    } else {
      FAIL("unexpected wire type " << f.wire);
    }
    fields.push_back(f);
  }
  return fields;
}

const Field* find(const std::vector<Field>& fields, int number) {
  for (const auto& f : fields) {
    if (f.number == number) return &f;
  }
  return nullptr;
}

struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  std::vector<std::vector<Field>> values;  // Summary.Value messages
};

std::vector<Event> read_events(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  std::size_t at = 0;
  while (at < file.size()) {
    REQUIRE(at + 12 <= file.size());
    std::uint64_t length = 0;
    std::memcpy(&length, file.data() + at, 8);
    std::uint32_t header_crc = 0;
    std::memcpy(&header_crc, file.data() + at + 8, 4);
    CHECK(header_crc == masked(crc32c_bitwise(file.data() + at, 8)));
    const std::string data = file.substr(at + 12, length);
    std::uint32_t data_crc = 0;
    std::memcpy(&data_crc, file.data() + at + 12 + length, 4);
    CHECK(data_crc == masked(crc32c_bitwise(data.data(), data.size())));
    at += 12 + length + 4;

    Event e;
    const auto fields = decode(data);
    if (const auto* f = find(fields, 1)) std::memcpy(&e.wall_time, &f->integer, 8);
    if (const auto* f = find(fields, 2)) e.step = static_cast<std::int64_t>(f->integer);
    if (const auto* f = find(fields, 3)) e.file_version = f->bytes;
    if (const auto* f = find(fields, 5)) {
      for (const auto& v : decode(f->bytes)) {
        if (v.number == 1) e.values.push_back(decode(v.bytes));
      }
    }
    events.push_back(e);
  }
  return events;
}

/// The Summary.Value messages whose tag is `tag`, with their event's step.
std::vector<std::pair<std::int64_t, std::vector<Field>>> values_tagged(
    const std::vector<Event>& events, const std::string& tag) {
  std::vector<std::pair<std::int64_t, std::vector<Field>>> out;
  for (const auto& e : events) {
    for (const auto& v : e.values) {
      if (const auto* t = find(v, 1); t && t->bytes == tag) out.emplace_back(e.step, v);
    }
  }
  return out;
}

double as_double(const Field& f) {
  double d = 0;
  std::memcpy(&d, &f.integer, 8);
  return d;
}

std::vector<double> packed_doubles(const Field& f) {
  std::vector<double> out(f.bytes.size() / 8);
  std::memcpy(out.data(), f.bytes.data(), out.size() * 8);
  return out;
}

std::uint32_t big_endian_u32(const std::string& s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) |
         (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

/// A PNG read with zlib's own CRC-32 and inflate: width, height, colour
/// type and the unfiltered pixel rows.
struct DecodedPng {
  std::uint32_t width = 0, height = 0;
  int colour_type = -1;
  std::string pixels;
};

DecodedPng decode_png(const std::string& file) {
  DecodedPng png;
  REQUIRE(file.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  std::size_t at = 8;
  while (at < file.size()) {
    const auto length = big_endian_u32(file, at);
    const std::string type = file.substr(at + 4, 4);
    const std::string data = file.substr(at + 8, length);
    const auto crc = crc32(crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4),
                           reinterpret_cast<const Bytef*>(data.data()), length);
    CHECK(big_endian_u32(file, at + 8 + length) == crc);
    if (type == "IHDR") {
      png.width = big_endian_u32(data, 0);
      png.height = big_endian_u32(data, 4);
      CHECK(data[8] == 8);  // bit depth
      png.colour_type = data[9];
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + length;
  }
  const int channels = png.colour_type == 2   ? 3
                       : png.colour_type == 6 ? 4
                       : png.colour_type == 4 ? 2
                                              : 1;
  const std::size_t row = png.width * channels;
  std::string raw((row + 1) * png.height, '\0');
  uLongf raw_size = raw.size();
  REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size,
                     reinterpret_cast<const Bytef*>(idat.data()), idat.size()) == Z_OK);
  REQUIRE(raw_size == raw.size());
  // Undo each row's filter (PNG spec, section 9): 0 none, 1 sub, 2 up,
  // 3 average, 4 Paeth; `a` is the byte one pixel left, `b` the byte above.
  std::vector<std::uint8_t> previous(row, 0), current(row);
  for (std::uint32_t y = 0; y < png.height; ++y) {
    const int filter = raw[y * (row + 1)];
    REQUIRE(filter >= 0);
    REQUIRE(filter <= 4);
    for (std::size_t x = 0; x < row; ++x) {
      const int in = std::uint8_t(raw[y * (row + 1) + 1 + x]);
      const int a = x >= std::size_t(channels) ? current[x - channels] : 0;
      const int b = previous[x];
      const int c = x >= std::size_t(channels) ? previous[x - channels] : 0;
      int predictor = 0;
      if (filter == 1) predictor = a;
      if (filter == 2) predictor = b;
      if (filter == 3) predictor = (a + b) / 2;
      if (filter == 4) {
        const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      current[x] = std::uint8_t(in + predictor);
    }
    png.pixels.append(reinterpret_cast<const char*>(current.data()), row);
    previous = current;
  }
  return png;
}

std::map<std::string, std::vector<std::pair<std::int64_t, float>>> scalars(
    const std::vector<Event>& events) {
  std::map<std::string, std::vector<std::pair<std::int64_t, float>>> out;
  for (const auto& e : events) {
    for (const auto& v : e.values) {
      const auto* tag = find(v, 1);
      const auto* simple = find(v, 2);
      if (!tag || !simple) continue;
      float value = 0;
      std::memcpy(&value, &simple->integer, 4);
      out[tag->bytes].emplace_back(e.step, value);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("numbers are written least significant byte first and read back") {
  std::string bytes;
  append_le<std::uint32_t>(bytes, 0x11223344u);
  append_le<std::int16_t>(bytes, -2);
  append_le(bytes, 1.5);
  CHECK(bytes.substr(0, 6) == std::string("\x44\x33\x22\x11\xfe\xff", 6));
  std::size_t at = 0;
  CHECK(read_le<std::uint32_t>(bytes, at) == 0x11223344u);
  CHECK(read_le<std::int16_t>(bytes, at) == -2);
  CHECK(read_le<double>(bytes, at) == 1.5);
  CHECK(at == bytes.size());
}

TEST_CASE("the test's CRC-32C agrees with the check value") {
  CHECK(crc32c_bitwise("123456789", 9) == 0xE3069283u);
}

TEST_CASE("TensorBoard files hold the version event, scalars and the config as text") {
  const auto dir = scratch("tb");
  const auto config = get_default_config();
  {
    TensorBoardLogger logger(dir);
    logger.on_train_begin(test::run_context(config, "cpu", "float32", 10, 1, 0, 2, 0));
    Metrics m;
    m.set("loss", 0.5);
    m.set("lr", 1e-4);
    logger.on_step(StepContext{.epoch = 0,
                               .global_step = 10,
                               .step_in_epoch = 10,
                               .steps_per_epoch = 20,
                               .samples = 8,
                               .step_taken = true,
                               .metrics = m});
    m.set("loss", 0.25);
    logger.on_step(StepContext{.epoch = 0,
                               .global_step = 20,
                               .step_in_epoch = 20,
                               .steps_per_epoch = 20,
                               .samples = 8,
                               .step_taken = true,
                               .metrics = m});
    Metrics valid;
    valid.set("loss", 0.3);
    logger.on_epoch_end(EpochContext{
        .epoch = 0, .global_step = 20, .train = m, .validation = valid, .seconds = 1.0});
  }
  std::vector<fs::path> files(fs::directory_iterator(dir), fs::directory_iterator{});
  REQUIRE(files.size() == 1);
  const auto name = files[0].filename().string();
  std::smatch match;
  REQUIRE(std::regex_match(name, match, std::regex(R"(events\.out\.tfevents\.(\d+)\..+\.\d+\.0)")));
  CHECK(std::stoll(match[1]) > 1'600'000'000);  // real Unix seconds, as W&B's sync needs

  const auto events = read_events(files[0]);
  REQUIRE(events.size() == 9);  // version, config, 2 + 2 step scalars, 2 + 1 epoch scalars
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].wall_time > 1.6e9);
  const auto s = scalars(events);
  REQUIRE(s.count("train/loss") == 1);
  CHECK(s.at("train/loss") == std::vector<std::pair<std::int64_t, float>>{{10, 0.5f}, {20, 0.25f}});
  CHECK(s.at("train/lr").front().second == doctest::Approx(1e-4));
  CHECK(s.at("epoch/validation/loss") == std::vector<std::pair<std::int64_t, float>>{{20, 0.3f}});
  CHECK(s.at("epoch/train/loss").front().first == 20);

  // The config: a text-plugin value with a string tensor.
  const auto& config_value = events[1].values.at(0);
  CHECK(find(config_value, 1)->bytes == "config");
  const auto metadata = decode(find(config_value, 9)->bytes);
  CHECK(find(decode(find(metadata, 1)->bytes), 1)->bytes == "text");
  const auto tensor = decode(find(config_value, 8)->bytes);
  CHECK(find(tensor, 1)->integer == 7);  // DT_STRING
  CHECK(find(tensor, 8)->bytes.find("    training:") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("images are encoded as PNG that zlib reads back pixel for pixel") {
  Image image{.tag = "grid", .height = 3, .width = 5, .channels = 3, .pixels = {}};
  for (int i = 0; i < 3 * 5 * 3; ++i) image.pixels.push_back(static_cast<std::uint8_t>(i * 17));
  const auto png = decode_png(encode_png(image));
  CHECK(png.width == 5);
  CHECK(png.height == 3);
  CHECK(png.colour_type == 2);
  CHECK(png.pixels == std::string(image.pixels.begin(), image.pixels.end()));

  Image grey{.tag = "grey", .height = 2, .width = 2, .channels = 1, .pixels = {0, 64, 128, 255}};
  CHECK(decode_png(encode_png(grey)).colour_type == 0);
  Image grey_alpha{
      .tag = "grey_alpha", .height = 1, .width = 2, .channels = 2, .pixels = {10, 20, 30, 40}};
  CHECK(decode_png(encode_png(grey_alpha)).colour_type == 4);
  CHECK(decode_png(encode_png(grey_alpha)).pixels == std::string("\x0a\x14\x1e\x28", 4));

  // A smooth RGBA gradient, on which libpng filters its rows (sub, up,
  // average, Paeth): the decoder above undoes them and gets every pixel back.
  Image smooth{.tag = "smooth", .height = 48, .width = 64, .channels = 4, .pixels = {}};
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 4; ++c) smooth.pixels.push_back(std::uint8_t(x * 3 + y * 2 + c * 40));
  const auto decoded = decode_png(encode_png(smooth));
  CHECK(decoded.colour_type == 6);
  CHECK(decoded.pixels == std::string(smooth.pixels.begin(), smooth.pixels.end()));
  Image wrong{.tag = "wrong", .height = 2, .width = 2, .channels = 3, .pixels = {1, 2, 3}};
  CHECK_THROWS_WITH_AS(encode_png(wrong), doctest::Contains("image 'wrong'"), Error);
}

TEST_CASE("audio is encoded as 16-bit mono WAV, clipped to full scale") {
  const AudioClip clip{
      .tag = "tone", .sample_rate = 16000, .samples = {0.0f, 0.5f, -1.0f, 2.0f, std::nanf("")}};
  const auto wav = encode_wav(clip.samples, clip.sample_rate);
  REQUIRE(wav.size() == 44 + 2 * 5);
  CHECK(wav.substr(0, 4) == "RIFF");
  CHECK(wav.substr(8, 8) == "WAVEfmt ");
  std::uint32_t riff_size = 0, rate = 0, data_size = 0;
  std::uint16_t format = 0, channels = 0, bits = 0;
  std::memcpy(&riff_size, wav.data() + 4, 4);
  std::memcpy(&format, wav.data() + 20, 2);
  std::memcpy(&channels, wav.data() + 22, 2);
  std::memcpy(&rate, wav.data() + 24, 4);
  std::memcpy(&bits, wav.data() + 34, 2);
  std::memcpy(&data_size, wav.data() + 40, 4);
  CHECK(riff_size == wav.size() - 8);
  CHECK(format == 1);
  CHECK(channels == 1);
  CHECK(rate == 16000);
  CHECK(bits == 16);
  CHECK(wav.substr(36, 4) == "data");
  CHECK(data_size == 10);
  std::int16_t s[5];
  std::memcpy(s, wav.data() + 44, 10);
  CHECK(s[0] == 0);
  CHECK(s[1] == 16384);  // 0.5 * 32767 rounded
  CHECK(s[2] == -32767);
  CHECK(s[3] == 32767);  // clipped
  CHECK(s[4] == 0);      // NaN is silence
}

TEST_CASE("histograms count every finite value between the min and the max") {
  const auto values = torch::tensor(
      {0.0, 1.0, 1.0, 2.0, 10.0, std::nan(""), std::numeric_limits<double>::infinity()});
  const auto h = histogram_of("w", values, 5);
  CHECK(h.min == 0.0);
  CHECK(h.max == 10.0);
  CHECK(h.count == 5);
  CHECK(h.sum == 14.0);
  CHECK(h.sum_squares == 106.0);
  REQUIRE(h.bucket_limits.size() == 5);
  CHECK(h.bucket_limits == std::vector<double>{2, 4, 6, 8, 10});
  CHECK(h.bucket_counts ==
        std::vector<double>{3, 1, 0, 0, 1});  // [0, 2) holds 0, 1, 1; [2, 4) holds 2
  const auto constant = histogram_of("c", torch::full({4}, 3.0), 5);
  CHECK(constant.bucket_counts == std::vector<double>{4});
  CHECK(histogram_of("empty", torch::tensor({NAN}), 5).bucket_counts.empty());
}

TEST_CASE("a spectrogram image has time to the right and the lowest bin at the bottom") {
  // 2 bins x 3 frames: the lowest value at bin 0, frame 0; the highest at bin 1, frame 2.
  const auto mel = torch::tensor({{-5.0, 0.0, 0.0}, {0.0, 0.0, 3.0}});
  const auto image = spectrogram_image("mel", mel);
  CHECK(image.height == 2);
  CHECK(image.width == 3);
  CHECK(image.channels == 3);
  auto pixel = [&](int y, int x) {
    const auto* p = &image.pixels[(y * image.width + x) * 3];
    return std::vector<int>{p[0], p[1], p[2]};
  };
  CHECK(pixel(1, 0) == std::vector<int>{68, 1, 84});     // bottom left: the minimum, dark
  CHECK(pixel(0, 2) == std::vector<int>{253, 231, 37});  // top right: the maximum, yellow
  CHECK_THROWS_AS(spectrogram_image("bad", torch::zeros({3})), Error);
}

TEST_CASE("TensorBoard files hold images, audio and histograms in the summary's fields") {
  const auto dir = scratch("tb-media");
  Media media;
  media.images.push_back(Image{
      .tag = "mel/predicted", .height = 2, .width = 2, .channels = 1, .pixels = {0, 85, 170, 255}});
  media.audio.push_back(AudioClip{
      .tag = "audio/sample", .sample_rate = 22050, .samples = std::vector<float>(441, 0.25f)});
  media.histograms.push_back(histogram_of("weights/w", torch::tensor({1.0, 2.0, 3.0}), 2));
  {
    TensorBoardLogger logger(dir);
    logger.on_media(MediaContext{.epoch = 3, .global_step = 42, .media = media});
  }
  std::vector<fs::path> files(fs::directory_iterator(dir), fs::directory_iterator{});
  REQUIRE(files.size() == 1);
  const auto events = read_events(files[0]);

  const auto images = values_tagged(events, "mel/predicted");
  REQUIRE(images.size() == 1);
  CHECK(images[0].first == 42);
  const auto image = decode(find(images[0].second, 4)->bytes);
  CHECK(find(image, 1)->integer == 2);  // height
  CHECK(find(image, 2)->integer == 2);  // width
  CHECK(find(image, 3)->integer == 1);  // colour space: grey
  CHECK(decode_png(find(image, 4)->bytes).pixels == std::string("\x00\x55\xaa\xff", 4));

  const auto clips = values_tagged(events, "audio/sample");
  REQUIRE(clips.size() == 1);
  const auto audio = decode(find(clips[0].second, 6)->bytes);
  float rate = 0;
  std::memcpy(&rate, &find(audio, 1)->integer, 4);
  CHECK(rate == 22050.0f);
  CHECK(find(audio, 2)->integer == 1);    // channels
  CHECK(find(audio, 3)->integer == 441);  // frames
  CHECK(find(audio, 4)->bytes.substr(0, 4) == "RIFF");
  CHECK(find(audio, 5)->bytes == "audio/wav");

  const auto histos = values_tagged(events, "weights/w");
  REQUIRE(histos.size() == 1);
  const auto histo = decode(find(histos[0].second, 5)->bytes);
  CHECK(as_double(*find(histo, 1)) == 1.0);   // min
  CHECK(as_double(*find(histo, 2)) == 3.0);   // max
  CHECK(as_double(*find(histo, 3)) == 3.0);   // count
  CHECK(as_double(*find(histo, 4)) == 6.0);   // sum
  CHECK(as_double(*find(histo, 5)) == 14.0);  // sum of squares
  CHECK(packed_doubles(*find(histo, 6)) == std::vector<double>{2.0, 3.0});
  CHECK(packed_doubles(*find(histo, 7)) == std::vector<double>{1.0, 2.0});
  fs::remove_all(dir);
}

TEST_CASE("metrics.jsonl has a row per logged step and per epoch") {
  const auto dir = scratch("jsonl");
  {
    JsonlLogger logger(dir / "metrics.jsonl");
    Metrics m;
    m.set("loss", 0.5);
    m.set("grad_norm", std::numeric_limits<double>::infinity());
    logger.on_step(StepContext{.epoch = 1,
                               .global_step = 7,
                               .step_in_epoch = 3,
                               .steps_per_epoch = 4,
                               .samples = 16,
                               .step_taken = false,
                               .metrics = m});
    Metrics none;
    logger.on_epoch_end(
        EpochContext{.epoch = 1, .global_step = 8, .train = m, .validation = none, .seconds = 2.5});
  }
  std::ifstream in(dir / "metrics.jsonl");
  std::vector<YAML::Node> rows;  // JSON is YAML: yaml-cpp parses each line
  for (std::string line; std::getline(in, line);) rows.push_back(YAML::Load(line));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["type"].as<std::string>() == "step");
  CHECK(rows[0]["global_step"].as<int>() == 7);
  CHECK(rows[0]["step_taken"].as<bool>() == false);
  CHECK(rows[0]["metrics"]["loss"].as<double>() == 0.5);
  CHECK(rows[0]["metrics"]["grad_norm"].IsNull());  // JSON has no infinity
  CHECK(rows[0]["time"].as<double>() > 1.6e9);
  CHECK(rows[1]["type"].as<std::string>() == "epoch");
  CHECK(rows[1]["seconds"].as<double>() == 2.5);
  CHECK(rows[1]["train"]["loss"].as<double>() == 0.5);
  CHECK(rows[1]["validation"].size() == 0);
  fs::remove_all(dir);
}

TEST_CASE("the default loggers write metrics.jsonl and TensorBoard files for a run") {
  const auto dir = scratch("run");
  auto config = test::quick_config();
  config.logging.output_dir = dir.string();
  config.logging.jsonl = true;
  config.logging.tensorboard = true;
  config.logging.log_every = 2;
  config.training.epochs = 2;
  struct Policies : DefaultPolicies {};
  Trainer<test::LinearTask, Policies> trainer(config);
  trainer.task().train = test::split(test::linear_data(8), {2, 2, 2, 2});
  trainer.fit();
  const auto run = trainer.run_directory();
  CHECK(run.parent_path() == dir);  // the run's own folder
  std::ifstream in(run / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  CHECK(lines == 2 * (2 + 1));  // per epoch: steps 2 and 4, then the epoch row
  std::vector<fs::path> files(fs::directory_iterator(run / "tensorboard"),
                              fs::directory_iterator{});
  REQUIRE(files.size() == 1);
  const auto events = read_events(files[0]);
  CHECK(scalars(events).at("train/loss").size() == 4);
  // Every epoch (media_every_epochs: 1): a histogram of each weight and gradient.
  std::map<std::string, int> histograms;
  for (const auto& e : events) {
    for (const auto& v : e.values) {
      if (find(v, 5)) ++histograms[find(v, 1)->bytes];
    }
  }
  CHECK(histograms.size() == 4);  // weight and bias, their gradients
  for (const auto& [tag, count] : histograms) {
    CHECK(count == 2);
    CHECK((tag.rfind("weights/", 0) == 0 || tag.rfind("grads/", 0) == 0));
  }
  fs::remove_all(dir);
}

// ---- the interbatch profiler -----------------------------------------------

TEST_CASE("a bundle without a profiler gets NoProfiler, which is compiled away") {
  static_assert(!NoProfiler::enabled);
  static_assert(
      std::is_same_v<Trainer<test::LinearTask, test::SpyPolicies>::Profiler, InterbatchProfiler>);
  struct Bare {
    using device = CpuDevice;
    using scaler = NoGradScaler;
    using memory = NoMemoryPolicy;
    using scheduler = ConstantLR;
    using logger = archetype::Logger;
    using checkpoints = CheckpointManager;
  };
  static_assert(std::is_same_v<Trainer<test::LinearTask, Bare>::Profiler, NoProfiler>);
  Trainer<test::LinearTask, Bare> trainer(test::quick_config());
  trainer.task().train = test::split(test::linear_data(4), {2, 2});
  CHECK(trainer.fit().global_step == 2);
}

TEST_CASE("the profiler records nothing unless logging.profile is on") {
  Trainer<test::LinearTask, test::SpyPolicies> trainer(test::quick_config());
  trainer.task().train = test::split(test::linear_data(4), {2, 2});
  trainer.fit();
  CHECK(trainer.profiler().steps().empty());
}

TEST_CASE("the profiler's phases add up to the time the steps took") {
  const auto dir = scratch("profile");
  auto config = test::quick_config();
  config.logging.profile = true;
  config.logging.output_dir = dir.string();
  config.training.epochs = 3;
  // Steps of a few milliseconds, so that the fixed costs around them (setup,
  // the trace file) stay small next to them even on a loaded machine.
  struct SlowTask : test::LinearTask {
    using LinearTask::LinearTask;
    Loss loss(const Batch& b) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      return LinearTask::loss(b);
    }
  };
  Trainer<SlowTask, test::SpyPolicies> trainer(config);
  trainer.task().train = test::split(test::linear_data(64), std::vector<std::int64_t>(8, 8));
  const auto start = std::chrono::steady_clock::now();
  trainer.fit();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& steps = trainer.profiler().steps();
  REQUIRE(steps.size() == 24);
  double recorded = 0;
  for (const auto& step : steps) {
    for (double seconds : step) recorded += seconds;
    CHECK(step[static_cast<std::size_t>(Phase::forward)] > 0);
    CHECK(step[static_cast<std::size_t>(Phase::backward)] > 0);
    CHECK(step[static_cast<std::size_t>(Phase::optimizer)] > 0);
  }
  CHECK(recorded <= wall);
  CHECK(recorded >= 0.5 * wall);  // the rest: setup, banners, the trace file
  const auto summary = trainer.profiler().summary();
  double shares = 0;
  for (const auto& p : summary.phases) shares += p.share;
  CHECK(shares == doctest::Approx(1.0));
  CHECK(summary.step_ms == doctest::Approx(1e3 * recorded / 24).epsilon(1e-9));

  // The Chrome trace is JSON with one complete ("X") event per phase interval.
  const auto trace = YAML::LoadFile((trainer.run_directory() / "profile_trace.json").string());
  const auto events = trace["traceEvents"];
  REQUIRE(events.size() > 24 * 5);
  for (const auto& e : events) {
    CHECK(e["ph"].as<std::string>() == "X");
    CHECK(e["dur"].as<double>() >= 0);
  }
  fs::remove_all(dir);
}

TEST_CASE("the profile's verdict names what bounds the step") {
  ProfileSummary s;
  s.steps = 10;
  auto with = [&](double data, double h2d, double forward, double backward, double logging) {
    s.phases = {{Phase::data, 0, 0, 0, data},
                {Phase::h2d, 0, 0, 0, h2d},
                {Phase::forward, 0, 0, 0, forward},
                {Phase::backward, 0, 0, 0, backward},
                {Phase::logging, 0, 0, 0, logging}};
    return s.verdict();
  };
  CHECK(with(0.34, 0.01, 0.3, 0.3, 0.0) ==
        "input-bound: data wait 34% of step — raise data.num_workers");
  CHECK(with(0.05, 0.20, 0.3, 0.4, 0.0).starts_with("copy-bound: host-to-device 20% of step"));
  CHECK(with(0.0, 0.0, 0.4, 0.4, 0.08).starts_with("logging 8% of step"));
  CHECK(with(0.01, 0.01, 0.35, 0.5, 0.01) == "compute-bound: forward + backward 85% of step");
  CHECK(s.table().find("verdict: compute-bound") != std::string::npos);
}

TEST_CASE("the profiler's report reaches the run summary and names the trace") {
  const auto dir = scratch("profile-report");
  auto config = test::quick_config();
  config.logging.profile = true;
  config.logging.output_dir = dir.string();
  Trainer<test::LinearTask, test::SpyPolicies> trainer(config);
  trainer.task().train = test::split(test::linear_data(8), {4, 4});
  const auto summary = trainer.fit();
  CHECK(summary.profile_report.find("profile over 2 steps") != std::string::npos);
  CHECK(summary.profile_report.find("verdict: ") != std::string::npos);
  const auto trace = trainer.run_directory() / "profile_trace.json";
  CHECK(summary.profile_report.find(trace.string()) != std::string::npos);
  CHECK(fs::exists(trace));
  fs::remove_all(dir);
}

TEST_CASE("the sample file logger writes the samples/ media of an epoch and nothing else") {
  const auto dir = scratch("sample-files");
  SampleFileLogger logger(dir / "samples");
  Media media;
  media.images.push_back(Image{.tag = "samples/target mel",
                               .height = 2,
                               .width = 3,
                               .channels = 1,
                               .pixels = std::vector<std::uint8_t>(6, 7)});
  media.images.push_back(Image{
      .tag = "weights/w", .height = 1, .width = 1, .channels = 1, .pixels = {0}});  // not a sample
  media.audio.push_back(AudioClip{.tag = "samples/synthesized",
                                  .sample_rate = 16000,
                                  .samples = std::vector<float>(160, 0.1f)});
  media.audio.push_back(AudioClip{
      .tag = "samples/empty", .sample_rate = 16000, .samples = {}});  // nothing to hear: no file
  media.texts.push_back(Text{.tag = "samples/text", .text = "LJ001-0001: printing"});
  logger.on_media(MediaContext{.epoch = 4, .global_step = 9, .media = media});
  const auto stem = dir / "samples" / "epoch_0005_";
  CHECK(logger.last_written() == std::vector<fs::path>{stem.string() + "target_mel.png",
                                                       stem.string() + "synthesized.wav",
                                                       stem.string() + "text.txt"});
  CHECK(std::distance(fs::directory_iterator(dir / "samples"), fs::directory_iterator{}) == 3);
  CHECK(fs::file_size(stem.string() + "synthesized.wav") == 44 + 2 * 160);
  std::ifstream text(stem.string() + "text.txt");
  std::string line;
  std::getline(text, line);
  CHECK(line == "LJ001-0001: printing");
  fs::remove_all(dir);
}

namespace {

/// A logger that keeps the Trainer's messages.
struct MessageSpy : test::SpyLogger {
  void on_message(const Message& m) { messages.push_back(m); }
  std::vector<Message> messages;
};

/// A task whose samples always fail.
struct BrokenSampleTask : test::LinearTask {
  using LinearTask::LinearTask;
  void media(Media&, std::int64_t) { throw Error("the vocoder fell over"); }
};

/// A task whose samples take 20 ms each, counted.
struct SlowSampleTask : test::LinearTask {
  using LinearTask::LinearTask;
  void media(Media&, std::int64_t) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int calls = 0;
};

}  // namespace

TEST_CASE("samples wait while they would take more than logging.media_max_share of the run") {
  const auto dir = scratch("media-share");
  for (const double share : {1.0, 0.01}) {
    auto config = test::quick_config();
    config.training.epochs = 10;
    config.logging.output_dir = dir.string();
    config.logging.checkpoints = true;
    config.logging.overwrite = true;
    config.logging.run_name = "share";
    config.logging.media_every_epochs = 1;
    config.logging.media_max_share = share;
    Trainer<SlowSampleTask, test::SpyPolicies> trainer(config);
    trainer.task().train = test::split(test::linear_data(8), {4, 4});
    CHECK(trainer.fit().epochs_completed == 10);
    if (share == 1.0) {
      CHECK(trainer.task().calls == 10);  // no limit: every epoch
    } else {
      // The first samples go out, and the last epoch's; between them the
      // next would need the toy to train for 4 s (0.04 s of samples at
      // most 1% of the run), and it trains in milliseconds.
      CHECK(trainer.task().calls == 2);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("a task whose samples fail is reported and its run trains on and saves") {
  const auto dir = scratch("broken-samples");
  auto config = test::quick_config();
  config.training.epochs = 3;
  config.logging.output_dir = dir.string();
  config.logging.checkpoints = true;
  struct Policies : test::SpyPolicies {
    using logger = MessageSpy;
  };
  Trainer<BrokenSampleTask, Policies> trainer(config);
  trainer.task().train = test::split(test::linear_data(8), {4, 4});
  const auto summary = trainer.fit();
  CHECK(summary.epochs_completed == 3);
  CHECK(fs::exists(trainer.run_directory() / "checkpoints" / "final.pt"));
  std::vector<std::string> warnings;
  for (const auto& m : trainer.logger().messages) {
    if (m.level == Message::Level::warning) warnings.push_back(m.text);
  }
  // Reported once with its cause, counted every time.
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "epoch 1's samples failed and training goes on: the vocoder fell over");
  CHECK(summary.side_task_failures == 3);
  CHECK(trainer.side_task_failures() == 3);
  fs::remove_all(dir);
}

TEST_CASE("resumes and fresh starts are told to the loggers, the console shows them") {
  const auto dir = scratch("messages");
  auto config = test::quick_config();
  config.logging.output_dir = dir.string();
  config.logging.checkpoints = true;
  config.training.resume = "auto";
  struct Policies : test::SpyPolicies {
    using logger = MessageSpy;
  };
  {
    Trainer<test::LinearTask, Policies> fresh(config);
    const auto& messages = fresh.logger().messages;
    REQUIRE(messages.size() == 2);
    CHECK(messages[0].text == fmt::format("no earlier run in {}; starting a new run {}",
                                          dir.string(), fresh.config().logging.run_name));
    CHECK(messages[1].text ==
          fmt::format("no valid checkpoint to resume from in {}; starting fresh",
                      fresh.run_directory().string()));
  }
  config.logging.checkpoint_every_steps = 1;
  fs::path first_run;
  {
    Trainer<test::LinearTask, Policies> first(config);
    first.task().train = test::split(test::linear_data(4), {4});
    first.fit();
    first_run = first.run_directory();
  }
  Trainer<test::LinearTask, Policies> resumed(config);
  const auto& messages = resumed.logger().messages;
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].text == fmt::format("resuming the latest run in {}: {}", dir.string(),
                                        first_run.filename().string()));
  CHECK(messages[1].level == Message::Level::info);
  CHECK(messages[1].text.starts_with("resumed from " + (first_run / "checkpoints").string()));

  std::ostringstream out;
  ConsoleLogger console(out);
  console.on_message(Message{.level = Message::Level::info, .text = "resumed from x"});
  console.on_message(Message{.level = Message::Level::warning, .text = "a logger failed"});
  CHECK(out.str() == "kokoro: resumed from x\nkokoro: warning: a logger failed\n");
  fs::remove_all(dir);
}
