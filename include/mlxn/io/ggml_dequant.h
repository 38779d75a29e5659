// CPU dequantization of GGML tensor data to f32, bit-exact with ggml's reference routines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "mlxn/io/ggml_types.h"

namespace mlxn::io {

/// True when ggml_dequantize handles `type`: F32, F16, BF16, F64, I8, I16, I32, Q4_0, Q4_1,
/// Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL.
bool ggml_can_dequantize(GgmlType type);

/// Dequantizes dst.size() elements of `type` stored in `src` (whole blocks, as in a GGUF
/// tensor) to f32. src: [ggml_row_size(type, dst.size())] bytes. Throws Unsupported naming the
/// type when it has no dequantizer, InvalidArgument when sizes do not match.
void ggml_dequantize(GgmlType type, std::span<const std::byte> src, std::span<float> dst);

/// The IQ4_NL codebook: 16 non-linear levels, scaled by the block's f16 d.
extern const std::int8_t kIq4nlValues[16];

}  // namespace mlxn::io
