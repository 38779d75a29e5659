// MLX affine quantization on the CPU: packing, quantize (MLX's algorithm), dequantize.
#include "mlxn/io/mlx_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "mlxn/io/mlx_quant_config.h"

namespace mlxn::io {

namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, what);
}

void check_bits(int bits) {
  if (!quant_bits_supported(bits)) {
    invalid("MLX affine quantization: bits " + std::to_string(bits) +
            " is not supported (expected 2, 3, 4, 5, 6 or 8)");
  }
}

// Rows and row length of a [..., in] shape, with overflow-checked element count.
void split_rows(const Shape& shape, std::int64_t& rows, std::int64_t& in) {
  if (shape.empty()) invalid("MLX affine quantization: tensor shape must have at least one dim");
  const std::int64_t n = shape_numel(shape);
  in = shape.back();
  if (in <= 0) invalid("MLX affine quantization: empty rows in shape " + shape_to_string(shape));
  rows = n / in;
}

void check_group(std::int64_t in, int group_size) {
  if (!quant_group_size_supported(group_size)) {
    invalid("MLX affine quantization: group_size " + std::to_string(group_size) +
            " is not supported (expected 32, 64 or 128)");
  }
  if (in % group_size != 0) {
    invalid("MLX affine quantization: row length " + std::to_string(in) +
            " is not a multiple of group_size " + std::to_string(group_size));
  }
}

// Writes `bits` bits of `code` at stream position `bit` of a row; codes may straddle words
// (3, 5 and 6 bits), which the 64-bit window covers since bits <= 8.
inline void put_code(std::uint32_t* row, std::int64_t bit, int bits, std::uint32_t code) {
  const std::int64_t w = bit >> 5;
  const int off = static_cast<int>(bit & 31);
  row[w] |= code << off;
  if (off + bits > 32) row[w + 1] |= code >> (32 - off);
}

inline std::uint32_t get_code(const std::uint32_t* row, std::int64_t bit, int bits,
                              std::int64_t n_words) {
  const std::int64_t w = bit >> 5;
  const int off = static_cast<int>(bit & 31);
  std::uint64_t window = row[w];
  if (off + bits > 32 && w + 1 < n_words) window |= static_cast<std::uint64_t>(row[w + 1]) << 32;
  return static_cast<std::uint32_t>((window >> off) & ((1u << bits) - 1u));
}

float load_scale(const void* p, DType dtype, std::int64_t i) {
  switch (dtype) {
    case DType::F32:
      return static_cast<const float*>(p)[i];
    case DType::F16:
      return f16_bits_to_f32(static_cast<const std::uint16_t*>(p)[i]);
    case DType::BF16:
      return bf16_bits_to_f32(static_cast<const std::uint16_t*>(p)[i]);
    default:
      invalid(std::string("MLX affine dequantize: scales/biases dtype ") +
              std::string(dtype_name(dtype)) + " is not f32, f16 or bf16");
  }
}

}  // namespace

std::int64_t packed_row_words(std::int64_t in, int bits) {
  check_bits(bits);
  if (in <= 0 || in > (std::numeric_limits<std::int64_t>::max() / 8)) {
    invalid("MLX affine packing: bad row length " + std::to_string(in));
  }
  if ((in * bits) % 32 != 0) {
    invalid("MLX affine packing: row length " + std::to_string(in) + " * " + std::to_string(bits) +
            " bits is not a multiple of 32");
  }
  return in * bits / 32;
}

void pack_codes(std::span<const std::uint8_t> codes, std::int64_t rows, std::int64_t in, int bits,
                std::span<std::uint32_t> out) {
  const std::int64_t words = packed_row_words(in, bits);
  if (rows < 0 ||
      static_cast<std::uint64_t>(codes.size()) !=
          static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(in) ||
      static_cast<std::uint64_t>(out.size()) !=
          static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(words)) {
    invalid("MLX affine packing: buffer sizes do not match " + std::to_string(rows) + " rows of " +
            std::to_string(in) + " codes");
  }
  const std::uint32_t limit = 1u << bits;
  std::fill(out.begin(), out.end(), 0u);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* src = codes.data() + r * in;
    std::uint32_t* dst = out.data() + r * words;
    for (std::int64_t i = 0; i < in; ++i) {
      if (src[i] >= limit) {
        invalid("MLX affine packing: code " + std::to_string(src[i]) + " at row " +
                std::to_string(r) + ", column " + std::to_string(i) + " does not fit in " +
                std::to_string(bits) + " bits");
      }
      put_code(dst, i * bits, bits, src[i]);
    }
  }
}

void unpack_codes(std::span<const std::uint32_t> packed, std::int64_t rows, std::int64_t in,
                  int bits, std::span<std::uint8_t> codes) {
  const std::int64_t words = packed_row_words(in, bits);
  if (rows < 0 ||
      static_cast<std::uint64_t>(codes.size()) !=
          static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(in) ||
      static_cast<std::uint64_t>(packed.size()) !=
          static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(words)) {
    invalid("MLX affine unpacking: buffer sizes do not match " + std::to_string(rows) +
            " rows of " + std::to_string(in) + " codes");
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint32_t* src = packed.data() + r * words;
    std::uint8_t* dst = codes.data() + r * in;
    for (std::int64_t i = 0; i < in; ++i) {
      dst[i] = static_cast<std::uint8_t>(get_code(src, i * bits, bits, words));
    }
  }
}

