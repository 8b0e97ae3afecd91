// Running one of tests/python/*.py on cases a C++ test wrote: the
// independent implementations kokoro's measures are checked against.
#pragma once

#include <doctest/doctest.h>

#include <kokoro/log/json.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <fmt/format.h>

namespace kokoro::test {

struct PythonCheck {
  bool skipped = false;  ///< the script exited 77: a package it needs is missing
  int exit_status = -1;
  std::string output;  ///< what it printed, stdout and stderr
};

/// `script CASES.json` under `python`, the cases written to `dir` (made and
/// left for the caller to remove).
inline PythonCheck run_python_check(const std::string& python, const std::string& script,
                                    const Json& cases, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto file = dir / "cases.json";
  const auto log = dir / "check.log";
  std::ofstream(file) << cases.dump();
  const int status = std::system(
      fmt::format("'{}' '{}' '{}' > '{}' 2>&1", python, script, file.string(), log.string())
          .c_str());
  std::ifstream in(log);
  PythonCheck run;
  run.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.skipped = run.exit_status == 77;
  return run;
}

/// Runs the check and asserts that it ran and says the figures "agree with
/// the independent ones"; a check that cannot run here (exit 77) makes the
/// test say "kokoro-skip", which ctest reports as skipped.
inline void check_python_agrees(const std::string& python, const std::string& script,
                                const Json& cases, const std::filesystem::path& dir) {
  const auto run = run_python_check(python, script, cases, dir);
  if (run.skipped) {
    MESSAGE("kokoro-skip: " << run.output);
    return;
  }
  INFO(run.output);
  CHECK(run.exit_status == 0);
  CHECK(run.output.find("agree with the independent ones") != std::string::npos);
}

}  // namespace kokoro::test
