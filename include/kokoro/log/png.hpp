// PNG encoding of an 8-bit Image, for TensorBoard's image plugin: signature,
// IHDR, one zlib-compressed IDAT (each row prefixed with filter type 0), IEND;
// every chunk ends with the CRC-32 of its type and data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <zlib.h>

#include <fmt/format.h>

#include "kokoro/core/media.hpp"
#include "kokoro/util/crc32.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

namespace detail::png {

inline void put_u32_be(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

inline void chunk(std::string& out, std::string_view type, std::string_view data) {
  put_u32_be(out, static_cast<std::uint32_t>(data.size()));
  out.append(type);
  out.append(data);
  put_u32_be(out, Crc32Ieee().update(type).update(data).value());
}

inline int colour_type(int channels) {
  switch (channels) {
    case 1:
      return 0;  // greyscale
    case 2:
      return 4;  // greyscale + alpha
    case 3:
      return 2;  // RGB
    case 4:
      return 6;  // RGBA
    default:
      return -1;
  }
}

}  // namespace detail::png

/// The PNG file for `image`. Throws kokoro::Error on an impossible shape.
inline std::string encode_png(const Image& image) {
  const int colour = detail::png::colour_type(image.channels);
  const std::size_t row = static_cast<std::size_t>(image.width) * image.channels;
  if (colour < 0 || image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != row * static_cast<std::size_t>(image.height)) {
    throw Error(fmt::format("image '{}': {}x{} with {} channels does not match {} pixel values",
                            image.tag, image.width, image.height, image.channels,
                            image.pixels.size()));
  }
  std::string raw;
  raw.reserve((row + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    raw.push_back('\0');  // filter: none
    raw.append(reinterpret_cast<const char*>(image.pixels.data()) + y * row, row);
  }
  uLongf packed_size = compressBound(raw.size());
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 6) != Z_OK) {
    throw Error(fmt::format("image '{}': zlib compression failed", image.tag));
  }
  packed.resize(packed_size);

  std::string header;
  detail::png::put_u32_be(header, static_cast<std::uint32_t>(image.width));
  detail::png::put_u32_be(header, static_cast<std::uint32_t>(image.height));
  header += std::string{'\x08', static_cast<char>(colour), '\0', '\0', '\0'};

  std::string out = "\x89PNG\r\n\x1a\n";
  detail::png::chunk(out, "IHDR", header);
  detail::png::chunk(out, "IDAT", packed);
  detail::png::chunk(out, "IEND", {});
  return out;
}

}  // namespace kokoro
