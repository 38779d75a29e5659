// Host-side conversion and upload of weights: float tensors to the compute dtype in bounded
// chunks (a multi-GB tensor never needs a second full-size host copy), GGML blocks dequantized
// or repacked to MLX affine form row by row, and byte-exact uploads of packed data.
#include "weight_upload.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ggml_repack.h"
#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "mlxn/io/ggml_dequant.h"

namespace mlxn::engine::detail {

namespace {

// Elements converted per chunk: 4 MB of f32 scratch.
constexpr std::int64_t kChunkElements = std::int64_t{1} << 20;

void require_compute_dtype(DType dtype, const std::string& what) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16) {
    throw Error(ErrorKind::InvalidArgument, what + ": target dtype must be f32, f16 or bf16, got " +
                                                std::string(dtype_name(dtype)));
  }
}

void require_fits(const Buffer& dst, std::int64_t first, std::int64_t n, const std::string& what) {
  if (first < 0 || n < 0 || first > dst.numel() || n > dst.numel() - first) {
    throw Error(ErrorKind::InvalidArgument,
                what + ": elements [" + std::to_string(first) + ", " + std::to_string(first + n) +
                    ") do not fit a buffer of " + std::to_string(dst.numel()));
  }
}

// Stores f32 values as dst's dtype at element `at`; `scratch` is reused between chunks.
void store(Buffer& dst, std::int64_t at, std::span<const float> values,
           std::vector<std::uint16_t>& scratch) {
  const std::size_t es = dtype_size(dst.dtype());
  const void* src = values.data();
  if (dst.dtype() != DType::F32) {
    scratch.resize(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      scratch[i] =
          dst.dtype() == DType::F16 ? f32_to_f16_bits(values[i]) : f32_to_bf16_bits(values[i]);
    }
    src = scratch.data();
  }
  dst.write(src, values.size() * es, static_cast<std::size_t>(at) * es);
}

}  // namespace

float f64_to_f32_round_odd(double value) {
  float f = static_cast<float>(value);  // round to nearest even
  if (std::isnan(value) || static_cast<double>(f) == value) return f;
  // Inexact: truncate toward zero, then set the last bit (sticky) so the f32 value lies strictly
  // between the two f32 neighbours of the exact value; any later rounding to fewer bits then
  // resolves as the exact value would.
  if (std::fabs(static_cast<double>(f)) > std::fabs(value)) f = std::nextafter(f, 0.0f);
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits |= 1u;
  std::memcpy(&f, &bits, 4);
  return f;
}

void write_float(Buffer dst, std::int64_t first, const io::TensorView& tensor) {
  const std::string what = "tensor '" + tensor.name + "'";
  require_compute_dtype(dst.dtype(), what);
  if (tensor.dtype != io::TensorDType::F64 && tensor.dtype != io::TensorDType::F32 &&
      tensor.dtype != io::TensorDType::F16 && tensor.dtype != io::TensorDType::BF16) {
    throw Error(ErrorKind::UnsupportedDType, what + ": expected F64, F32, F16 or BF16, found " +
                                                 std::string(io::tensor_dtype_name(tensor.dtype)));
  }
  const std::int64_t n = tensor.numel();
  if (tensor.bytes.size() != static_cast<std::size_t>(n) * io::tensor_dtype_size(tensor.dtype)) {
    throw Error(ErrorKind::InvalidArgument, what + ": byte size does not match its shape");
  }
  require_fits(dst, first, n, what);
  if (io::to_dtype(tensor.dtype) == dst.dtype()) {
    dst.write(tensor.bytes.data(), tensor.bytes.size(),
              static_cast<std::size_t>(first) * dtype_size(dst.dtype()));
    return;
  }
  std::vector<float> f32(static_cast<std::size_t>(std::min(n, kChunkElements)));
  std::vector<std::uint16_t> scratch;
  for (std::int64_t done = 0; done < n;) {
    const auto count = static_cast<std::size_t>(std::min(n - done, kChunkElements));
    std::span<float> chunk(f32.data(), count);
    if (tensor.dtype == io::TensorDType::F64) {
      const std::byte* p = tensor.bytes.data() + static_cast<std::size_t>(done) * 8;
      for (std::size_t i = 0; i < count; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        chunk[i] = dst.dtype() == DType::F32 ? static_cast<float>(d) : f64_to_f32_round_odd(d);
      }
    } else {
      io::tensor_to_f32(tensor, done, chunk);  // exact for F32, F16, BF16
    }
    store(dst, first + done, chunk, scratch);
    done += static_cast<std::int64_t>(count);
  }
}

