// DType: element types of buffers, with their sizes and names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mlxn {

/// Element type of a buffer. Quantized blocks travel as U8 or U32.
enum class DType : std::uint8_t { F32, F16, BF16, F64, I8, I16, I32, I64, U8, U16, U32, U64, Bool };

/// Size of one element in bytes.
std::size_t dtype_size(DType dtype);

/// Short lowercase name: "f32", "bf16", "u8", "bool".
std::string_view dtype_name(DType dtype);

/// Parses a name produced by dtype_name; throws InvalidArgument on anything else.
DType dtype_from_name(std::string_view name);

/// True for f32, f16, bf16 and f64.
bool dtype_is_float(DType dtype);

}  // namespace mlxn
