// KokoroModel: the text-to-speech network. Phonemes go through a Transformer
// encoder; a duration predictor gives each phoneme's log duration; the length
// regulator repeats encoder states into frames; a causal Transformer decoder,
// fed the previous mel frame, predicts each frame and a stop logit; a PostNet
// refines the mel. Training is teacher-forced on ground-truth durations
// (a TextGrid's, or those the aligner learns: with
// KokoroModelOptions::aligner the model carries one, trained beside it and
// not used at inference); generate() runs the decoder frame by frame with a
// key/value cache.
// Blocks are pre-norm (see transformer_blocks.hpp). Unlike the original, the
// regulated memory also gets frame positions, so cross-attention can align
// decoder frame t with memory frame t directly.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kokoro/nn/attention.hpp"
#include "kokoro/nn/fast_dropout.hpp"
#include "kokoro/nn/gradient_checkpoint.hpp"
#include "kokoro/nn/kernel_choice.hpp"
#include "kokoro/nn/transformer_blocks.hpp"
#include "kokoro/tts/align/aligner.hpp"
#include "kokoro/tts/data/batch.hpp"
#include "kokoro/tts/model/length_regulator.hpp"
#include "kokoro/tts/model/postnet.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/eval_mode_guard.hpp"

namespace kokoro::tts {

/// The teacher-forced predictions for a batch of F frames and T phonemes.
struct ModelOutputs {
  torch::Tensor mel_before;     ///< [B, F, n_mels] the mel head's output
  torch::Tensor mel_after;      ///< [B, F, n_mels] plus the PostNet residual (or mel_before)
  torch::Tensor stop_logits;    ///< [B, F] logit that the frame is the clip's last
  torch::Tensor log_durations;  ///< [B, T] predicted log(frames + 1), 0 on padding
  bool postnet = false;         ///< whether mel_after went through a PostNet (else the same tensor)
};

/// One synthesised utterance (named apart from espeak.hpp's Synthesis, the
/// espeak-ng audio).
struct MelSynthesis {
  torch::Tensor mel;         ///< [frames, n_mels] after the PostNet: the output
  torch::Tensor mel_before;  ///< [frames, n_mels] the frames the decoder fed back to itself
  torch::Tensor durations;   ///< [T] int64 predicted frames per phoneme (0 on padding ids)
  bool stopped = false;      ///< the stop token fired; false: a limit was reached
  /// Ended at the durations' total (GenerateOptions::end_at_durations).
  bool reached_durations = false;
};

/// How generate() runs.
struct GenerateOptions {
  double stop_threshold = 0.5;     ///< a row stops at the first frame with sigmoid(stop) above it
  std::int64_t max_frames = 1000;  ///< frames at most per row (and per phoneme)
  double duration_scale = 1.0;     ///< every predicted duration times this (0.8: 25% faster)
  /// [B, T] int64 frames per phoneme to use instead of the predicted ones
  /// (undefined: predicted).
  torch::Tensor durations{};
  /// Also end a row when it has as many frames as its durations give: the
  /// decoder's frame t attends to memory frame t, so there is nothing left
  /// to say after the last one (a young model's stop token may never fire).
  bool end_at_durations = false;
};

/// The decoder's heads for a run of frames.
struct DecoderOutputs {
  torch::Tensor mel;          ///< [B, F, n_mels]
  torch::Tensor stop_logits;  ///< [B, F]
};

/// The model's shape. The defaults are the reference system's (d=512, 6+6
/// layers, 8 heads, feed-forward 2048); the TTS task fills it from the
/// `model` section and the vocabulary.
struct KokoroModelOptions {
  std::int64_t vocab_size = 0;  ///< phoneme ids, <pad> = 0 included
  std::int64_t n_mels = 80;
  std::int64_t hidden_dim = 512;
  std::int64_t encoder_layers = 6;
  std::int64_t decoder_layers = 6;
  std::int64_t num_heads = 8;  ///< must divide hidden_dim
  std::int64_t ff_dim = 2048;
  double dropout = 0.1;            ///< on embeddings, sublayer outputs, hidden units, PostNet
  double attention_dropout = 0.1;  ///< on the attention weights ([B, heads, L, S] masks)
  bool postnet = true;
  /// Recompute each segment's activations in backward; set_gradient_checkpointing
  /// changes it between steps (the TTS task's `auto` does).
  bool gradient_checkpointing = true;
  std::int64_t checkpoint_blocks = 1;       ///< Transformer blocks per checkpointed segment
  nn::Kernels kernels = nn::Kernels::fast;  ///< reference: libtorch's stock dropout and attention
  /// The learned aligner (its vocab_size and n_mels are the model's); none:
  /// durations come from the corpus alone.
  std::optional<align::AlignerOptions> aligner{};
};

/// Submodules (state-dict prefixes): embedding, encoder.<i>, encoder_norm,
/// duration_predictor, decoder_input, decoder.<i>, decoder_norm, mel_head,
/// stop_head, postnet (when options.postnet), aligner (when options.aligner).
class KokoroModelImpl : public torch::nn::Module {
 public:
  /// Throws kokoro::Error when num_heads does not divide hidden_dim or a
  /// size is not positive.
  explicit KokoroModelImpl(const KokoroModelOptions& config)
      : config_(validated(config)),
        n_mels_(config.n_mels),
        embedding_(
            torch::nn::EmbeddingOptions(config.vocab_size, config.hidden_dim).padding_idx(0)),
        encoder_norm_(torch::nn::LayerNormOptions({config.hidden_dim})),
        decoder_input_(config.n_mels, config.hidden_dim),
        decoder_norm_(torch::nn::LayerNormOptions({config.hidden_dim})),
        mel_head_(config.hidden_dim, config.n_mels),
        stop_head_(config.hidden_dim, 1),
        dropout_(residual_dropout(config)) {
    const auto d = config.hidden_dim;
    // N(0, 1/d) rows, so that after the √d scale embeddings and positions
    // have the same unit scale (libtorch's default N(0, 1) would drown the
    // positions). The <pad> row stays zero.
    {
      torch::NoGradGuard no_grad;
      embedding_->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(d)));
      embedding_->weight[0].zero_();
    }
    register_module("embedding", embedding_);
    for (std::int64_t i = 0; i < config.encoder_layers; ++i) {
      nn::EncoderBlock block(block_options(config));
      encoder_list_->push_back(block);
      encoder_.push_back(block);
    }
    register_module("encoder", encoder_list_);
    register_module("encoder_norm", encoder_norm_);

