// Reading and writing a configuration (TrainingConfig or a RunConfig with a
// task's sections): YAML files (load, save, round-trip), `section.key=value`
// overrides from a command line, legacy keys, and errors that name the file,
// line, field and rule. Every entry point validates before it returns, so a
// bad configuration stops before training starts.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "kokoro/core/config_value.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/nearest_word.hpp"

namespace kokoro {

namespace detail {

template <class T>
constexpr const char* expected_kind() {
  if constexpr (std::is_same_v<T, bool>)
    return "true or false";
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return "an integer";
  else if constexpr (std::is_same_v<T, double>)
    return "a number";
  else
    return "a string";
}

/// Parses `text` as a T; false when it is not one.
template <class T>
bool parse_scalar(std::string_view text, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    out = std::string(text);
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (lower == "true" || lower == "yes" || lower == "on" || lower == "1") {
      out = true;
      return true;
    }
    if (lower == "false" || lower == "no" || lower == "off" || lower == "0") {
      out = false;
      return true;
    }
    return false;
  } else {
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    T value{};
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || text.empty()) return false;
    out = value;
    return true;
  }
}

/// A YAML scalar that reads back as the same value: shortest round-trip form
/// for numbers, double-quoted strings.
template <class T>
std::string format_scalar(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    std::string quoted = "\"";
    for (char ch : v) {
      switch (ch) {
        case '"':
          quoted += "\\\"";
          break;
        case '\\':
          quoted += "\\\\";
          break;
        case '\n':
          quoted += "\\n";
          break;
        case '\t':
          quoted += "\\t";
          break;
        default:
          quoted += ch;
      }
    }
    return quoted + "\"";
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, double>) {
    auto s = fmt::format("{}", v);
    // Keep doubles recognisable as numbers with a fraction or exponent.
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
  } else {
    return fmt::format("{}", v);
  }
}

template <ConfigType Config>
std::vector<std::string> section_names() {
  std::vector<std::string> names;
  Config c;
  Config::sections(c, [&](const char* name, auto&) { names.emplace_back(name); });
  return names;
}

template <ConfigType Config>
std::vector<std::string> field_names() {
  std::vector<std::string> names;
  const Config defaults;
  for_each_field(defaults, [&](const char* s, const char* k, const auto&, const char*,
                               const auto&...) { names.push_back(fmt::format("{}.{}", s, k)); });
  return names;
}

template <ConfigType Config>
std::vector<LegacyKey> legacy_keys_of() {
  if constexpr (requires { Config::legacy_keys(); }) {
    return Config::legacy_keys();
  } else {
    return {};
  }
}

/// The legacy entry for `section.key`, if any: an exact one, else the
/// section's wildcard.
inline const LegacyKey* find_legacy(const std::vector<LegacyKey>& keys, std::string_view section,
                                    std::string_view key) {
  const auto exact = fmt::format("{}.{}", section, key);
  const auto wildcard = fmt::format("{}.*", section);
  for (const auto& k : keys) {
    if (k.old_name == exact) return &k;
  }
  for (const auto& k : keys) {
    if (k.old_name == wildcard) return &k;
  }
  return nullptr;
}

/// Whether `section` is one of the configuration's or a legacy one.
template <ConfigType Config>
bool known_section(std::string_view section) {
  for (const auto& s : section_names<Config>()) {
    if (s == section) return true;
  }
  const auto prefix = fmt::format("{}.", section);
  for (const auto& k : legacy_keys_of<Config>()) {
    if (k.old_name.starts_with(prefix)) return true;
  }
  return false;
}

/// Sets the field named `section.key` from `text`, following legacy keys to
/// their new place. Returns the problem, if any.
template <ConfigType Config>
std::optional<std::string> set_field(Config& config, std::string_view section, std::string_view key,
                                     std::string_view text, int legacy_depth = 0) {
  bool found = false;
  std::optional<std::string> problem;
  for_each_field(
      config, [&](const char* s, const char* k, auto& value, const char*, const auto&...) {
        if (found || s != section || k != key) return;
        found = true;
        using T = std::remove_cvref_t<decltype(value)>;
        if (!parse_scalar(text, value)) {
          problem = fmt::format("{}.{}: expected {}, got '{}'", s, k, expected_kind<T>(), text);
        }
      });
  if (found) return problem;
  const auto legacy = legacy_keys_of<Config>();
  if (const auto* moved = find_legacy(legacy, section, key); moved && legacy_depth < 4) {
    if (moved->new_name.empty()) return std::nullopt;  // a setting that no longer exists
    const auto dot = moved->new_name.find('.');
    return set_field(config, moved->new_name.substr(0, dot), moved->new_name.substr(dot + 1), text,
                     legacy_depth + 1);
  }
  const auto name = fmt::format("{}.{}", section, key);
  return fmt::format("unknown key '{}' (did you mean '{}'?)", name,
                     nearest_word(name, field_names<Config>()));
}

[[noreturn]] inline void throw_problems(const std::vector<std::string>& lines) {
  if (lines.size() == 1) throw ConfigError(lines.front());
  throw ConfigError(fmt::format("{} problems in the configuration:\n  {}", lines.size(),
                                fmt::join(lines, "\n  ")));
}

/// Validates and throws one ConfigError listing every problem; `where` maps a
/// field name to the "file:line" it came from, when known.
template <ConfigType Config>
void check_valid(const Config& config, const std::map<std::string, std::string>& where = {}) {
  const auto problems = validate(config);
  if (problems.empty()) return;
  std::vector<std::string> lines;
  for (const auto& p : problems) {
    const auto it = where.find(p.field);
    const auto prefix = it == where.end() ? std::string{} : it->second + ": ";
    lines.push_back(fmt::format("{}{}: {}", prefix, p.field, p.message));
  }
  throw_problems(lines);
}

}  // namespace detail

