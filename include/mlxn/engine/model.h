// Model: a loaded model on one device -- config, weights, block features and a KV cache -- that
// turns token ids at positions into logits. Prefill runs in chunks, decode one token at a time;
// each forward call is one command buffer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mlxn/core/device.h"
#include "mlxn/engine/block_features.h"
#include "mlxn/engine/kv_cache.h"
#include "mlxn/engine/model_weights.h"
#include "mlxn/io/model_dir.h"
#include "mlxn/ops/fused_decode.h"

namespace mlxn::engine {

struct ModelOptions {
  Backend backend = Backend::Auto;
  /// Activation dtype; default f32 on the CPU, bf16 on CUDA.
  std::optional<DType> compute_dtype;
  /// KV cache dtype; default: the compute dtype.
  std::optional<DType> cache_dtype;
  /// Positions the KV cache holds (clamped to max_position_embeddings when the config gives it).
  std::int64_t context = 4096;
  /// Most tokens per forward call; longer prompts are prefilled in chunks of this size.
  std::int64_t prefill_chunk = 512;
  /// CUDA with bf16 activations: 4-bit projection weights are re-laid in
  /// ops::QuantLayout::DecodeTiles at load, which batch-1 decode streams faster (docs/perf.md,
  /// issue 7). false keeps MLX's row order (for side-by-side measurements).
  bool decode_tiles = true;
  /// CUDA with bf16 activations and cache, Llama-shaped models whose projections and head are
  /// 4-bit DecodeTiles weights (decode_tiles on): each one-token decode step runs every layer and
  /// the head in one persistent launch (ops::fused_decode_step) instead of ~10 launches a layer.
  /// Costs 1/8 of the 4-bit codes' bytes more device memory (the scales in the step's order).
  /// Model::fused_decode_status() says whether it applies. false runs decode steps op by op (for
  /// side-by-side measurements).
  bool fused_decode = true;
  /// How the fused step's products take their inputs (ops::FusedDecodeInputs): two int8 planes
  /// (finer than bf16) by default, one plane for the last few percent of speed.
  ops::FusedDecodeInputs fused_decode_inputs = ops::FusedDecodeInputs::Int8Pair;
  LoadProgress progress;
};

/// The compute dtype `options` ask for on `backend` (an opened device's): the explicit one, else
/// bf16 on CUDA and f32 on the CPU.
DType resolved_compute_dtype(const ModelOptions& options, Backend backend);

/// How forward_and_sample picks the next token (the generator fills it per step from
/// SamplingParams): penalties (ops::apply_penalties), then argmax when temperature <= 0, else
/// ops::sample with the draw's uniform `u`.
struct SampleStep {
  float temperature = 0.0f;
  std::int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float u = 0.0f;  // in [0, 1): the inverse-CDF draw
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  /// (token id, count) pairs, interleaved, ids distinct (PenaltyWindow::pairs()).
  std::span<const std::int32_t> penalty_counts;
};

class Model {
 public:
  /// Opens `path` (model directory or .gguf), validates, uploads the weights and allocates the
  /// cache. Errors name the file and the problem; an unknown architecture lists the supported.
  static Model load(const std::filesystem::path& path, const ModelOptions& options = {});

  /// A model from a config and weights already on `device` (built in memory, e.g. the random
  /// weights of synthetic_model.h). The compute dtype is the weights'; options.compute_dtype,
  /// when given, must match it. The config is validated like a loaded one.
  static Model from_weights(io::ModelConfig config, ModelWeights weights, Device device,
                            const ModelOptions& options = {});

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const io::ModelConfig& config() const;
  const BlockFeatures& features() const;
  Device& device();
  DType compute_dtype() const;
  const ModelWeights& weights() const;
  KvCache& cache();
  /// Whether one-token decode steps run fused (ModelOptions::fused_decode): "on", or "off: " and
  /// why not ("off: backend is CPU", "off: disabled by option", ...).
  const std::string& fused_decode_status() const;
  /// How the fused step's products take their inputs when one-token decode steps run fused;
  /// nullopt when they run op by op.
  std::optional<ops::FusedDecodeInputs> fused_decode_inputs() const;

  /// Appends `tokens` at positions cache().length() ... (chunked by prefill_chunk) and returns
  /// the f32 logits of the last token [vocab], or of every token [n, vocab] row-major when
  /// `all_logits`. Throws InvalidArgument when the context would overflow or an id is out of
  /// range.
  std::vector<float> forward(std::span<const std::int32_t> tokens, bool all_logits = false);

  /// Logits of every position of `tokens` run from an empty cache ([n, vocab] row-major), as
  /// transformers computes for input_ids; the cache is reset first.
  std::vector<float> score(std::span<const std::int32_t> tokens);

  /// Greedy continuation: prefill `prompt` (cache reset first), then decode `max_new_tokens`
  /// tokens, each picked by argmax on the device (one i32 read back per step). Stops early at
  /// an id in `stop_ids`.
  std::vector<std::int32_t> generate_greedy(std::span<const std::int32_t> prompt,
                                            std::int64_t max_new_tokens,
                                            std::span<const std::int32_t> stop_ids = {});

  /// Appends `tokens` like forward(), then picks the next token from the last position's logits
  /// on the device -- penalties, argmax or ops::sample -- in the same command buffer and reads
  /// back only that id. When `tokens` is the one id the previous pick returned, at the position
  /// after it, that id is already on the device and is not uploaded again.
  std::int32_t forward_and_sample(std::span<const std::int32_t> tokens, const SampleStep& step);

  /// Pipelined decoding, what Generator uses when no penalties apply: queue_sample() encodes and
  /// submits the decode step for the token the previous pick wrote on the device (taken or still
  /// queued) and returns without waiting, so the host encodes the next step while the device
  /// runs this one; take_sample() waits for the oldest queued step and returns its token. At
  /// most two steps are queued. Steps with penalties are refused (they need the picked tokens on
  /// the host). The cache's length counts queued steps. drop_queued() waits for the queued steps
  /// and discards them, cutting the cache back to the last taken token; every other call that
  /// runs the model (and reset) does that first.
  void queue_sample(const SampleStep& step);
  std::int32_t take_sample();
  void drop_queued();
  /// Steps queued and not yet taken.
  std::int64_t queued() const;

  /// Resets the cache.
  void reset();

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  static Model finish(std::unique_ptr<Impl> impl, BlockFeatures features, DType cache_dtype,
                      const ModelOptions& options, const std::string& where);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlxn::engine
