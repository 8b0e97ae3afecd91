// A checkpoint file: a dict of training state in torch's pickle format (what
// torch.save writes and Python's torch.load reads back as a plain dict),
// written atomically, with a CRC-32 over every value so that a corrupted file
// is refused by name instead of silently loading damaged weights.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/serialize.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/state_io.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/crc32.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

namespace detail {

/// Folds a value into the checksum: structure, scalars as text, tensors as
/// dtype, shape and bytes.
inline void checksum(Crc32Ieee& crc, const c10::IValue& v) {
  if (v.isTensor()) {
    const auto t = v.toTensor().contiguous().cpu();
    crc.update(fmt::format("T{}:{}", c10::toString(t.scalar_type()), c10::str(t.sizes())));
    crc.update(t.data_ptr(), t.numel() * t.element_size());
  } else if (v.isGenericDict()) {
    crc.update("{");
    for (const auto& entry : v.toGenericDict()) {
      checksum(crc, entry.key());
      checksum(crc, entry.value());
    }
    crc.update("}");
  } else if (v.isList()) {
    crc.update("[");
    for (const auto& x : v.toListRef()) checksum(crc, x);
    crc.update("]");
  } else if (v.isTuple()) {
    crc.update("(");
    for (const auto& x : v.toTupleRef().elements()) checksum(crc, x);
    crc.update(")");
  } else if (v.isString()) {
    crc.update("s").update(v.toStringRef());
  } else if (v.isInt()) {
    crc.update(fmt::format("i{}", v.toInt()));
  } else if (v.isDouble()) {
    crc.update(fmt::format("d{}", v.toDouble()));
  } else if (v.isBool()) {
    crc.update(v.toBool() ? "b1" : "b0");
  } else if (v.isNone()) {
    crc.update("n");
  } else {
    throw Error(fmt::format("checkpoint: cannot store a value of type {}", v.tagKind()));
  }
}

inline std::int64_t checksum_of(const IValueDict& dict) {
  Crc32Ieee crc;
  checksum(crc, dict);
  return crc.value();
}

}  // namespace detail

/// Writes `state` to `path` atomically, with an "integrity" entry added.
inline void save_checkpoint_file(const std::filesystem::path& path, const IValueDict& state) {
  auto copy = state.copy();
  (void)copy.erase("integrity");
  const auto sum = detail::checksum_of(copy);
  auto integrity = make_ivalue_dict();
  integrity.insert("crc32", sum);
  copy.insert("integrity", integrity);
  const auto bytes = torch::pickle_save(copy);
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
}

/// Reads a checkpoint; throws kokoro::Error naming the file when it is
/// missing, truncated, not a checkpoint, or fails its checksum. Files without
/// an integrity entry (written by Python's torch.save) are accepted as they are.
inline IValueDict load_checkpoint_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the checkpoint", path.string()));
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    throw Error(fmt::format("{}: not a readable checkpoint (truncated or damaged): {}",
                            path.string(), reason));
  }
  if (!value.isGenericDict()) {
    throw Error(fmt::format("{}: not a checkpoint (expected a dict)", path.string()));
  }
  auto dict = value.toGenericDict();
  const auto it = dict.find("integrity");
  if (it != dict.end()) {
    // Checked before use: a damaged entry must be named, not surface as
    // libtorch's own error about an IValue's type.
    const auto& entry = it->value();
    const bool well_formed = entry.isGenericDict() && entry.toGenericDict().contains("crc32") &&
                             entry.toGenericDict().at("crc32").isInt();
    if (!well_formed) {
      throw Error(fmt::format(
          "{}: the checkpoint's integrity entry is malformed (expected a dict with an integer "
          "crc32)",
          path.string()));
    }
    const auto expected = entry.toGenericDict().at("crc32").toInt();
    auto payload = dict.copy();
    (void)payload.erase("integrity");
    if (detail::checksum_of(payload) != expected) {
      throw Error(
          fmt::format("{}: the checkpoint is corrupted (checksum mismatch)", path.string()));
    }
  }
  return dict;
}

}  // namespace kokoro
