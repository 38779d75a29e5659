// TensorView: a zero-copy view of one tensor in a mapped weight file, plus explicit conversions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/shape.h"
#include "mlxn/io/safetensors_dtype.h"

namespace mlxn::io {

/// One tensor: its name, dtype, shape and raw little-endian bytes (row-major). The bytes point
/// into the file's mapping (zero-copy) and stay valid while the owning file or model lives. The
/// bytes carry no alignment guarantee: read elements with memcpy, not by casting the pointer.
struct TensorView {
  std::string name;
  TensorDType dtype = TensorDType::U8;
  Shape shape;
  std::span<const std::byte> bytes;

  /// Product of the shape (1 for a scalar); throws InvalidArgument on overflow.
  std::int64_t numel() const;
  std::size_t size_bytes() const { return bytes.size(); }
};

/// Copies the tensor out as f32, row-major (numel() values), converting from any dtype: floats
/// round to nearest, integers convert by value, BOOL gives 0 or 1. Throws InvalidArgument when
/// the bytes do not hold exactly numel() elements.
std::vector<float> tensor_to_f32(const TensorView& tensor);

/// Same into caller storage; `out` must have numel() elements.
void tensor_to_f32(const TensorView& tensor, std::span<float> out);

/// Converts elements [first, first + out.size()) of the tensor to f32 (for chunked conversion).
void tensor_to_f32(const TensorView& tensor, std::int64_t first, std::span<float> out);

/// Uploads the bytes unchanged into a new buffer of the same dtype and shape. Throws
/// UnsupportedDType for the F8 types (mlxn has no such DType: use upload_tensor_as) and
/// InvalidArgument for an empty tensor (zero-byte buffers do not exist).
Buffer upload_tensor(Device& device, const TensorView& tensor,
                     MemoryKind kind = MemoryKind::Device);

/// Uploads converted to `dtype`: the tensor's own dtype (no conversion), or a float compute dtype
/// (F32, F16, BF16) from any source dtype. Conversion runs on the host in bounded chunks.
/// Throws InvalidArgument for other targets and for empty tensors.
Buffer upload_tensor_as(Device& device, const TensorView& tensor, DType dtype,
                        MemoryKind kind = MemoryKind::Device);

/// f32 value of an F8_E4M3 (fn: no infinities, S.1111.111 is NaN) byte.
float f8e4m3_to_f32(std::uint8_t bits);
/// f32 value of an F8_E5M2 byte (the top byte of an IEEE half).
float f8e5m2_to_f32(std::uint8_t bits);

}  // namespace mlxn::io