void write_ggml_dequantized(Buffer dst, std::int64_t first, io::GgmlType type,
                            std::span<const std::byte> data, std::int64_t row_len) {
  const std::string what = "GGML " + io::ggml_type_name(type) + " data";
  require_compute_dtype(dst.dtype(), what);
  if (row_len <= 0) throw Error(ErrorKind::InvalidArgument, what + ": empty rows");
  const auto row_bytes = static_cast<std::size_t>(io::ggml_row_size(type, row_len));
  if (data.size() % row_bytes != 0) {
    throw Error(ErrorKind::InvalidArgument, what + ": " + std::to_string(data.size()) +
                                                " bytes are not whole rows of " +
                                                std::to_string(row_bytes));
  }
  const auto n_rows = static_cast<std::int64_t>(data.size() / row_bytes);
  require_fits(dst, first, n_rows * row_len, what);
  const std::int64_t rows_per_chunk = std::max<std::int64_t>(1, kChunkElements / row_len);
  std::vector<float> f32(static_cast<std::size_t>(std::min(n_rows, rows_per_chunk) * row_len));
  std::vector<std::uint16_t> scratch;
  for (std::int64_t r = 0; r < n_rows;) {
    const std::int64_t nr = std::min(n_rows - r, rows_per_chunk);
    std::span<float> chunk(f32.data(), static_cast<std::size_t>(nr * row_len));
    io::ggml_dequantize(type,
                        data.subspan(static_cast<std::size_t>(r) * row_bytes,
                                     static_cast<std::size_t>(nr) * row_bytes),
                        chunk);
    store(dst, first + r * row_len, chunk, scratch);
    r += nr;
  }
}

void write_ggml_repacked(const ops::QuantizedWeight& dst, io::GgmlType type,
                         std::span<const std::byte> data, std::int64_t row_len) {
  const std::string what = "GGML " + io::ggml_type_name(type) + " data";
  const std::optional<MlxRepackFormat> f = ggml_repack_format(type);
  if (!f) throw Error(ErrorKind::InvalidArgument, what + ": has no MLX affine form");
  if (row_len <= 0 || row_len % f->group_size != 0) {
    throw Error(ErrorKind::InvalidArgument,
                what + ": rows of " + std::to_string(row_len) + " elements are not whole blocks");
  }
  const auto row_bytes = static_cast<std::size_t>(io::ggml_row_size(type, row_len));
  const auto n_rows = static_cast<std::int64_t>(data.size() / row_bytes);
  const std::int64_t words = row_len * f->bits / 32, groups = row_len / f->group_size;
  if (data.size() % row_bytes != 0 || dst.bits != f->bits || dst.group_size != f->group_size ||
      dst.packed.dtype() != DType::U32 || dst.packed.shape() != Shape{n_rows, words} ||
      dst.scales.dtype() != DType::F16 || dst.scales.shape() != Shape{n_rows, groups} ||
      dst.biases.dtype() != DType::F16 || dst.biases.shape() != Shape{n_rows, groups}) {
    throw Error(ErrorKind::InvalidArgument,
                what + ": " + std::to_string(data.size()) + " bytes of rows of " +
                    std::to_string(row_len) + " do not fit " + std::to_string(dst.bits) +
                    "-bit packed " + shape_to_string(dst.packed.shape()) + ", scales " +
                    shape_to_string(dst.scales.shape()) + " and biases " +
                    shape_to_string(dst.biases.shape()) + " (u32 / f16 / f16 expected)");
  }
  const std::int64_t rows_per_chunk = std::max<std::int64_t>(1, kChunkElements / row_len);
  const std::int64_t chunk_rows = std::min(n_rows, rows_per_chunk);
  std::vector<std::uint32_t> packed(static_cast<std::size_t>(chunk_rows * words));
  std::vector<std::uint16_t> scales(static_cast<std::size_t>(chunk_rows * groups));
  std::vector<std::uint16_t> biases(scales.size());
  Buffer out_packed = dst.packed, out_scales = dst.scales, out_biases = dst.biases;
  for (std::int64_t r = 0; r < n_rows;) {
    const std::int64_t nr = std::min(n_rows - r, rows_per_chunk);
    const auto nw = static_cast<std::size_t>(nr * words),
               ng = static_cast<std::size_t>(nr * groups);
    if (!repack_ggml_blocks(type,
                            data.subspan(static_cast<std::size_t>(r) * row_bytes,
                                         static_cast<std::size_t>(nr) * row_bytes),
                            std::span(packed).first(nw), std::span(scales).first(ng),
                            std::span(biases).first(ng))) {
      throw Error(ErrorKind::InvalidArgument,
                  what + ": a block's bias does not fit f16 exactly (rows " + std::to_string(r) +
                      ".." + std::to_string(r + nr - 1) + "); keep the tensor in its blocks");
    }
    out_packed.write(packed.data(), nw * 4, static_cast<std::size_t>(r * words) * 4);
    out_scales.write(scales.data(), ng * 2, static_cast<std::size_t>(r * groups) * 2);
    out_biases.write(biases.data(), ng * 2, static_cast<std::size_t>(r * groups) * 2);
    r += nr;
  }
}

