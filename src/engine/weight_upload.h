// Private to the weight loader: host-side conversion of stored tensors (safetensors floats, GGML
// blocks) to the compute dtype or, for GGML Q4_0 / Q8_0 on CUDA, to MLX affine form, and their
// upload to the device, counting the bytes for progress.
#pragma once

#include <cstdint>
#include <span>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/engine/model_weights.h"
#include "mlxn/io/ggml_types.h"
#include "mlxn/io/safetensors_tensor.h"
#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine::detail {

/// Allocates and fills device buffers for one load, reporting bytes done / total after each.
class Uploader {
 public:
  Uploader(Device& device, DType compute_dtype, const LoadProgress& progress);

  /// Sets the total and reports (0, total); call once before the first upload.
  void start(std::int64_t total);

  Device& device() { return device_; }
  DType compute_dtype() const { return compute_dtype_; }
  /// Device bytes uploaded so far.
  std::int64_t done() const { return done_; }

  /// A zero-filled buffer that counts towards the total once `finish` is called on it.
  Buffer alloc(DType dtype, Shape shape);
  /// Counts a filled buffer allocated by alloc(), or a filled view of part of one (the rows of
  /// one part of a fused projection), and reports progress.
  void finish(const Buffer& buffer);
  /// finish() for the packed codes, scales and biases of a quantized weight.
  void finish(const ops::QuantizedWeight& weight);
  /// Zero-filled buffers for `rows` rows of `row_len` GGML elements of `type` (Q4_0 or Q8_0) in
  /// MLX affine form (ggml_repack.h): packed u32 [rows, row_len * bits / 32], scales and biases
  /// f16 [rows, row_len / 32]. Counted once `finish` is called on them.
  ops::QuantizedWeight alloc_repacked(io::GgmlType type, std::int64_t rows, std::int64_t row_len);

  /// The bytes as a new buffer of `dtype` and `shape` (sizes must match).
  Buffer upload_bytes(std::span<const std::byte> bytes, DType dtype, Shape shape);
  /// A float tensor (F64, F32, F16, BF16) converted to the compute dtype, shaped `shape`.
  Buffer upload_float(const io::TensorView& tensor, Shape shape);
  /// GGML data of `type` (whole rows of `row_len` elements) dequantized to the compute dtype.
  Buffer upload_ggml_dequantized(io::GgmlType type, std::span<const std::byte> data,
                                 std::int64_t row_len, Shape shape);
  /// GGML Q4_0 / Q8_0 data (whole rows of `row_len` elements) repacked to MLX affine form as new
  /// buffers (see alloc_repacked); the data must pass ggml_repack_exact.
  ops::QuantizedWeight upload_ggml_repacked(io::GgmlType type, std::span<const std::byte> data,
                                            std::int64_t row_len);

 private:
  Device& device_;
  DType compute_dtype_;
  std::int64_t total_ = 0;
  std::int64_t done_ = 0;
  const LoadProgress& progress_;
};

/// Writes float tensor `tensor` converted to `dst`'s dtype (f32, f16 or bf16; round to nearest
/// even, exactly also from f64) into `dst` starting at element `first`.
void write_float(Buffer dst, std::int64_t first, const io::TensorView& tensor);

/// Writes GGML data (whole rows of `row_len` elements) dequantized to `dst`'s dtype into `dst`
/// starting at element `first`.
void write_ggml_dequantized(Buffer dst, std::int64_t first, io::GgmlType type,
                            std::span<const std::byte> data, std::int64_t row_len);

/// Writes GGML Q4_0 / Q8_0 data (whole rows of `row_len` elements) repacked to MLX affine form
/// (ggml_repack.h) into `dst`, one row of packed codes, scales and biases per data row (`dst` may
/// be row views: one part of a fused projection). Converts in bounded chunks. Throws
/// InvalidArgument when the shapes do not match or a block has no exact MLX form (callers check
/// ggml_repack_exact first, to keep such a tensor in its blocks).
void write_ggml_repacked(const ops::QuantizedWeight& dst, io::GgmlType type,
                         std::span<const std::byte> data, std::int64_t row_len);

/// f64 -> f32 rounded to odd: the last bit records inexactness, so a second rounding to a
/// narrower format (f16, bf16) equals rounding the f64 value directly.
float f64_to_f32_round_odd(double value);

}  // namespace mlxn::engine::detail
