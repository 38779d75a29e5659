// CPU quantization of f32 data into GGML block formats, following ggml's reference quantizers.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "mlxn/io/ggml_types.h"

namespace mlxn::io {

/// True when ggml_quantize handles `type`: F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q6_K.
bool ggml_can_quantize(GgmlType type);

/// Quantizes src (a whole number of blocks) into dst: [ggml_row_size(type, src.size())] bytes.
/// Uses ggml's reference (non-imatrix) algorithms. Throws Unsupported naming the type when it
/// has no quantizer, InvalidArgument when sizes do not match.
void ggml_quantize(GgmlType type, std::span<const float> src, std::span<std::byte> dst);

/// ggml_quantize into a new vector.
std::vector<std::byte> ggml_quantize(GgmlType type, std::span<const float> src);

}  // namespace mlxn::io
