// The C++ side of the Python twin's test: loads a kokoro-train checkpoint
// as kokoro-synthesize does and writes what the model makes of a fixed
// input, as a dict of tensors in torch's pickle format (torch.load reads
// it), for python/kokoro_twin to reproduce:
//   kokoro_twin_reference CHECKPOINT OUT.pt
// Inputs (seeded): 2 clips of 7 and 5 phonemes with durations of 0-3 frames
// and random mels. Outputs: the teacher-forced forward (mel_before,
// mel_after, stop_logits, log_durations); generation of the first clip with
// its given durations (generated_mel, generated_mel_before) and with the
// predicted ones (predicted_durations, predicted_mel), never stopping, 12
// frames at most.
#include <torch/serialize.h>
#include <kokoro/tts/synthesizer.hpp>

#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: kokoro_twin_reference CHECKPOINT OUT.pt\n");
    return 2;
  }
  try {
    namespace tts = kokoro::tts;
    auto trained = tts::load_trained_model(argv[1]);
    auto& model = trained.model;
    torch::NoGradGuard no_grad;
    torch::manual_seed(7);
    const auto vocab = trained.processor.vocab_size();
    const std::vector<std::int64_t> lengths{7, 5};
    tts::TtsBatch batch;
    batch.phonemes = torch::zeros({2, 7}, torch::kLong);
    batch.durations = torch::zeros({2, 7}, torch::kLong);
    for (std::int64_t b = 0; b < 2; ++b) {
      const auto n = lengths[static_cast<std::size_t>(b)];
      batch.phonemes[b].narrow(0, 0, n).copy_(torch::randint(2, vocab, {n}, torch::kLong));
      batch.durations[b].narrow(0, 0, n).copy_(torch::randint(0, 4, {n}, torch::kLong));
    }
    batch.durations[0][0] = 2;  // at least one frame in each clip
    batch.durations[1][0] = 1;
    batch.phoneme_lengths = torch::tensor(lengths, torch::kLong);
    batch.mel_lengths = batch.durations.sum(1);
    const auto frames = batch.mel_lengths.max().item<std::int64_t>();
    const auto n_mels = trained.config.audio.n_mels;
    batch.mels = torch::randn({2, frames, n_mels}) - 4.0;
    batch.mels[1]
        .narrow(0, batch.mel_lengths[1].item<std::int64_t>(),
                frames - batch.mel_lengths[1].item<std::int64_t>())
        .zero_();
    batch.stop_targets = torch::zeros({2, frames});

    model->eval();
    const auto out = model->forward(batch);
    const auto first = batch.phonemes.narrow(0, 0, 1).narrow(1, 0, lengths[0]);
    tts::GenerateOptions given{.stop_threshold = 2.0, .max_frames = 12};
    given.durations = batch.durations.narrow(0, 0, 1).narrow(1, 0, lengths[0]);
    const auto generated = model->generate(first, given).front();
    const auto predicted =
        model->generate(first, tts::GenerateOptions{.stop_threshold = 2.0, .max_frames = 12})
            .front();

    c10::Dict<std::string, torch::Tensor> d;
    d.insert("phonemes", batch.phonemes);
    d.insert("phoneme_lengths", batch.phoneme_lengths);
    d.insert("durations", batch.durations);
    d.insert("mels", batch.mels);
    d.insert("mel_lengths", batch.mel_lengths);
    d.insert("mel_before", out.mel_before);
    d.insert("mel_after", out.mel_after);
    d.insert("stop_logits", out.stop_logits);
    d.insert("log_durations", out.log_durations);
    d.insert("generated_mel", generated.mel);
    d.insert("generated_mel_before", generated.mel_before);
    d.insert("predicted_durations", predicted.durations);
    d.insert("predicted_mel", predicted.mel);
    const auto bytes = torch::pickle_save(c10::IValue(d));
    std::ofstream file(argv[2], std::ios::binary);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!file) throw kokoro::Error(std::string(argv[2]) + ": cannot write");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro_twin_reference: %s\n", e.what());
    return 1;
  }
}
