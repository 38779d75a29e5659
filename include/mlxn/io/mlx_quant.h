// MLX affine quantization on the CPU: bit packing of codes, quantize and dequantize, bit-exact
// with MLX's layout (one LSB-first bit stream per row in little-endian uint32 words).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"

namespace mlxn::io {

/// uint32 words per packed row of `in` codes: in * bits / 32. Throws InvalidArgument unless
/// bits is supported, in > 0 and in * bits is a multiple of 32.
std::int64_t packed_row_words(std::int64_t in, int bits);

/// Packs codes: [rows, in] (each < 2^bits) -> out: [rows, in * bits / 32]. Code i of a row
/// occupies bits [i*bits, (i+1)*bits) of the row's bit stream; word w holds stream bits
/// [32w, 32w+32), least significant first. Throws InvalidArgument on size mismatches or a code
/// that does not fit.
void pack_codes(std::span<const std::uint8_t> codes, std::int64_t rows, std::int64_t in, int bits,
                std::span<std::uint32_t> out);

/// Inverse of pack_codes: packed: [rows, in * bits / 32] -> codes: [rows, in].
void unpack_codes(std::span<const std::uint32_t> packed, std::int64_t rows, std::int64_t in,
                  int bits, std::span<std::uint8_t> codes);

/// Result of quantize_affine. Leading dimensions of the input are kept, so stacked experts
/// [experts, out, in] give packed [experts, out, in*bits/32] and scales [experts, out, in/g].
struct AffineQuantized {
  std::vector<std::uint32_t> packed;  // packed_shape
  std::vector<float> scales;          // group_shape; may be negative (see quantize_affine)
  std::vector<float> biases;          // group_shape
  Shape packed_shape;                 // [..., in * bits / 32]
  Shape group_shape;                  // [..., in / group_size]
};

/// Quantizes w: shape [..., in] (leading dims are rows) with MLX's affine algorithm: per group,
/// scale = (max - min) / (2^bits - 1) (at least 1e-7), anchored at the edge with the larger
/// magnitude (scale negative when that is the max) and nudged so that edge / scale is an
/// integer, making 0 exactly representable; q = clamp(rint((w - bias) / scale), 0, 2^bits - 1).
/// Throws InvalidArgument / QuantConfig on bad shapes, bits or group size.
AffineQuantized quantize_affine(std::span<const float> w, const Shape& shape, int bits,
                                int group_size);

/// Dequantizes w = scale * q + bias. packed: [..., in*bits/32]; scales, biases: [..., in/g];
/// `shape` is the float tensor's shape [..., in]. Returns f32 with that shape.
std::vector<float> dequantize_affine(std::span<const std::uint32_t> packed,
                                     std::span<const float> scales, std::span<const float> biases,
                                     const Shape& shape, int bits, int group_size);

/// A quantized matrix as stored in a file, for reading rows without copying the whole table
/// (quantized embeddings): packed [rows, in*bits/32]; scales, biases [rows, in/group_size] in
/// `scale_dtype` (f32, f16 or bf16).
struct QuantizedMatrixView {
  const std::uint32_t* packed = nullptr;
  const void* scales = nullptr;
  const void* biases = nullptr;
  DType scale_dtype = DType::F32;
  std::int64_t rows = 0;
  std::int64_t in = 0;
  int bits = 4;
  int group_size = 64;
};

/// Dequantizes rows [row_begin, row_begin + row_count) of `m` into out: [row_count, in] f32.
/// Throws InvalidArgument on an out-of-range row, a size mismatch or an unsupported dtype.
void dequantize_rows(const QuantizedMatrixView& m, std::int64_t row_begin, std::int64_t row_count,
                     std::span<float> out);

}  // namespace mlxn::io
