// Little-endian numbers appended to a byte string and read back: the one
// writer and reader the binary formats kokoro writes by hand (WAV,
// TensorBoard records, the feature cache) share.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace kokoro {

namespace detail {
/// Reverses `bytes` unless the machine already stores numbers in `order`:
/// native to `order` and back are the same reversal.
template <std::endian order, std::size_t size>
void reorder(char (&bytes)[size]) {
  if constexpr (std::endian::native != order) std::reverse(bytes, bytes + size);
}
}  // namespace detail

/// Appends `value`'s bytes, least significant first.
template <class T>
requires std::is_arithmetic_v<T>
void append_le(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  detail::reorder<std::endian::little>(bytes);
  out.append(bytes, sizeof(T));
}

/// The little-endian `T` at `bytes[at]`; `at` moves past it. The caller
/// has checked that sizeof(T) bytes are there.
template <class T>
requires std::is_arithmetic_v<T> T read_le(std::string_view bytes, std::size_t& at) {
  char raw[sizeof(T)];
  std::memcpy(raw, bytes.data() + at, sizeof(T));
  at += sizeof(T);
  detail::reorder<std::endian::little>(raw);
  T value;
  std::memcpy(&value, raw, sizeof(T));
  return value;
}

}  // namespace kokoro
