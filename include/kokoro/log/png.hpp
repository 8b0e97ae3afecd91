// PNG encoding of an 8-bit Image (grey, grey+alpha, RGB, RGBA), for
// TensorBoard's image plugin and the sample files, through libpng's
// simplified API: it reports errors by return value, not by longjmp.
#pragma once

#include <cstddef>
#include <string>

#include <png.h>

#include <fmt/format.h>

#include "kokoro/core/media.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

namespace detail::png {

inline png_uint_32 format_for(int channels) {
  switch (channels) {
    case 1:
      return PNG_FORMAT_GRAY;
    case 2:
      return PNG_FORMAT_GA;
    case 3:
      return PNG_FORMAT_RGB;
    case 4:
      return PNG_FORMAT_RGBA;
    default:
      return ~png_uint_32{0};
  }
}

}  // namespace detail::png

/// The PNG file for `image`. Throws kokoro::Error on an impossible shape or
/// when libpng refuses it.
inline std::string encode_png(const Image& image) {
  const png_uint_32 format = detail::png::format_for(image.channels);
  const std::size_t row = static_cast<std::size_t>(image.width) * image.channels;
  if (format == ~png_uint_32{0} || image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != row * static_cast<std::size_t>(image.height)) {
    throw Error(fmt::format("image '{}': {}x{} with {} channels does not match {} pixel values",
                            image.tag, image.width, image.height, image.channels,
                            image.pixels.size()));
  }
  png_image header{};
  header.version = PNG_IMAGE_VERSION;
  header.width = static_cast<png_uint_32>(image.width);
  header.height = static_cast<png_uint_32>(image.height);
  header.format = format;
  const auto stride = static_cast<png_int_32>(row);
  // First the size libpng needs, then the file itself.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&header, nullptr, &size, 0, image.pixels.data(), stride,
                                 nullptr)) {
    const std::string why = header.message;
    png_image_free(&header);
    throw Error(fmt::format("image '{}': libpng cannot encode it: {}", image.tag, why));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&header, out.data(), &size, 0, image.pixels.data(), stride,
                                 nullptr)) {
    const std::string why = header.message;
    png_image_free(&header);
    throw Error(fmt::format("image '{}': libpng cannot encode it: {}", image.tag, why));
  }
  out.resize(size);
  return out;
}

}  // namespace kokoro
