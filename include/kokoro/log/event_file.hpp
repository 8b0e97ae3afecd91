// TensorBoard's event-file format, written by hand: Debian packages no
// TensorBoard .proto files, and a few fields of the protobuf wire format are
// less than a protoc step in every consumer's build. A file of records `u64 length | u32 masked
// crc32c(length) | data | u32 masked crc32c(data)` (little-endian), each data an `Event` message:
// wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary { repeated Value value = 1 }). Value: tag = 1,
// simple_value = 2 (float), image = 4, histo = 5, audio = 6, tensor = 8,
// metadata = 9.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "kokoro/core/media.hpp"
#include "kokoro/log/png.hpp"
#include "kokoro/util/append_file.hpp"
#include "kokoro/util/crc32.hpp"
#include "kokoro/util/endian.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/wav.hpp"

namespace kokoro {

namespace detail {

/// Protocol-buffer wire format, just what Event needs.
class ProtoWriter {
 public:
  ProtoWriter& varint_field(int field, std::uint64_t value) {
    key(field, 0);
    varint(value);
    return *this;
  }
  ProtoWriter& double_field(int field, double value) {
    key(field, 1);
    little_endian(value);
    return *this;
  }
  ProtoWriter& float_field(int field, float value) {
    key(field, 5);
    little_endian(value);
    return *this;
  }
  ProtoWriter& bytes_field(int field, std::string_view bytes) {
    key(field, 2);
    varint(bytes.size());
    out_.append(bytes);
    return *this;
  }
  ProtoWriter& message_field(int field, const ProtoWriter& message) {
    return bytes_field(field, message.bytes());
  }
  /// A packed `repeated double`.
  ProtoWriter& packed_doubles_field(int field, const std::vector<double>& values) {
    key(field, 2);
    varint(values.size() * sizeof(double));
    for (const double v : values) little_endian(v);
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  void key(int field, int wire_type) {
    varint((static_cast<std::uint64_t>(field) << 3) | wire_type);
  }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  template <class T>
  void little_endian(T value) {
    append_le(out_, value);
  }

  std::string out_;
};

inline std::uint32_t masked_crc32c(std::string_view bytes) {
  const std::uint32_t crc = Crc32c().update(bytes).value();
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace detail

/// Appends events to one TensorBoard event file.
class EventFileWriter {
 public:
  /// Names `<dir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.0`,
  /// the name W&B's TensorBoard sync recognises, and queues the file-version
  /// event; the folder and the file are made by the first flush().
  explicit EventFileWriter(const std::filesystem::path& dir, double wall_time) {
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    file_ = AppendFile(dir / fmt::format("events.out.tfevents.{}.{}.{}.0",
                                         static_cast<std::int64_t>(wall_time), host, ::getpid()));
    detail::ProtoWriter event;
    event.double_field(1, wall_time).bytes_field(3, "brain.Event:2");
    write_record(event.bytes());
  }

  const std::filesystem::path& path() const { return file_.path(); }

  /// Bytes of events waiting for a flush (after a failed one, up to kMaxPending).
  std::size_t pending_bytes() const { return pending_.size(); }
  /// Events dropped because writes kept failing past kMaxPending.
  std::int64_t dropped_bytes() const { return dropped_; }
  static constexpr std::size_t kMaxPending = 8u << 20;

  /// One scalar at a step.
  void add_scalar(std::string_view tag, double value, std::int64_t step, double wall_time) {
    detail::ProtoWriter v;
    v.bytes_field(1, tag).float_field(2, static_cast<float>(value));
    write_summary(v, step, wall_time);
  }

  /// Text for the TensorBoard text plugin (rendered as Markdown).
  void add_text(std::string_view tag, std::string_view text, std::int64_t step, double wall_time) {
    detail::ProtoWriter plugin;
    plugin.bytes_field(1, "text");
    detail::ProtoWriter metadata;
    metadata.message_field(1, plugin);
    detail::ProtoWriter shape;  // a scalar string tensor: no dimensions
    detail::ProtoWriter tensor;
    tensor.varint_field(1, 7 /* DT_STRING */).message_field(2, shape).bytes_field(8, text);
    detail::ProtoWriter v;
    v.bytes_field(1, tag).message_field(9, metadata).message_field(8, tensor);
    write_summary(v, step, wall_time);
  }

  /// An image, stored as PNG (Summary.Image: height 1, width 2, colorspace 3,
  /// encoded_image_string 4), under its tag; an empty one is left out.
  void add_image(const Image& image, std::int64_t step, double wall_time) {
    if (image.width <= 0 || image.height <= 0) return;  // nothing to show
    detail::ProtoWriter encoded;
    encoded.varint_field(1, static_cast<std::uint64_t>(image.height))
        .varint_field(2, static_cast<std::uint64_t>(image.width))
        .varint_field(3, static_cast<std::uint64_t>(image.channels))
        .bytes_field(4, encode_png(image));
    detail::ProtoWriter v;
    v.bytes_field(1, image.tag).message_field(4, encoded);
    write_summary(v, step, wall_time);
  }

  /// A clip, stored as 16-bit WAV (Summary.Audio: sample_rate 1, num_channels 2,
  /// length_frames 3, encoded_audio_string 4, content_type 5).
  void add_audio(const AudioClip& clip, std::int64_t step, double wall_time) {
    detail::ProtoWriter encoded;
    encoded.float_field(1, static_cast<float>(clip.sample_rate))
        .varint_field(2, 1)
        .varint_field(3, clip.samples.size())
        .bytes_field(4, encode_wav(clip.samples, clip.sample_rate))
        .bytes_field(5, "audio/wav");
    detail::ProtoWriter v;
    v.bytes_field(1, clip.tag).message_field(6, encoded);
    write_summary(v, step, wall_time);
  }

  /// A histogram (HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5,
  /// bucket_limit 6, bucket 7).
  void add_histogram(const Histogram& h, std::int64_t step, double wall_time) {
    if (h.bucket_counts.empty()) return;  // nothing finite to show
    detail::ProtoWriter histo;
    histo.double_field(1, h.min)
        .double_field(2, h.max)
        .double_field(3, h.count)
        .double_field(4, h.sum)
        .double_field(5, h.sum_squares)
        .packed_doubles_field(6, h.bucket_limits)
        .packed_doubles_field(7, h.bucket_counts);
    detail::ProtoWriter v;
    v.bytes_field(1, h.tag).message_field(5, histo);
    write_summary(v, step, wall_time);
  }

  /// Writes the queued events as one append: all of them or none (see
  /// AppendFile). Throws kokoro::Error when it cannot; they stay queued for the
  /// next flush, until more than kMaxPending bytes wait (then they are
  /// dropped and counted).
  void flush() {
    if (pending_.empty()) return;
    try {
      file_.append(pending_);
      pending_.clear();
    } catch (const Error&) {
      if (pending_.size() > kMaxPending) {
        dropped_ += static_cast<std::int64_t>(pending_.size());
        pending_.clear();
      }
      throw;
    }
  }

 private:
  void write_summary(const detail::ProtoWriter& value, std::int64_t step, double wall_time) {
    detail::ProtoWriter summary;
    summary.message_field(1, value);
    detail::ProtoWriter event;
    event.double_field(1, wall_time)
        .varint_field(2, static_cast<std::uint64_t>(step))
        .message_field(5, summary);
    write_record(event.bytes());
  }

  void write_record(const std::string& data) {
    std::string record;
    record.reserve(data.size() + 16);
    append_le<std::uint64_t>(record, data.size());
    append_le(record, detail::masked_crc32c(record));
    record += data;
    append_le(record, detail::masked_crc32c(data));
    pending_ += record;
  }

  AppendFile file_;
  std::string pending_;  // whole records, written by flush()
  std::int64_t dropped_ = 0;
};

}  // namespace kokoro