    const auto half = std::max<std::int64_t>(1, d / 2);
    auto relu = [] {
      return torch::nn::Functional([](const torch::Tensor& x) { return torch::relu(x); });
    };
    duration_predictor_->push_back(torch::nn::Linear(d, d));
    duration_predictor_->push_back(relu());
    duration_predictor_->push_back(nn::Dropout(residual_dropout(config)));
    duration_predictor_->push_back(torch::nn::Linear(d, half));
    duration_predictor_->push_back(relu());
    duration_predictor_->push_back(nn::Dropout(residual_dropout(config)));
    duration_predictor_->push_back(torch::nn::Linear(half, 1));
    register_module("duration_predictor", duration_predictor_);

    register_module("decoder_input", decoder_input_);
    for (std::int64_t i = 0; i < config.decoder_layers; ++i) {
      nn::DecoderBlock block(block_options(config));
      decoder_list_->push_back(block);
      decoder_.push_back(block);
    }
    register_module("decoder", decoder_list_);
    register_module("decoder_norm", decoder_norm_);
    register_module("mel_head", mel_head_);
    register_module("stop_head", stop_head_);
    if (config.postnet) {
      postnet_ = register_module(
          "postnet",
          PostNet(PostNetOptions(config.n_mels).dropout(config.dropout).kernels(config.kernels)));
    }
    register_module("dropout", dropout_);
    if (config.aligner) {
      auto options = *config.aligner;
      options.vocab_size = config.vocab_size;
      options.n_mels = config.n_mels;
      aligner_ = register_module("aligner", align::Aligner(options));
    }
  }

  bool has_aligner() const { return !aligner_.is_empty(); }
  /// The learned aligner; kokoro::Error when the model has none.
  align::Aligner& aligner() {
    if (aligner_.is_empty()) throw Error("KokoroModel: this model has no aligner");
    return aligner_;
  }

  /// Teacher-forced pass over `batch` (on the model's device): ground-truth
  /// durations regulate the encoder output to the batch's mel length, and
  /// frame i is predicted from frames < i of batch.mels. The durations are
  /// used as they are, zeros included: they sum to each clip's frame count,
  /// and raising a zero to one frame would shift every later frame against
  /// its target.
  ModelOutputs forward(const TtsBatch& batch) {
    const auto phoneme_mask = batch.phoneme_mask();
    const auto frames = batch.mels.size(1);
    auto encoded = encode(batch.phonemes, phoneme_mask);
    auto log_durations = predict_log_durations(encoded, phoneme_mask);
    auto memory =
        regulate(encoded, batch.durations.masked_fill(phoneme_mask.logical_not(), 0), frames);
    auto decoded = decode(teacher_forcing_input(batch.mels), memory.states, memory.mask);
    ModelOutputs out;
    out.mel_before = decoded.mel;
    out.stop_logits = decoded.stop_logits;
    out.log_durations = log_durations;
    out.postnet = !postnet_.is_empty();
    out.mel_after =
        out.postnet ? decoded.mel + postnet_->forward(decoded.mel, batch.mel_mask()) : decoded.mel;
    return out;
  }

  /// Encoder states [B, T, d] for `phonemes` [B, T]; `phoneme_mask` [B, T]
  /// is true on real phonemes (padded keys are never attended).
  torch::Tensor encode(const torch::Tensor& phonemes, const torch::Tensor& phoneme_mask) {
    const auto d = config_.hidden_dim;
    auto x = embedding_->forward(phonemes) * std::sqrt(static_cast<double>(d));
    x = dropout_->forward(x + nn::sinusoidal_positions(phonemes.size(1), d, 0, x.options()));
    // With checkpointing, model.checkpoint_blocks blocks form one segment.
    const auto segment = checkpointing() ? segment_size() : encoder_.size();
    for (std::size_t first = 0; first < encoder_.size(); first += segment) {
      const auto last = std::min(encoder_.size(), first + segment);
      auto run = [this, first, last](const torch::autograd::variable_list& in) {
        auto h = in[0];
        for (auto i = first; i < last; ++i) h = encoder_[i]->forward(h, in[1]);
        return torch::autograd::variable_list{h};
      };
      x = checkpointing() ? nn::checkpoint(run, {x, phoneme_mask})[0] : run({x, phoneme_mask})[0];
    }
    return encoder_norm_->forward(nn::residual_stream(x));
  }

  /// Predicted log(frames + 1) per phoneme [B, T], 0 where the mask is false.
  torch::Tensor predict_log_durations(const torch::Tensor& encoded,
                                      const torch::Tensor& phoneme_mask) {
    return duration_predictor_->forward(encoded).squeeze(-1).masked_fill(phoneme_mask.logical_not(),
                                                                         0.0);
  }

  /// Encoder states repeated by `durations` [B, T] into `frames` frames, plus
  /// each frame's position (so cross-attention can align frame to frame).
  Regulated regulate(const torch::Tensor& encoded, const torch::Tensor& durations,
                     std::int64_t frames) {
    auto out = length_regulate(encoded, durations, frames);
    out.states =
        (out.states + nn::sinusoidal_positions(frames, config_.hidden_dim, 0, out.states.options()))
            .masked_fill(out.mask.logical_not().unsqueeze(-1), 0.0);
    return out;
  }

  /// The decoder, teacher-forced: `previous` [B, F, n_mels] holds frame i − 1
  /// at row i (see teacher_forcing_input); `memory` [B, S, d] with
  /// `memory_mask` [B, S] true on real frames.
  DecoderOutputs decode(const torch::Tensor& previous, const torch::Tensor& memory,
                        const torch::Tensor& memory_mask) {
    auto x = decoder_input_->forward(previous);
    x = dropout_->forward(
        x + nn::sinusoidal_positions(previous.size(1), config_.hidden_dim, 0, x.options()));
    const auto segment = checkpointing() ? segment_size() : decoder_.size();
    for (std::size_t first = 0; first < decoder_.size(); first += segment) {
      const auto last = std::min(decoder_.size(), first + segment);
      auto run = [this, first, last](const torch::autograd::variable_list& in) {
        auto h = in[0];
        for (auto i = first; i < last; ++i) h = decoder_[i]->forward(h, in[1], in[2]);
        return torch::autograd::variable_list{h};
      };
      x = checkpointing() ? nn::checkpoint(run, {x, memory, memory_mask})[0]
                          : run({x, memory, memory_mask})[0];
    }
    return heads(decoder_norm_->forward(nn::residual_stream(x)));
  }

  /// `mels` [B, F, n_mels] shifted right by one all-zero frame: row i holds
  /// frame i − 1, the decoder's input when predicting frame i.
  static torch::Tensor teacher_forcing_input(const torch::Tensor& mels) {
    auto go = torch::zeros({mels.size(0), 1, mels.size(2)}, mels.options());
    return torch::cat({go, mels.narrow(1, 0, mels.size(1) - 1)}, 1);
  }

  /// Autoregressive synthesis of one utterance, `phonemes` [T] or [1, T]
  /// (id 0 is <pad>, ignored). Durations are predicted (round(exp(x) − 1):
  /// 0 where training taught 0, see log_to_duration), then frames are generated one per step, each
  /// fed back before the PostNet, until sigmoid(stop) > `stop_threshold`
  /// (that frame included) or `max_frames` frames. Runs without gradients
  /// and in eval mode, restoring the module's mode afterwards.
  MelSynthesis generate(const torch::Tensor& phonemes, double stop_threshold = 0.5,
                        std::int64_t max_frames = 1000) {
    auto ids = phonemes.dim() == 1 ? phonemes.unsqueeze(0) : phonemes;
    if (ids.dim() != 2 || ids.size(0) != 1 || ids.size(1) == 0) {
      throw Error(
          fmt::format("KokoroModel::generate: expects phonemes [T] or [1, T] with T > 0, "
                      "got {}",
                      fmt::join(phonemes.sizes(), "x")));
    }
    return generate(ids,
                    GenerateOptions{.stop_threshold = stop_threshold, .max_frames = max_frames})
        .front();
  }

  /// Synthesis of a batch of utterances, `phonemes` [B, T] padded with id 0,
  /// as generate() above does for each row: the rows are decoded together,
  /// cross-attention masked to each row's own frames, and each row stops at
  /// its own stop frame; the batch runs until every row has stopped or
  /// reached max_frames. Row b's result equals generate() on row b alone up
  /// to float rounding. With options.end_at_durations a row also ends at
  /// its durations' total.
  std::vector<MelSynthesis> generate(const torch::Tensor& phonemes,
                                     const GenerateOptions& options) {
    if (options.max_frames < 1) throw Error("KokoroModel::generate: max_frames must be at least 1");
    if (!(options.duration_scale > 0.0)) {
      throw Error(fmt::format("KokoroModel::generate: duration_scale must be above 0, got {}",
                              options.duration_scale));
    }
    if (phonemes.dim() != 2 || phonemes.size(0) == 0 || phonemes.size(1) == 0) {
      throw Error(
          fmt::format("KokoroModel::generate: expects phonemes [B, T] with B, T > 0, got {}",
                      fmt::join(phonemes.sizes(), "x")));
    }
    torch::NoGradGuard no_grad;
    EvalModeGuard eval_scope(*this);
    const auto device = mel_head_->weight.device();
    const auto ids = phonemes.to(device, torch::kLong);
    const auto mask = ids.ne(0);
    if (!mask.any(1).all().item<bool>()) {
      throw Error("KokoroModel::generate: a row holds only <pad> ids");
    }
    const auto batch = ids.size(0);

    auto encoded = encode(ids, mask);
    torch::Tensor durations;
    if (options.durations.defined()) {
      if (options.durations.sizes() != ids.sizes()) {
        throw Error(fmt::format("KokoroModel::generate: durations {} do not match phonemes {}",
                                fmt::join(options.durations.sizes(), "x"),
                                fmt::join(ids.sizes(), "x")));
      }
      durations = options.durations.to(device, torch::kLong).masked_fill(mask.logical_not(), 0);
    } else {
      durations = log_to_duration(predict_log_durations(encoded, mask), mask, options.max_frames,
                                  options.duration_scale);
    }
    auto memory = regulate(encoded, durations, durations.sum(1).max().item<std::int64_t>());
    // One row alone attends to all of its memory; a mask is only needed for
    // the padding of shorter rows.
    const auto memory_mask = batch > 1 ? memory.mask : torch::Tensor();

    std::vector<nn::DecoderBlockCache> caches;
    caches.reserve(decoder_.size());
    for (auto& block : decoder_) caches.push_back(block->start(memory.states));

    std::vector<torch::Tensor> frames;
    std::vector<std::int64_t> length(static_cast<std::size_t>(batch), 0);  // 0: not ended yet
    std::vector<bool> stopped(static_cast<std::size_t>(batch), false);
    const auto totals = durations.sum(1).to(torch::kCPU);
    const auto* total = totals.data_ptr<std::int64_t>();
    auto previous = torch::zeros({batch, 1, n_mels_}, mel_head_->weight.options());
    std::int64_t running = batch;
    for (std::int64_t t = 0; t < options.max_frames && running > 0; ++t) {
      auto x = decoder_input_->forward(previous) +
               nn::sinusoidal_positions(1, config_.hidden_dim, t, previous.options());
      for (std::size_t i = 0; i < decoder_.size(); ++i) {
        x = decoder_[i]->step(x, caches[i], memory_mask);
      }
      auto out = heads(decoder_norm_->forward(nn::residual_stream(x)));
      frames.push_back(out.mel);
      previous = out.mel;
      const auto stops = torch::sigmoid(out.stop_logits.reshape({batch}))
                             .gt(options.stop_threshold)
                             .to(torch::kCPU);
      const auto* stop = stops.data_ptr<bool>();
      for (std::int64_t b = 0; b < batch; ++b) {
        auto& n = length[static_cast<std::size_t>(b)];
        if (n != 0) continue;
        if (stop[b] || (options.end_at_durations && t + 1 >= total[b])) {
          n = t + 1;
          stopped[static_cast<std::size_t>(b)] = stop[b];
          --running;
        }
      }
    }
    const auto mel_before = torch::cat(frames, 1);  // [B, frames, n_mels]
    std::vector<MelSynthesis> out;
    out.reserve(static_cast<std::size_t>(batch));
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto n = length[static_cast<std::size_t>(b)];
      const bool ended = n > 0;
      const bool stop = stopped[static_cast<std::size_t>(b)];
      const auto row = mel_before[b].narrow(0, 0, ended ? n : mel_before.size(1)).unsqueeze(0);
      const auto mel = postnet_.is_empty() ? row : row + postnet_->forward(row);
      out.push_back({mel[0], row[0], durations[b], stop, ended && !stop});
    }
    return out;
  }

  /// Trainable scalars.
  std::int64_t parameter_count() const {
    std::int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
  }

  const KokoroModelOptions& options() const { return config_; }

  /// An estimate of the bytes a teacher-forced training forward keeps for
  /// backward without gradient checkpointing, for `batch` clips padded to
  /// `frames` frames and `phonemes` phonemes, with matrix products in
  /// `compute_bytes`-wide elements (2 under bfloat16 autocast, else 4). The
  /// attention weights ([B, heads, L, S] per attention) dominate at TTS
  /// lengths; the per-frame terms count the block's saved activations in
  /// hidden-width units, measured on the small model (benchmarks/README.md).
  std::int64_t activation_bytes(std::int64_t batch, std::int64_t frames, std::int64_t phonemes,
                                std::int64_t compute_bytes) const {
    const double b = static_cast<double>(batch);
    const double f = static_cast<double>(frames);
    const double t = static_cast<double>(phonemes);
    const double d = static_cast<double>(config_.hidden_dim);
    const double ff = static_cast<double>(config_.ff_dim);
    const double h = static_cast<double>(config_.num_heads);
    const double low = static_cast<double>(compute_bytes);
    // Kept per attention: its weights; with attention dropout the reference
    // kernels also keep the dropout mask and the dropped weights.
    const bool three_maps =
        config_.kernels == nn::Kernels::reference && config_.attention_dropout > 0;
    const double maps_per_attention = three_maps ? 3.0 : 1.0;
    const double attention = maps_per_attention * h * low *
                             (2.0 * config_.decoder_layers * f * f +
                              static_cast<double>(config_.encoder_layers) * t * t);
    // Per position and block: LayerNorm inputs and outputs, projections and
    // residual branches (about 16 d, float32), the gated feed-forward's
    // hidden units (about 5 ff).
    const double per_position = 4.0 * (16.0 * d + 5.0 * ff);
    const double blocks = per_position * (static_cast<double>(config_.decoder_layers) * f +
                                          static_cast<double>(config_.encoder_layers) * t);
    // The PostNet: per layer and frame, the convolution's input, its
    // normalised output and the tanh (512 channels by default).
    const double postnet = config_.postnet ? 4.0 * 3.0 * 512.0 * 5.0 * f : 0.0;
    return static_cast<std::int64_t>(b * (attention + blocks + postnet));
  }

  /// Turns gradient checkpointing on or off from the next forward on.
  void set_gradient_checkpointing(bool on) { config_.gradient_checkpointing = on; }
  bool gradient_checkpointing() const { return config_.gradient_checkpointing; }
  std::int64_t n_mels() const { return n_mels_; }

 private:
  /// `config`, or kokoro::Error naming what cannot be built. Runs before
  /// any submodule is made.
  static const KokoroModelOptions& validated(const KokoroModelOptions& config) {
    const auto vocab_size = config.vocab_size;
    const auto n_mels = config.n_mels;
    if (vocab_size < 2 || n_mels <= 0 || config.hidden_dim <= 0 || config.ff_dim <= 0) {
      throw Error(
          fmt::format("KokoroModel: needs vocab_size >= 2 (<pad> and one phoneme), n_mels > 0, "
                      "model.hidden_dim > 0 and model.ff_dim > 0; got {}, {}, {}, {}",
                      vocab_size, n_mels, config.hidden_dim, config.ff_dim));
    }
    if (config.num_heads <= 0 || config.hidden_dim % config.num_heads != 0) {
      throw Error(fmt::format("KokoroModel: num_heads ({}) must divide hidden_dim ({})",
                              config.num_heads, config.hidden_dim));
    }
    return config;
  }

  static nn::TransformerBlockOptions block_options(const KokoroModelOptions& config) {
    return {.dim = config.hidden_dim,
            .heads = config.num_heads,
            .ff_dim = config.ff_dim,
            .dropout = config.dropout,
            .attention_dropout = config.attention_dropout,
            .kernels = config.kernels};
  }

  static nn::DropoutOptions residual_dropout(const KokoroModelOptions& config) {
    return {.p = config.dropout, .kernels = config.kernels};
  }

  std::size_t segment_size() const {
    return static_cast<std::size_t>(std::max<std::int64_t>(1, config_.checkpoint_blocks));
  }

  bool checkpointing() const {
    return config_.gradient_checkpointing && torch::GradMode::is_enabled();
  }

  DecoderOutputs heads(const torch::Tensor& x) {
    return {mel_head_->forward(x), stop_head_->forward(x).squeeze(-1)};
  }

  KokoroModelOptions config_;
  std::int64_t n_mels_;
  torch::nn::Embedding embedding_;
  torch::nn::ModuleList encoder_list_;
  std::vector<nn::EncoderBlock> encoder_;
  torch::nn::LayerNorm encoder_norm_;
  torch::nn::Sequential duration_predictor_;
  torch::nn::Linear decoder_input_;
  torch::nn::ModuleList decoder_list_;
  std::vector<nn::DecoderBlock> decoder_;
  torch::nn::LayerNorm decoder_norm_;
  torch::nn::Linear mel_head_;
  torch::nn::Linear stop_head_;
  PostNet postnet_{nullptr};
  nn::Dropout dropout_;
  align::Aligner aligner_{nullptr};
};
TORCH_MODULE(KokoroModel);

}  // namespace kokoro::tts
