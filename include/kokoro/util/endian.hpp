// Little- and big-endian integers appended to a byte string: the one writer
// the file formats kokoro writes (WAV, PNG, TensorBoard records, the feature
// cache) share.
#pragma once

#include <bit>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

namespace kokoro {

/// `value`'s bytes, least significant first.
template <class T>
requires std::is_arithmetic_v<T>
void append_le(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) {
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(bytes[i], bytes[sizeof(T) - 1 - i]);
  }
  out.append(bytes, sizeof(T));
}

/// `value`'s bytes, most significant first.
template <class T>
requires std::is_arithmetic_v<T>
void append_be(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  if constexpr (std::endian::native == std::endian::little) {
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(bytes[i], bytes[sizeof(T) - 1 - i]);
  }
  out.append(bytes, sizeof(T));
}

}  // namespace kokoro
