// CRC-32 checksums, table-driven, for two polynomials: IEEE 802.3 (zlib's)
// and Castagnoli (CRC-32C, TensorBoard's record format). Check values:
// crc32("123456789") = 0xCBF43926, crc32c("123456789") = 0xE3069283.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kokoro {

/// A running CRC-32 with the reflected polynomial `Poly`.
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

using Crc32Ieee = Crc32<0xEDB88320u>;
using Crc32c = Crc32<0x82F63B78u>;

}  // namespace kokoro