AffineQuantized quantize_affine(std::span<const float> w, const Shape& shape, int bits,
                                int group_size) {
  check_bits(bits);
  std::int64_t rows = 0, in = 0;
  split_rows(shape, rows, in);
  check_group(in, group_size);
  if (static_cast<std::uint64_t>(w.size()) !=
      static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(in)) {
    invalid("MLX affine quantize: " + std::to_string(w.size()) + " values for shape " +
            shape_to_string(shape));
  }
  const std::int64_t words = packed_row_words(in, bits);
  const std::int64_t groups = in / group_size;

  AffineQuantized q;
  q.packed_shape = shape;
  q.packed_shape.back() = words;
  q.group_shape = shape;
  q.group_shape.back() = groups;
  q.packed.assign(static_cast<std::size_t>(rows * words), 0u);
  q.scales.resize(static_cast<std::size_t>(rows * groups));
  q.biases.resize(static_cast<std::size_t>(rows * groups));

  // Float arithmetic throughout, as MLX's CPU kernel does, so codes match it bit for bit.
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const float eps = 1e-7f;
  for (std::int64_t r = 0; r < rows; ++r) {
    std::uint32_t* dst = q.packed.data() + r * words;
    for (std::int64_t g = 0; g < groups; ++g) {
      const float* x = w.data() + r * in + g * group_size;
      float w_min = std::numeric_limits<float>::infinity();
      float w_max = -w_min;
      for (int j = 0; j < group_size; ++j) {
        w_max = std::max(w_max, x[j]);
        w_min = std::min(w_min, x[j]);
      }
      // Anchor at the edge of larger magnitude and make that edge an exact multiple of the
      // scale: then bias = edge and 0 = bias + scale * (-q0) is exactly representable, which
      // keeps zero weights (pruned, padded) exactly zero after dequantization.
      const bool min_is_edge = std::fabs(w_min) > std::fabs(w_max);
      float scale = std::max((w_max - w_min) / n_bins, eps);
      if (!min_is_edge) scale = -scale;
      const float edge = min_is_edge ? w_min : w_max;
      const float q0 = std::rint(edge / scale);
      float bias = 0.0f;
      if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
      }
      q.scales[r * groups + g] = scale;
      q.biases[r * groups + g] = bias;
      for (int j = 0; j < group_size; ++j) {
        float v = std::rint((x[j] - bias) / scale);
        v = std::min(std::max(v, 0.0f), n_bins);
        if (!(v >= 0.0f)) v = 0.0f;  // NaN input: keep the integer conversion defined
        put_code(dst, (g * group_size + j) * bits, bits, static_cast<std::uint32_t>(v));
      }
    }
  }
  return q;
}

std::vector<float> dequantize_affine(std::span<const std::uint32_t> packed,
                                     std::span<const float> scales, std::span<const float> biases,
                                     const Shape& shape, int bits, int group_size) {
  check_bits(bits);
  std::int64_t rows = 0, in = 0;
  split_rows(shape, rows, in);
  check_group(in, group_size);
  const std::int64_t words = packed_row_words(in, bits);
  const std::int64_t groups = in / group_size;
  if (static_cast<std::uint64_t>(packed.size()) != static_cast<std::uint64_t>(rows * words) ||
      static_cast<std::uint64_t>(scales.size()) != static_cast<std::uint64_t>(rows * groups) ||
      static_cast<std::uint64_t>(biases.size()) != static_cast<std::uint64_t>(rows * groups)) {
    invalid("MLX affine dequantize: packed/scales/biases sizes do not match shape " +
            shape_to_string(shape));
  }
  std::vector<float> out(static_cast<std::size_t>(rows * in));
  QuantizedMatrixView m;
  m.packed = packed.data();
  m.scales = scales.data();
  m.biases = biases.data();
  m.scale_dtype = DType::F32;
  m.rows = rows;
  m.in = in;
  m.bits = bits;
  m.group_size = group_size;
  dequantize_rows(m, 0, rows, out);
  return out;
}

void dequantize_rows(const QuantizedMatrixView& m, std::int64_t row_begin, std::int64_t row_count,
                     std::span<float> out) {
  check_bits(m.bits);
  if (m.rows < 0 || m.in <= 0) invalid("MLX affine dequantize: bad matrix dimensions");
  check_group(m.in, m.group_size);
  const std::int64_t words = packed_row_words(m.in, m.bits);
  const std::int64_t groups = m.in / m.group_size;
  if (row_begin < 0 || row_count < 0 || row_begin > m.rows || row_count > m.rows - row_begin) {
    invalid("MLX affine dequantize: rows [" + std::to_string(row_begin) + ", +" +
            std::to_string(row_count) + ") outside a matrix of " + std::to_string(m.rows) +
            " rows");
  }
  if (static_cast<std::uint64_t>(out.size()) !=
      static_cast<std::uint64_t>(row_count) * static_cast<std::uint64_t>(m.in)) {
    invalid("MLX affine dequantize: output holds " + std::to_string(out.size()) + " values, need " +
            std::to_string(row_count) + " x " + std::to_string(m.in));
  }
  if (row_count == 0) return;
  if (!m.packed || !m.scales || !m.biases) invalid("MLX affine dequantize: null data");
  for (std::int64_t r = 0; r < row_count; ++r) {
    const std::int64_t row = row_begin + r;
    const std::uint32_t* src = m.packed + row * words;
    float* dst = out.data() + r * m.in;
    for (std::int64_t g = 0; g < groups; ++g) {
      const float scale = load_scale(m.scales, m.scale_dtype, row * groups + g);
      const float bias = load_scale(m.biases, m.scale_dtype, row * groups + g);
      for (std::int64_t j = 0; j < m.group_size; ++j) {
        const std::int64_t i = g * m.group_size + j;
        dst[i] = scale * static_cast<float>(get_code(src, i * m.bits, m.bits, words)) + bias;
      }
    }
  }
}

}  // namespace mlxn::io
