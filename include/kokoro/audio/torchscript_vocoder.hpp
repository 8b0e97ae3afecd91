// A neural vocoder saved with torch.jit (torch.jit.script or trace, then
// torch.jit.save), as HiFi-GAN-style generators are commonly exported,
// loaded with libtorch's own torch::jit::load. Its forward takes a log-mel
// [1, n_mels, frames] and returns the waveform ([1, 1, samples], [1,
// samples] or [samples]). A module that carries an integer attribute
// `sample_rate` says its rate; otherwise the caller's is assumed.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::audio {

class TorchScriptVocoder {
 public:
  /// Throws kokoro::Error naming `path` when it cannot be read as a
  /// TorchScript module.
  explicit TorchScriptVocoder(const std::filesystem::path& path,
                              const torch::Device& device = torch::kCPU)
      : path_(path.string()), device_(device) {
    if (!std::filesystem::exists(path)) {
      throw Error(
          fmt::format("{}: no such vocoder (expected a TorchScript module written by "
                      "torch.jit.save)",
                      path_));
    }
    try {
      module_ = std::make_shared<torch::jit::Module>(torch::jit::load(path_, device_));
    } catch (const std::exception& e) {
      std::string reason = e.what();
      reason = reason.substr(0, reason.find('\n'));
      throw Error(fmt::format("{}: not a TorchScript module (torch.jit.save writes one): {}", path_,
                              reason));
    }
    module_->eval();
    if (module_->hasattr("sample_rate")) {
      const auto rate = module_->attr("sample_rate");
      if (rate.isInt()) sample_rate_ = static_cast<int>(rate.toInt());
    }
  }

  /// The rate the module says it produces, or 0 when it does not say.
  int sample_rate() const { return sample_rate_; }

  /// `log_mel` [frames, n_mels] -> samples. Throws kokoro::Error naming the
  /// module when its forward fails or returns something other than one
  /// waveform.
  std::vector<float> operator()(const torch::Tensor& log_mel) const {
    torch::NoGradGuard no_grad;
    const auto input = log_mel.detach().to(device_, torch::kFloat).t().unsqueeze(0).contiguous();
    c10::IValue output;
    try {
      output = module_->forward({input});
    } catch (const std::exception& e) {
      std::string reason = e.what();
      reason = reason.substr(0, reason.find('\n'));
      throw Error(fmt::format("{}: the vocoder failed on a [1, {}, {}] log-mel: {}", path_,
                              input.size(1), input.size(2), reason));
    }
    if (!output.isTensor()) {
      throw Error(fmt::format("{}: the vocoder returned a {}, expected one waveform tensor", path_,
                              output.tagKind()));
    }
    auto wave = output.toTensor();
    while (wave.dim() > 1 && wave.size(0) == 1) wave = wave.squeeze(0);
    if (wave.dim() != 1 || wave.numel() == 0) {
      throw Error(
          fmt::format("{}: the vocoder returned a tensor of shape [{}], expected one "
                      "waveform ([1, 1, samples], [1, samples] or [samples])",
                      path_, fmt::join(output.toTensor().sizes(), ", ")));
    }
    wave = wave.to(torch::kCPU, torch::kFloat).contiguous();
    const auto* data = wave.data_ptr<float>();
    return std::vector<float>(data, data + wave.numel());
  }

 private:
  std::string path_;
  torch::Device device_;
  std::shared_ptr<torch::jit::Module> module_;
  int sample_rate_ = 0;
};

}  // namespace kokoro::audio
