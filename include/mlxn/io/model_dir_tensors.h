// Expected tensors per architecture family (Hugging Face / mlx-lm names and shapes) and their
// validation against the tensors of a safetensors model, including MLX-quantized modules.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/shape.h"
#include "mlxn/io/mlx_quant_config.h"
#include "mlxn/io/model_config.h"
#include "mlxn/io/safetensors_tensor.h"

namespace mlxn::io {

/// Where a family's tensors live and how experts are stored; found from the tensor names.
struct TensorNaming {
  /// Prefix of the decoder body: "model." (HF, mlx-lm), "language_model.model." (mlx-lm and
  /// older transformers for Gemma 3 multimodal) or "model.language_model." (newer transformers).
  std::string body = "model.";
  /// The output projection's tensor name (unused when embeddings are tied).
  std::string lm_head = "lm_head.weight";
  /// MoE experts stacked as mlp.switch_mlp.{gate,up,down}_proj [experts, out, in] (mlx-lm)
  /// instead of mlp.experts.E.{gate,up,down}_proj (Hugging Face).
  bool stacked_experts = false;
};

/// One tensor the architecture needs.
struct ExpectedTensor {
  std::string name;  // full tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
  Shape shape;       // logical (dequantized) shape: [out, in], [experts, out, in] or [n]
  bool quantizable;  // a linear or embedding weight, which MLX may store quantized
};

/// The tensors `config`'s family needs under `naming`. Throws Unsupported for
/// Architecture::Unknown, listing the supported families.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config, const TensorNaming& naming);

/// How one expected tensor is stored in the files.
struct TensorBinding {
  ExpectedTensor expected;
  // Set when stored MLX-quantized (.weight U32 + .scales/.biases).
  std::optional<QuantParams> quant;
  // Safetensors: the .weight dtype (U32 when quantized).
  TensorDType dtype = TensorDType::F32;
  // The tensor's name in the file (GGUF: "blk.0.attn_q.weight").
  std::string stored_name;
  // Storage type: "BF16", "U32" (MLX-quantized), or a GGML type such as "q4_K".
  std::string type_name;
};

/// Result of matching a model's tensors against its architecture.
struct WeightCheck {
  TensorNaming naming;
  std::vector<TensorBinding> bindings;  // one per expected tensor, in expected_tensors order
  std::vector<std::string> unused;      // tensors present but not needed (e.g. vision tower)
};

/// Detects the naming (prefix, expert layout) from the tensor names.
TensorNaming detect_naming(const ModelConfig& config, std::span<const TensorView> tensors);

/// Checks that every expected tensor is present with the expected shape and a float dtype, or,
/// where `<module>.scales` exists, as MLX affine quantization: .weight U32
/// [..., out, in*bits/32], .scales/.biases [..., out, in/group_size] in a float dtype, with bits
/// and group size from config.quantization (for_module) or, when the config has none, inferred
/// from the shapes. Throws Format "<source>: tensor 'name': expected shape [..] ..., found [..]"
/// or "<source>: missing tensor 'name' ...", QuantConfig when quantized weights contradict the
/// config, Unsupported for an unknown architecture.
WeightCheck check_weights(const ModelConfig& config, std::span<const TensorView> tensors,
                          std::string_view source);

}  // namespace mlxn::io
