// Synthetic models: random but valid weights of a real model's shape, built in memory and on the
// device without any file -- for benchmarking a shape (`mlxn bench --synthetic`) and for tests.
// The values are cheap pseudo-random bytes (packed codes, small positive scales) so that the
// kernels read exactly the bytes a real model of that storage would and activations stay finite.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mlxn/engine/model.h"

namespace mlxn::engine {

/// How the synthetic projection weights are stored.
enum class SyntheticQuant {
  Mlx4,  // MLX affine, 4 bits, group 64, bf16 scales and biases (quantized embedding too)
  Mlx8,  // MLX affine, 8 bits, group 64, bf16 scales and biases
  Bf16,  // dense in the compute dtype (bf16 on CUDA)
  Q4_0,  // GGML Q4_0 blocks (embedding dense, as GGUF tables are after load)
};

/// "mlx4", "mlx8", "bf16", "q4_0" -> the kind; nullopt otherwise.
std::optional<SyntheticQuant> parse_synthetic_quant(std::string_view name);
std::string_view synthetic_quant_name(SyntheticQuant quant);

/// The presets' names, comma-separated (for help and error messages).
std::string synthetic_presets();

/// Config of a preset: "llama3-8b" (Llama 3.1 8B's shape), "tiny" (a few-MB Llama shape for
/// tests) or "small-fused" (the smallest Llama shape ops::fused_decode_step runs, ~50 MB at 4
/// bits, for its tests). Throws InvalidArgument naming the presets for an unknown name.
io::ModelConfig synthetic_config(std::string_view preset);

/// Random weights of `config`'s shape on `device`, stored as `quant`, activations in
/// `compute_dtype`. The same seed gives the same bytes. Filled on the host in parallel chunks
/// and uploaded tensor by tensor (host memory peaks at one tensor).
ModelWeights make_synthetic_weights(const io::ModelConfig& config, SyntheticQuant quant,
                                    Device& device, DType compute_dtype, std::uint64_t seed = 0);

/// Weight bytes one decoded token reads: every Linear of every layer, the lm head and one
/// embedding row (norm weights are negligible and not counted; nor is the KV cache).
std::int64_t decode_weight_bytes(const ModelWeights& weights);

/// A ready Model of `preset` stored as `quant` on the device options.backend opens; compute dtype
/// options.compute_dtype, else bf16 on CUDA and f32 on the CPU.
Model make_synthetic_model(std::string_view preset, SyntheticQuant quant,
                           const ModelOptions& options = {}, std::uint64_t seed = 0);

}  // namespace mlxn::engine
