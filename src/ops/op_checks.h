// Argument checks shared by the op entry points; each throws before anything is queued.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "mlxn/core/buffer.h"
#include "mlxn/core/error.h"

namespace mlxn::ops::detail {

inline void require_float(const char* op, const char* name, const Buffer& b) {
  if (!b.valid()) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + name + " is an empty buffer");
  }
  if (b.dtype() != DType::F32 && b.dtype() != DType::F16 && b.dtype() != DType::BF16) {
    throw Error(ErrorKind::UnsupportedDType, std::string(op) + ": " + name + " has dtype " +
                                                 std::string(dtype_name(b.dtype())) +
                                                 " (expected f32, f16 or bf16)");
  }
}

inline void require_same_dtype(const char* op, const char* name, const Buffer& b, DType dtype) {
  if (b.dtype() != dtype) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + name + " has dtype " +
                                                std::string(dtype_name(b.dtype())) + ", expected " +
                                                std::string(dtype_name(dtype)));
  }
}

inline void require_numel(const char* op, const char* name, const Buffer& b, std::int64_t n) {
  if (b.numel() != n) {
    throw Error(ErrorKind::InvalidArgument,
                std::string(op) + ": " + name + " has " + std::to_string(b.numel()) +
                    " elements (shape " + shape_to_string(b.shape()) + "), expected " +
                    std::to_string(n));
  }
}

/// True when the two views share bytes.
inline bool overlap(const Buffer& a, const Buffer& b) {
  return a.same_storage(b) && a.offset() < b.offset() + b.size_bytes() &&
         b.offset() < a.offset() + a.size_bytes();
}

/// The rotated dims of a RoPE frequency table (2 x its entries), checked against head_dim, with
/// the attention scale: what ops::rope and ops::rope_kv_append both require.
inline std::int64_t rope_rotary_dim(const char* op, const Buffer& inv_freq, std::int64_t head_dim,
                                    float attention_scale) {
  const auto fail = [op](const std::string& what) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + what);
  };
  if (!inv_freq.valid() || inv_freq.dtype() != DType::F32) fail("inv_freq must be f32");
  const std::int64_t rotary_dim = 2 * inv_freq.numel();
  if (rotary_dim <= 0 || rotary_dim > head_dim) {
    fail("inv_freq has " + std::to_string(inv_freq.numel()) + " entries; 2x that must be in [2, " +
         std::to_string(head_dim) + "]");
  }
  if (!std::isfinite(attention_scale)) fail("attention_scale must be finite");
  return rotary_dim;
}

}  // namespace mlxn::ops::detail
