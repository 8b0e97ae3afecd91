// The fuzz targets without libFuzzer: runs one target over files and folders
// of inputs (the seeds, fuzz/regressions/<target>/) and fails on the first
// input that makes it fail, naming it. What the test suite runs.
//
//   kokoro_fuzz_replay TARGET PATH...     (a folder: every file in it)
//   kokoro_fuzz_replay --list
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const auto& targets = kokoro::fuzz::targets();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, function] : targets) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: kokoro_fuzz_replay TARGET PATH... | --list\n");
    return 2;
  }
  const auto target = targets.find(argv[1]);
  if (target == targets.end()) {
    std::fprintf(stderr, "kokoro_fuzz_replay: no target \"%s\" (--list names them)\n", argv[1]);
    return 2;
  }
  std::vector<fs::path> inputs;
  for (int i = 2; i < argc; ++i) {
    const fs::path path = argv[i];
    if (fs::is_directory(path)) {
      for (const auto& entry : fs::recursive_directory_iterator(path)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else if (fs::is_regular_file(path)) {
      inputs.push_back(path);
    } else {
      std::fprintf(stderr, "kokoro_fuzz_replay: %s is neither a file nor a folder\n", argv[i]);
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "kokoro_fuzz_replay: no input for %s\n", argv[1]);
    return 2;
  }
  for (const auto& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    try {
      target->second(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kokoro_fuzz_replay: %s: %s escaped the target: %s\n",
                   path.string().c_str(), argv[1], e.what());
      return 1;
    }
  }
  std::error_code ignored;
  fs::remove_all(kokoro::fuzz::scratch(), ignored);
  std::printf("kokoro_fuzz_replay: %s took %zu inputs\n", argv[1], inputs.size());
  return 0;
}
