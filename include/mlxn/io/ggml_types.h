// GGML tensor types: ids as stored in GGUF files, names, block sizes and byte sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mlxn::io {

/// A GGML tensor element type, by the id GGUF files store. Ids 4, 5, 31-33 and 36-38 belong to
/// formats ggml removed; they are recognised so files using them get a clear message.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q4_2 = 4,  // removed from ggml
  Q4_3 = 5,  // removed from ggml
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  Q4_0_4_4 = 31,  // removed from ggml (repacked at load time now)
  Q4_0_4_8 = 32,  // removed
  Q4_0_8_8 = 33,  // removed
  TQ1_0 = 34,
  TQ2_0 = 35,
  IQ4_NL_4_4 = 36,  // removed
  IQ4_NL_4_8 = 37,  // removed
  IQ4_NL_8_8 = 38,  // removed
  MXFP4 = 39,
};

/// One past the largest id mlxn knows.
inline constexpr std::uint32_t kGgmlTypeCount = 40;

/// Static facts about a GGML type.
struct GgmlTypeTraits {
  std::string_view name;     // ggml's lowercase name: "f32", "q4_0", "iq4_nl"
  std::uint32_t block_size;  // elements per block (1 for plain types)
  std::uint32_t type_size;   // bytes per block
  bool quantized;            // block-quantized (block_size > 1)
  bool removed;              // id retired by ggml; files using it cannot be loaded
};

/// The type for a stored id, or nullopt where the id is not a GGML type mlxn knows.
std::optional<GgmlType> ggml_type_from_id(std::uint32_t id);

/// Traits of a type; throws Error(Format) "unknown GGML type id N" for ids outside the enum.
const GgmlTypeTraits& ggml_type_traits(GgmlType type);

/// ggml's lowercase name ("q4_k"); "type#N" for unknown ids (never throws: used in messages).
std::string ggml_type_name(GgmlType type);

/// Bytes of `n_elements` elements of `type`, or nullopt when n_elements is not a multiple of
/// the block size or the size overflows uint64. Never throws for known types.
std::optional<std::uint64_t> ggml_try_row_size(GgmlType type, std::uint64_t n_elements);

/// Bytes of `n_elements` elements of `type`; throws InvalidArgument when n_elements is not a
/// multiple of the block size or the size overflows.
std::uint64_t ggml_row_size(GgmlType type, std::uint64_t n_elements);

}  // namespace mlxn::io
