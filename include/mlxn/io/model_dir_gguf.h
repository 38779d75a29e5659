// Expected-tensor validation for GGUF files: Hugging Face names mapped to llama.cpp's.
#pragma once

#include <string>
#include <string_view>

#include "mlxn/io/gguf_file.h"
#include "mlxn/io/model_dir_tensors.h"

namespace mlxn::io {

/// The GGUF name of a Hugging Face tensor name as llama.cpp's converter writes it
/// ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"); `arch` selects the
/// Gemma norm names. Experts map from the stacked form (mlp.switch_mlp.*). Empty when unknown.
std::string gguf_tensor_name(std::string_view hf_name, Architecture arch);

/// Checks a GGUF file's tensors against `config` (from model_config_from_gguf): every tensor
/// the family needs, under its GGUF name, with the expected logical shape (any GGML type).
/// Errors as in check_weights, naming the GGUF tensor.
WeightCheck check_gguf_weights(const ModelConfig& config, const GgufFile& file);

}  // namespace mlxn::io
