// Private to the weight loader: exact conversion of GGML Q4_0 / Q8_0 blocks to MLX affine
// quantization (group 32, f16 scales and biases), so that the CUDA backend runs GGUF projections
// through the MLX mat-vec kernels, whose rows are 16-byte aligned (GGML blocks of 18 / 34 bytes
// are only 2-byte aligned). Both formats are `scale * code + offset` per block of 32:
//   Q4_0: x = d * (q - 8),  q = nibble     -> code q,       scale d, bias -8 d
//   Q8_0: x = d * q,        q = int8       -> code q + 128, scale d, bias -128 d
// d is f16 and the bias is d times a power of two, so it is the same f16 value scaled -- exact
// unless it overflows f16. Every MLX value scale * code + bias then equals the GGML value
// exactly in f32 (both products are exact, and so is their sum, a multiple of d with at most
// 19 significant bits); only the sign of a zero may differ (+0 for -0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mlxn/core/device.h"
#include "mlxn/io/ggml_types.h"

namespace mlxn::engine::detail {

/// The MLX affine layout a GGML type converts to exactly.
struct MlxRepackFormat {
  int bits = 0;
  int group_size = 0;
};

/// {4, 32} for Q4_0, {8, 32} for Q8_0, nullopt for every other type.
std::optional<MlxRepackFormat> ggml_repack_format(io::GgmlType type);

/// True when `backend` stores GGML projections of `type` repacked to MLX affine form (where every
/// block converts exactly): on CUDA, for the types ggml_repack_format converts. The CPU keeps
/// the GGML blocks -- it is the reference the repacked CUDA results are tested against.
bool repacks_ggml(Backend backend, io::GgmlType type);

/// Device bytes of `n_elements` weights in MLX form `f` with f16 scales and biases.
std::int64_t mlx_repacked_bytes(MlxRepackFormat f, std::int64_t n_elements);

/// True when every block of `data` (whole blocks of `type`) has an exact MLX form: its bias
/// (-8 d or -128 d) is a finite f16. False for a type ggml_repack_format does not convert.
bool ggml_repack_exact(io::GgmlType type, std::span<const std::byte> data);

/// Converts whole blocks of `type` (so also whole rows of any length): block b becomes packed
/// words [b * bits, (b + 1) * bits) -- 32 codes, one LSB-first bit stream, as io::pack_codes
/// writes a row -- and scales[b], biases[b] (f16 bits). Since the group is the block, rows of
/// `in` elements are rows of in * bits / 32 words and in / 32 groups, as ops::QuantizedWeight
/// wants them. Returns false when some block has no exact form (the outputs are then partly
/// written and must be discarded). Throws InvalidArgument for an unconverted type or sizes that
/// do not match.
bool repack_ggml_blocks(io::GgmlType type, std::span<const std::byte> data,
                        std::span<std::uint32_t> packed, std::span<std::uint16_t> scales,
                        std::span<std::uint16_t> biases);

/// A GGML tensor in MLX affine form: packed [rows, in * bits / 32], scales and biases
/// [rows, in / group_size] as f16 bits.
struct MlxRepacked {
  int bits = 0;
  int group_size = 0;
  std::vector<std::uint32_t> packed;
  std::vector<std::uint16_t> scales;
  std::vector<std::uint16_t> biases;
};

/// `data` (whole blocks of `type`) repacked, or nullopt when the type has no MLX form or some
/// block's bias does not fit f16 -- the tensor must then stay in its GGML blocks.
std::optional<MlxRepacked> repack_ggml(io::GgmlType type, std::span<const std::byte> data);

}  // namespace mlxn::engine::detail
