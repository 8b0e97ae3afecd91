// The example programs' command lines, on CLI11 (--help, --flag=value and
// --flag value, typed values), plus what CLI11 does not do itself: a "did
// you mean" for a mistyped option, and `section.key=value` overrides.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <kokoro/util/nearest_word.hpp>

namespace examples {

/// Every long option name of `app`, as typed: "--max-steps".
inline std::vector<std::string> long_option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

/// What went wrong, "did you mean --x?" for each unknown option that is a
/// few letters away from a real one, and where to read more.
inline std::string failure_message(const CLI::App* app, const CLI::Error& error) {
  std::string message = std::string(error.what()) + "\n";
  const auto names = long_option_names(*app);
  const bool unknown_options = dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr;
  for (const auto& argument : unknown_options ? app->remaining() : std::vector<std::string>{}) {
    if (argument.rfind("--", 0) != 0) continue;
    const auto typed = argument.substr(0, argument.find('='));
    const auto nearest = kokoro::nearest_word(typed, names);
    if (!nearest.empty() &&
        kokoro::edit_distance(typed, nearest) <= std::max<std::size_t>(2, typed.size() / 3)) {
      message += "did you mean " + nearest + " (not " + typed + ")?\n";
    }
  }
  return message + "Run with --help for more information.\n";
}

/// `section.key=value ...` after the options, into `overrides`.
inline CLI::Option* add_overrides(CLI::App& app, std::vector<std::string>& overrides) {
  return app.add_option("overrides", overrides,
                        "section.key=value: set one configuration field, e.g. "
                        "training.batch_size=16 (see --print-config for every field)");
}

/// A whole number from 1 up, with a short message (CLI::PositiveNumber
/// prints the range of a double).
inline const CLI::Validator whole_number_above_0(
    [](std::string& text) -> std::string {
      std::int64_t value = 0;
      if (!CLI::detail::lexical_cast(text, value) || value < 1) {
        return "expected a whole number from 1 up, got '" + text + "'";
      }
      return "";
    },
    "N >= 1");

/// Parses the command line. Returns the exit code when the program should
/// stop here: 0 after --help, 2 for a usage error (already reported).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv,
                                             const std::vector<std::string>& overrides = {}) {
  app.failure_message(failure_message);
  try {
    app.parse(argc, argv);
    // Checked after parsing, so that an unknown option is reported first
    // (with its hint) rather than the value that followed it.
    for (const auto& item : overrides) {
      if (item.find('=') == std::string::npos) {
        throw CLI::ValidationError("overrides", "expected section.key=value, got '" + item + "'");
      }
    }
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace examples
