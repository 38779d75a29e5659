// ModelWeights: every tensor a decoder-only transformer needs, bound from a ModelDir (Hugging
// Face or mlx-lm safetensors, or GGUF) and uploaded to a Device, kept in the stored format.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/engine/linear.h"
#include "mlxn/io/model_dir.h"
#include "mlxn/ops/embedding.h"
#include "mlxn/ops/norms.h"

namespace mlxn::engine {

/// Token embedding table: dense rows, or MLX-quantized rows (mlx-community models). GGML tables
/// are dequantized to dense rows at load (there is no GGML row-lookup kernel).
struct EmbeddingWeights {
  Buffer dense;                                  // [vocab, hidden] in the compute dtype, or empty
  std::optional<ops::QuantizedEmbedding> quant;  // set when stored MLX-quantized
};

/// q, k and v read the same normed input. Where their storage allows, they are one allocation
/// (`qkv`, rows q then k then v) and q, k, v are row views of it: decode then runs one mat-vec
/// instead of three latency-bound ones, prefill keeps applying the parts.
struct AttentionWeights {
  Linear qkv;         // [q_rows + 2 * kv_rows, hidden], or invalid when the parts are separate
  Linear q, k, v, o;  // q/k/v: views of qkv when it is valid
  Buffer q_norm;      // [head_dim] (qk-norm families) or empty
  Buffer k_norm;      // [head_dim] or empty
};

/// gate and up read the same input: one allocation `gate_up` (gate rows, then up rows) where
/// their storage allows, with gate and up as its row views (as AttentionWeights::qkv).
struct MlpWeights {
  Linear gate_up;  // [2 * intermediate, hidden], or invalid when the parts are separate
  Linear gate, up, down;
};

struct MoeWeights {
  Linear router;                // [n_experts, hidden]
  ExpertLinear gate, up, down;  // stacked; Hugging Face per-expert tensors are stacked at load
};

/// One decoder layer. Norm weights are [hidden] in the compute dtype; empty when absent.
struct LayerWeights {
  Buffer attn_norm;       // input_layernorm
  Buffer post_attn_norm;  // Gemma 2/3: post_attention_layernorm (applied to the attention output)
  Buffer ffn_norm;        // pre-FFN norm: post_attention_layernorm (Llama, Qwen, Phi-3) or
                          // pre_feedforward_layernorm (Gemma 2/3)
  Buffer post_ffn_norm;   // Gemma 2/3: post_feedforward_layernorm
  AttentionWeights attn;
  std::optional<MlpWeights> mlp;  // dense layers
  std::optional<MoeWeights> moe;  // routed-expert layers
};

struct ModelWeights {
  DType compute_dtype = DType::F32;
  EmbeddingWeights embedding;
  std::vector<LayerWeights> layers;
  Buffer final_norm;  // [hidden]
  Linear lm_head;     // the embedding table itself when tied (MLX-quantized or dense)
  /// How the stored norm weights are applied: OnePlus for Gemma safetensors (w - 1 is stored),
  /// Plain everywhere else, including Gemma GGUF files, whose converter already added the 1.
  ops::NormWeight norm_weight = ops::NormWeight::Plain;
  /// True when Q/K rows are in GGML's interleaved rotary order (llama.cpp permutes q_proj and
  /// k_proj of "llama"-architecture GGUF files), so RoPE must use the Interleaved layout.
  bool rope_interleaved = false;
  std::int64_t bytes = 0;  // device bytes of all weights
};

/// Progress of a load: bytes uploaded so far and in total.
using LoadProgress = std::function<void(std::int64_t done, std::int64_t total)>;

/// Binds and uploads the weights of `model` (validated by ModelDir::check_weights) to `device`.
/// Float tensors are converted to `compute_dtype` (f32, f16 or bf16); MLX-quantized tensors keep
/// their packed codes and their scales/biases as stored. GGML projections whose type
/// ops::ggml_matmul runs natively keep their blocks -- except Q4_0 / Q8_0 projections on CUDA,
/// repacked exactly to MLX affine form (group 32, f16 scales and biases) so that the MLX mat-vec
/// kernels run them; the CPU keeps the blocks. Other GGML tensors (the embedding table included)
/// are dequantized to `compute_dtype`.
/// Throws Format / Unsupported naming the file and tensor when something cannot be bound.
ModelWeights load_model_weights(const io::ModelDir& model, Device& device, DType compute_dtype,
                                const LoadProgress& progress = {});

}  // namespace mlxn::engine
