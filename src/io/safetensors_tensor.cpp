// TensorView helpers: element counts, conversion to f32, and explicit uploads to a Device.
#include "mlxn/io/safetensors_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"

namespace mlxn::io {

namespace {

// Host memory used per conversion chunk when uploading with a dtype change: bounded, so that
// converting a multi-GB tensor does not need a second full-size host copy.
constexpr std::size_t kChunkElements = std::size_t{1} << 20;

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

std::string describe(const TensorView& t) {
  return "tensor '" + t.name + "' (" + std::string(tensor_dtype_name(t.dtype)) + " " +
         shape_to_string(t.shape) + ")";
}

// Checks that the byte span holds exactly numel elements and returns numel.
std::int64_t checked_numel(const TensorView& t) {
  const std::int64_t n = t.numel();
  const std::size_t esize = tensor_dtype_size(t.dtype);
  if (static_cast<std::uint64_t>(n) > SIZE_MAX / esize ||
      static_cast<std::size_t>(n) * esize != t.bytes.size()) {
    throw Error(ErrorKind::InvalidArgument, describe(t) + " has " + std::to_string(t.bytes.size()) +
                                                " bytes, which does not match its shape");
  }
  return n;
}

float element_to_f32(TensorDType dtype, const std::byte* p) {
  switch (dtype) {
    case TensorDType::F64:
      return static_cast<float>(load<double>(p));
    case TensorDType::F32:
      return load<float>(p);
    case TensorDType::F16:
      return f16_bits_to_f32(load<std::uint16_t>(p));
    case TensorDType::BF16:
      return bf16_bits_to_f32(load<std::uint16_t>(p));
    case TensorDType::F8E4M3:
      return f8e4m3_to_f32(load<std::uint8_t>(p));
    case TensorDType::F8E5M2:
      return f8e5m2_to_f32(load<std::uint8_t>(p));
    case TensorDType::I64:
      return static_cast<float>(load<std::int64_t>(p));
    case TensorDType::I32:
      return static_cast<float>(load<std::int32_t>(p));
    case TensorDType::I16:
      return static_cast<float>(load<std::int16_t>(p));
    case TensorDType::I8:
      return static_cast<float>(load<std::int8_t>(p));
    case TensorDType::U64:
      return static_cast<float>(load<std::uint64_t>(p));
    case TensorDType::U32:
      return static_cast<float>(load<std::uint32_t>(p));
    case TensorDType::U16:
      return static_cast<float>(load<std::uint16_t>(p));
    case TensorDType::U8:
      return static_cast<float>(load<std::uint8_t>(p));
    case TensorDType::Bool:
      return load<std::uint8_t>(p) != 0 ? 1.0f : 0.0f;
  }
  return 0.0f;
}

Buffer alloc_for(Device& device, const TensorView& t, DType dtype, MemoryKind kind) {
  if (t.bytes.empty()) {
    throw Error(ErrorKind::InvalidArgument,
                describe(t) + " is empty; zero-byte buffers cannot be allocated");
  }
  return device.alloc(dtype, t.shape, kind);
}

}  // namespace

std::int64_t TensorView::numel() const {
  return shape_numel(shape);
}

float f8e4m3_to_f32(std::uint8_t bits) {
  const bool negative = (bits & 0x80u) != 0;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  float value;
  if (exponent == 0xF && mantissa == 0x7) {
    value = std::nanf("");
  } else if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m/8 * 2^-6
  } else {
    value = std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  }
  return negative ? -value : value;
}

float f8e5m2_to_f32(std::uint8_t bits) {
  return f16_bits_to_f32(static_cast<std::uint16_t>(static_cast<std::uint16_t>(bits) << 8));
}

void tensor_to_f32(const TensorView& tensor, std::int64_t first, std::span<float> out) {
  const std::int64_t n = checked_numel(tensor);
  if (first < 0 || first > n || static_cast<std::uint64_t>(n - first) < out.size()) {
    throw Error(ErrorKind::InvalidArgument, describe(tensor) + ": elements [" +
                                                std::to_string(first) + ", +" +
                                                std::to_string(out.size()) + ") out of range");
  }
  const std::size_t esize = tensor_dtype_size(tensor.dtype);
  const std::byte* p = tensor.bytes.data() + static_cast<std::size_t>(first) * esize;
  if (tensor.dtype == TensorDType::F32) {
    std::memcpy(out.data(), p, out.size() * sizeof(float));
    return;
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = element_to_f32(tensor.dtype, p + i * esize);
}

void tensor_to_f32(const TensorView& tensor, std::span<float> out) {
  const std::int64_t n = checked_numel(tensor);
  if (out.size() != static_cast<std::uint64_t>(n)) {
    throw Error(ErrorKind::InvalidArgument, describe(tensor) + ": output has " +
                                                std::to_string(out.size()) + " elements, need " +
                                                std::to_string(n));
  }
  tensor_to_f32(tensor, 0, out);
}

std::vector<float> tensor_to_f32(const TensorView& tensor) {
  std::vector<float> out(static_cast<std::size_t>(checked_numel(tensor)));
  tensor_to_f32(tensor, 0, out);
  return out;
}

Buffer upload_tensor(Device& device, const TensorView& tensor, MemoryKind kind) {
  const std::optional<DType> dtype = to_dtype(tensor.dtype);
  if (!dtype) {
    throw Error(ErrorKind::UnsupportedDType,
                describe(tensor) + " has no mlxn dtype; upload it with an explicit conversion");
  }
  checked_numel(tensor);
  Buffer buffer = alloc_for(device, tensor, *dtype, kind);
  buffer.write(tensor.bytes.data(), tensor.bytes.size());
  return buffer;
}

Buffer upload_tensor_as(Device& device, const TensorView& tensor, DType dtype, MemoryKind kind) {
  if (to_dtype(tensor.dtype) == dtype) return upload_tensor(device, tensor, kind);
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16) {
    throw Error(ErrorKind::InvalidArgument, describe(tensor) + ": cannot convert to " +
                                                std::string(dtype_name(dtype)) +
                                                "; conversions go to f32, f16 or bf16");
  }
  const std::int64_t n = checked_numel(tensor);
  Buffer buffer = alloc_for(device, tensor, dtype, kind);
  const std::size_t out_size = dtype_size(dtype);
  std::vector<float> f32(std::min<std::size_t>(kChunkElements, static_cast<std::size_t>(n)));
  std::vector<std::uint16_t> half(dtype == DType::F32 ? 0 : f32.size());
  for (std::int64_t first = 0; first < n;) {
    const auto count = static_cast<std::size_t>(std::min<std::int64_t>(n - first, f32.size()));
    tensor_to_f32(tensor, first, std::span<float>(f32.data(), count));
    const void* src = f32.data();
    if (dtype != DType::F32) {
      for (std::size_t i = 0; i < count; ++i) {
        half[i] = dtype == DType::F16 ? f32_to_f16_bits(f32[i]) : f32_to_bf16_bits(f32[i]);
      }
      src = half.data();
    }
    buffer.write(src, count * out_size, static_cast<std::size_t>(first) * out_size);
    first += static_cast<std::int64_t>(count);
  }
  return buffer;
}

}  // namespace mlxn::io
