// Exception types thrown by kokoro. Every error names where the problem is
// (file, line, field) and what was expected, so it can be fixed without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace kokoro {

/// Base of every exception kokoro throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration that cannot be used: an unknown key, a value of the wrong
/// type, or a value that breaks a rule. Thrown before training starts.
class ConfigError : public Error {
 public:
  using Error::Error;
};

}  // namespace kokoro
