// Argument checks shared by the op entry points; each throws before anything is queued.
#pragma once

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

}  // namespace mlxn::ops::detail
