// Maps GGUF model metadata (llama.cpp's <arch>.* keys) to the normalized ModelConfig.
#pragma once

#include "mlxn/io/gguf_file.h"
#include "mlxn/io/model_config.h"

namespace mlxn::io {

/// ModelConfig from a GGUF file's metadata for the architectures llama, qwen2, qwen3,
/// qwen3moe, gemma2, gemma3 and phi3 (Mistral GGUFs use "llama"). Values llama.cpp hard-codes
/// instead of storing (Gemma 3's local rope base and layer pattern, Gemma's attention scale)
/// are filled in the same way. Throws Unsupported for another architecture (listing the
/// supported ones) and Format, naming the file and key, for missing or absurd metadata.
ModelConfig model_config_from_gguf(const GgufFile& file);

}  // namespace mlxn::io
