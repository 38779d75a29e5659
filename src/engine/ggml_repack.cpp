// GGML Q4_0 / Q8_0 -> MLX affine repacking (ggml_repack.h): per block, the f16 scale is kept,
// the bias is the scale times -8 or -128 (checked to be exact), and the codes are regrouped into
// MLX's LSB-first u32 words with word-wide bit operations (a multi-GB tensor converts in seconds).
#include "ggml_repack.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"

namespace mlxn::engine::detail {

// Blocks are read and words written as little-endian integers (GGUF and MLX both are).
static_assert(std::endian::native == std::endian::little, "GGML repacking assumes little-endian");

namespace {

constexpr std::size_t kBlock = 32;                // elements per Q4_0 / Q8_0 block (= MLX group)
constexpr std::size_t kQ4Bytes = 2 + kBlock / 2;  // f16 d + 16 bytes of nibbles
constexpr std::size_t kQ8Bytes = 2 + kBlock;      // f16 d + 32 int8

// What the code c of a block stands for: d * (c - kOffset). kOffset is 8 for Q4_0 (nibbles
// 0..15 for -8..7) and 128 for Q8_0 (int8 -128..127 stored as c = q + 128), so the bias is
// -kOffset * d.
float code_offset(io::GgmlType type) {
  return type == io::GgmlType::Q4_0 ? 8.0f : 128.0f;
}

std::size_t block_bytes(io::GgmlType type) {
  return type == io::GgmlType::Q4_0 ? kQ4Bytes : kQ8Bytes;
}

// The f16 bias -offset * d, or nullopt when it is not exactly that value as a finite f16
// (overflow; d itself infinite or NaN). Multiplying by a power of two is otherwise exact.
std::optional<std::uint16_t> exact_bias(std::uint16_t d, float offset) {
  const float want = f16_bits_to_f32(d) * -offset;  // exact in f32
  const std::uint16_t bias = f32_to_f16_bits(want);
  const float got = f16_bits_to_f32(bias);
  if (!std::isfinite(got) || got != want) return std::nullopt;
  return bias;
}

std::uint16_t d_of(const std::byte* block) {
  std::uint16_t d;
  std::memcpy(&d, block, 2);
  return d;
}

// The low nibbles of the 8 bytes of x, nibble of byte i at bits [4i, 4i + 4): halves the lane
// width three times, each step moving every odd lane's nibbles next to its even neighbour's.
std::uint32_t gather_nibbles(std::uint64_t x) {
  x &= 0x0F0F0F0F0F0F0F0Full;
  x = (x | (x >> 4)) & 0x00FF00FF00FF00FFull;
  x = (x | (x >> 8)) & 0x0000FFFF0000FFFFull;
  x = (x | (x >> 16)) & 0x00000000FFFFFFFFull;
  return static_cast<std::uint32_t>(x);
}

// Q4_0 codes: element j < 16 is the low nibble of qs[j], element j + 16 the high one. MLX word t
// holds elements 8t..8t+7, so words 0, 1 are the low nibbles of qs[0..7], qs[8..15] and words
// 2, 3 their high nibbles.
void pack_q4_0(const std::byte* qs, std::uint32_t* words) {
  std::uint64_t lo, hi;
  std::memcpy(&lo, qs, 8);
  std::memcpy(&hi, qs + 8, 8);
  words[0] = gather_nibbles(lo);
  words[1] = gather_nibbles(hi);
  words[2] = gather_nibbles(lo >> 4);
  words[3] = gather_nibbles(hi >> 4);
}

// Q8_0 codes: q + 128 is q's byte with the top bit flipped; word t holds elements 4t..4t+3 at
// bytes 0..3, which is the int8 array read as little-endian u32.
void pack_q8_0(const std::byte* qs, std::uint32_t* words) {
  std::memcpy(words, qs, kBlock);
  for (std::size_t t = 0; t < kBlock / 4; ++t) words[t] ^= 0x80808080u;
}

}  // namespace

std::optional<MlxRepackFormat> ggml_repack_format(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_0:
      return MlxRepackFormat{4, static_cast<int>(kBlock)};
    case io::GgmlType::Q8_0:
      return MlxRepackFormat{8, static_cast<int>(kBlock)};
    default:
      return std::nullopt;
  }
}

bool repacks_ggml(Backend backend, io::GgmlType type) {
  return backend == Backend::Cuda && ggml_repack_format(type).has_value();
}

std::int64_t mlx_repacked_bytes(MlxRepackFormat f, std::int64_t n_elements) {
  return n_elements * f.bits / 8 + 2 * (n_elements / f.group_size) * 2;
}

bool ggml_repack_exact(io::GgmlType type, std::span<const std::byte> data) {
  if (!ggml_repack_format(type)) return false;
  const std::size_t bb = block_bytes(type);
  const float offset = code_offset(type);
  for (std::size_t at = 0; at + bb <= data.size(); at += bb) {
    if (!exact_bias(d_of(data.data() + at), offset)) return false;
  }
  return true;
}

bool repack_ggml_blocks(io::GgmlType type, std::span<const std::byte> data,
                        std::span<std::uint32_t> packed, std::span<std::uint16_t> scales,
                        std::span<std::uint16_t> biases) {
  const std::optional<MlxRepackFormat> f = ggml_repack_format(type);
  if (!f) {
    throw Error(ErrorKind::InvalidArgument,
                "repack_ggml_blocks: GGML " + io::ggml_type_name(type) + " has no MLX form");
  }
  const std::size_t bb = block_bytes(type);
  const std::size_t n_blocks = data.size() / bb;
  const auto words = static_cast<std::size_t>(f->bits);  // u32 words per block of 32 codes
  if (data.size() % bb != 0 || packed.size() != n_blocks * words || scales.size() != n_blocks ||
      biases.size() != n_blocks) {
    throw Error(ErrorKind::InvalidArgument,
                "repack_ggml_blocks: " + std::to_string(data.size()) + " bytes of GGML " +
                    io::ggml_type_name(type) + " for " + std::to_string(packed.size()) +
                    " words, " + std::to_string(scales.size()) + " scales and " +
                    std::to_string(biases.size()) + " biases");
  }
  const float offset = code_offset(type);
  for (std::size_t b = 0; b < n_blocks; ++b) {
    const std::byte* block = data.data() + b * bb;
    const std::uint16_t d = d_of(block);
    const std::optional<std::uint16_t> bias = exact_bias(d, offset);
    if (!bias) return false;
    scales[b] = d;
    biases[b] = *bias;
    if (type == io::GgmlType::Q4_0) {
      pack_q4_0(block + 2, packed.data() + b * words);
    } else {
      pack_q8_0(block + 2, packed.data() + b * words);
    }
  }
  return true;
}

std::optional<MlxRepacked> repack_ggml(io::GgmlType type, std::span<const std::byte> data) {
  const std::optional<MlxRepackFormat> f = ggml_repack_format(type);
  if (!f) return std::nullopt;
  const std::size_t n_blocks = data.size() / block_bytes(type);
  MlxRepacked r;
  r.bits = f->bits;
  r.group_size = f->group_size;
  r.packed.resize(n_blocks * static_cast<std::size_t>(f->bits));
  r.scales.resize(n_blocks);
  r.biases.resize(n_blocks);
  if (!repack_ggml_blocks(type, data, r.packed, r.scales, r.biases)) return std::nullopt;
  return r;
}

}  // namespace mlxn::engine::detail