Uploader::Uploader(Device& device, DType compute_dtype, const LoadProgress& progress)
    : device_(device), compute_dtype_(compute_dtype), progress_(progress) {}

void Uploader::start(std::int64_t total) {
  total_ = total;
  if (progress_) progress_(done_, total_);
}

Buffer Uploader::alloc(DType dtype, Shape shape) {
  return device_.alloc(dtype, std::move(shape));
}

void Uploader::finish(const Buffer& buffer) {
  done_ += static_cast<std::int64_t>(buffer.size_bytes());
  if (progress_) progress_(done_, total_);
}

void Uploader::finish(const ops::QuantizedWeight& weight) {
  finish(weight.packed);
  finish(weight.scales);
  finish(weight.biases);
}

ops::QuantizedWeight Uploader::alloc_repacked(io::GgmlType type, std::int64_t rows,
                                              std::int64_t row_len) {
  const std::optional<MlxRepackFormat> f = ggml_repack_format(type);
  if (!f || rows <= 0 || row_len <= 0 || row_len % f->group_size != 0) {
    throw Error(ErrorKind::InvalidArgument,
                "upload: GGML " + io::ggml_type_name(type) + " [" + std::to_string(rows) + ", " +
                    std::to_string(row_len) + "] has no MLX affine form");
  }
  ops::QuantizedWeight w;
  w.bits = f->bits;
  w.group_size = f->group_size;
  w.packed = alloc(DType::U32, {rows, row_len * f->bits / 32});
  w.scales = alloc(DType::F16, {rows, row_len / f->group_size});
  w.biases = alloc(DType::F16, {rows, row_len / f->group_size});
  return w;
}

Buffer Uploader::upload_bytes(std::span<const std::byte> bytes, DType dtype, Shape shape) {
  Buffer b = alloc(dtype, std::move(shape));
  if (b.size_bytes() != bytes.size()) {
    throw Error(ErrorKind::InvalidArgument, "upload: " + std::to_string(bytes.size()) +
                                                " bytes for a buffer of " +
                                                std::to_string(b.size_bytes()));
  }
  b.write(bytes.data(), bytes.size());
  finish(b);
  return b;
}

Buffer Uploader::upload_float(const io::TensorView& tensor, Shape shape) {
  if (shape_numel(shape) != tensor.numel()) {
    throw Error(ErrorKind::InvalidArgument, "tensor '" + tensor.name + "': cannot upload " +
                                                shape_to_string(tensor.shape) + " as " +
                                                shape_to_string(shape));
  }
  Buffer b = alloc(compute_dtype_, std::move(shape));
  write_float(b, 0, tensor);
  finish(b);
  return b;
}

Buffer Uploader::upload_ggml_dequantized(io::GgmlType type, std::span<const std::byte> data,
                                         std::int64_t row_len, Shape shape) {
  const std::int64_t n = shape_numel(shape);
  if (row_len <= 0 || n % row_len != 0 ||
      io::ggml_row_size(type, row_len) * static_cast<std::uint64_t>(n / row_len) != data.size()) {
    throw Error(ErrorKind::InvalidArgument, "upload: " + std::to_string(data.size()) +
                                                " bytes of GGML " + io::ggml_type_name(type) +
                                                " data do not hold " + shape_to_string(shape));
  }
  Buffer b = alloc(compute_dtype_, std::move(shape));
  write_ggml_dequantized(b, 0, type, data, row_len);
  finish(b);
  return b;
}

ops::QuantizedWeight Uploader::upload_ggml_repacked(io::GgmlType type,
                                                    std::span<const std::byte> data,
                                                    std::int64_t row_len) {
  const std::optional<std::uint64_t> row_bytes =
      row_len > 0 ? io::ggml_try_row_size(type, static_cast<std::uint64_t>(row_len)) : std::nullopt;
  if (!row_bytes || *row_bytes == 0 || data.size() % *row_bytes != 0) {
    throw Error(ErrorKind::InvalidArgument, "upload: " + std::to_string(data.size()) +
                                                " bytes of GGML " + io::ggml_type_name(type) +
                                                " data are not whole rows of " +
                                                std::to_string(row_len));
  }
  const auto rows = static_cast<std::int64_t>(data.size() / *row_bytes);
  ops::QuantizedWeight w = alloc_repacked(type, rows, row_len);
  write_ggml_repacked(w, type, data, row_len);
  finish(w);
  return w;
}

}  // namespace mlxn::engine::detail
