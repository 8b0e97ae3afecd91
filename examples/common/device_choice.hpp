// The programs' --device auto|cpu|cuda: the option and the device it names
// (auto: a GPU where libtorch sees one). A named device that is not there
// stops the program with that said.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <torch/cuda.h>
#include <torch/types.h>

#include <kokoro/util/errors.hpp>

namespace examples {

inline void add_device_option(CLI::App& app, std::string& device_name) {
  app.add_option("--device", device_name, "auto | cpu | cuda")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
}

inline torch::Device pick_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw kokoro::Error("--device cuda: no CUDA device is visible to this libtorch");
    }
    return torch::kCUDA;
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

}  // namespace examples