/// Applies a YAML document on top of `config`. `source` names the document in
/// messages (a file name). Sections and keys left out keep their values.
/// Throws ConfigError naming source, line, key and rule; validates the result.
template <ConfigType Config>
void apply_yaml(Config& config, std::string_view text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  if (!root || root.IsNull()) {
    detail::check_valid(config);
    return;
  }
  auto at = [&](const YAML::Node& n) { return fmt::format("{}:{}", source, n.Mark().line + 1); };
  if (!root.IsMap()) {
    throw ConfigError(fmt::format("{}: expected a mapping of sections ({}), got a {}", at(root),
                                  fmt::join(detail::section_names<Config>(), ", "),
                                  root.IsSequence() ? "list" : "scalar"));
  }
  std::vector<std::string> errors;
  std::map<std::string, std::string> where;
  const auto sections = detail::section_names<Config>();
  std::map<std::string, std::string> section_at;
  for (const auto& entry : root) {
    const auto section = entry.first.as<std::string>();
    const YAML::Node& body = entry.second;
    // YAML keeps both of two equal keys; one would silently win.
    if (const auto [it, first] = section_at.emplace(section, at(entry.first)); !first) {
      errors.push_back(fmt::format("{}: section '{}' appears twice (first at {})", at(entry.first),
                                   section, it->second));
      continue;
    }
    if (!detail::known_section<Config>(section)) {
      errors.push_back(fmt::format("{}: unknown section '{}' (did you mean '{}'?)", at(entry.first),
                                   section, nearest_word(section, sections)));
      continue;
    }
    if (body.IsNull()) continue;
    if (!body.IsMap()) {
      errors.push_back(
          fmt::format("{}: section '{}' must be a mapping of key: value", at(body), section));
      continue;
    }
    for (const auto& field : body) {
      const auto key = field.first.as<std::string>();
      const YAML::Node& value = field.second;
      if (const auto it = where.find(fmt::format("{}.{}", section, key)); it != where.end()) {
        errors.push_back(fmt::format("{}: {}.{} is given twice (first at {})", at(field.first),
                                     section, key, it->second));
        continue;
      }
      if (!value.IsScalar()) {
        errors.push_back(fmt::format("{}: {}.{}: expected a single value, got a {}", at(value),
                                     section, key, value.IsSequence() ? "list" : "mapping"));
        continue;
      }
      if (auto problem = detail::set_field(config, section, key, value.Scalar())) {
        errors.push_back(fmt::format("{}: {}", at(field.first), *problem));
      } else {
        where[fmt::format("{}.{}", section, key)] = at(field.first);
      }
    }
  }
  if (!errors.empty()) detail::throw_problems(errors);
  detail::check_valid(config, where);
}

/// Reads a YAML file on top of `base` (the defaults unless given).
template <ConfigType Config = TrainingConfig>
Config load_config(const std::filesystem::path& path, Config base = Config{}) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("{}: cannot open the configuration file", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  apply_yaml(base, text.str(), path.string());
  return base;
}

/// Applies command-line overrides of the form `section.key=value`, in order,
/// then validates. Throws ConfigError naming the argument.
template <ConfigType Config>
void apply_overrides(Config& config, const std::vector<std::string>& overrides) {
  std::vector<std::string> errors;
  for (const auto& arg : overrides) {
    const auto eq = arg.find('=');
    const auto dot = arg.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      errors.push_back(fmt::format("override '{}': expected section.key=value", arg));
      continue;
    }
    const std::string_view view(arg);
    if (auto problem = detail::set_field(config, view.substr(0, dot),
                                         view.substr(dot + 1, eq - dot - 1), view.substr(eq + 1))) {
      errors.push_back(fmt::format("override '{}': {}", arg, *problem));
    }
  }
  if (!errors.empty()) detail::throw_problems(errors);
  detail::check_valid(config);
}

/// Throws ConfigError listing every rule the configuration breaks.
template <ConfigType Config>
void check_config(const Config& config) {
  detail::check_valid(config);
}

/// Every field of the configuration as a typed value, in file order: what a
/// logger needs to show or send a run's settings without knowing its type.
template <ConfigType Config>
ConfigValues config_values(const Config& config) {
  ConfigValues values;
  for_each_field(config, [&](const char* section, const char* key, const auto& value,
                             const char* doc, const auto&...) {
    values.push_back({.section = section, .key = key, .doc = doc, .value = value});
  });
  return values;
}

/// Settings as commented YAML that `apply_yaml` reads back to an equal
/// configuration.
inline std::string to_yaml(const ConfigValues& values) {
  std::string out = "# kokoro training configuration\n";
  std::string current;
  for (const auto& v : values) {
    if (current != v.section) {
      current = v.section;
      out += fmt::format("\n{}:\n", v.section);
    }
    const auto text = std::visit([](const auto& x) { return detail::format_scalar(x); }, v.value);
    out += fmt::format("  {}: {}  # {}\n", v.key, text, v.doc);
  }
  return out;
}

/// The configuration as commented YAML.
template <ConfigType Config>
std::string to_yaml(const Config& config) {
  return to_yaml(config_values(config));
}

/// Writes `to_yaml(config)` to `path`; throws kokoro::Error when it cannot.
template <ConfigType Config>
void save_config(const Config& config, const std::filesystem::path& path) {
  std::ofstream out(path);
  out << to_yaml(config);
  out.close();
  if (!out) throw Error(fmt::format("{}: cannot write the configuration", path.string()));
}

}  // namespace kokoro
