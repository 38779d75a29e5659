// Engine test helpers: tiny model files (config.json + safetensors, or GGUF) with every tensor a
// family expects, stored as float, MLX-quantized or GGML blocks, together with the values each
// stored tensor stands for -- dequantized here, independently of the library's dequantizers --
// and a float64 matmul to check projections against.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "engine/ggml_repack.h"
#include "io/io_test_util.h"
#include "mlxn/core/half.h"
#include "mlxn/engine/linear.h"
#include "mlxn/io/ggml_dequant.h"
#include "mlxn/io/ggml_quant.h"
#include "mlxn/io/gguf_writer.h"
#include "mlxn/io/mlx_quant.h"
#include "mlxn/io/model_config.h"
#include "mlxn/io/model_config_gguf.h"
#include "mlxn/io/model_dir_gguf.h"
#include "mlxn/io/model_dir_tensors.h"
#include "mlxn/io/safetensors_writer.h"
#include "test_backends.h"

namespace mlxn::engine::test {

using io::test::TempDir;

// ---------------------------------------------------------------------------------------------
// Reference dequantization (the oracles: written from the format descriptions, not shared with
// the library).

/// MLX affine: codes are one LSB-first bit stream per row of little-endian u32 words;
/// w = scale * q + bias per group of `group` inputs.
inline std::vector<double> mlx_dequant_ref(const std::vector<std::uint32_t>& packed,
                                           const std::vector<float>& scales,
                                           const std::vector<float>& biases, std::int64_t rows,
                                           std::int64_t in, int bits, int group) {
  const std::int64_t words = in * bits / 32, groups = in / group;
  std::vector<double> out(static_cast<std::size_t>(rows * in));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < in; ++i) {
      const std::int64_t bit = i * bits, w = r * words + bit / 32, shift = bit % 32;
      std::uint64_t v = packed[static_cast<std::size_t>(w)];
      if (shift + bits > 32) v |= std::uint64_t{packed[static_cast<std::size_t>(w + 1)]} << 32;
      const auto q = static_cast<double>((v >> shift) & ((1u << bits) - 1u));
      const std::size_t g = static_cast<std::size_t>(r * groups + i / group);
      out[static_cast<std::size_t>(r * in + i)] =
          static_cast<double>(scales[g]) * q + static_cast<double>(biases[g]);
    }
  }
  return out;
}

inline float half_at(std::span<const std::byte> p, std::size_t at) {
  std::uint16_t h;
  std::memcpy(&h, p.data() + at, 2);
  return f16_bits_to_f32(h);
}

/// GGML blocks -> values. F32, F16, BF16, Q4_0, Q4_1 and Q8_0 are decoded here; the K-quants
/// (whose layouts are long) through io::ggml_dequantize, which tests/io checks against ggml.
inline std::vector<double> ggml_dequant_ref(io::GgmlType type, std::span<const std::byte> data,
                                            std::int64_t n) {
  std::vector<double> out(static_cast<std::size_t>(n));
  const auto count = static_cast<std::size_t>(n);
  switch (type) {
    case io::GgmlType::F32:
      for (std::size_t i = 0; i < count; ++i) {
        float f;
        std::memcpy(&f, data.data() + 4 * i, 4);
        out[i] = f;
      }
      return out;
    case io::GgmlType::F16:
      for (std::size_t i = 0; i < count; ++i) out[i] = half_at(data, 2 * i);
      return out;
    case io::GgmlType::BF16:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, data.data() + 2 * i, 2);
        out[i] = bf16_bits_to_f32(h);
      }
      return out;
    case io::GgmlType::Q8_0:  // f16 d, 32 x i8
      for (std::size_t b = 0; b < count / 32; ++b) {
        const std::size_t at = b * 34;
        const double d = half_at(data, at);
        for (std::size_t j = 0; j < 32; ++j) {
          out[b * 32 + j] = d * static_cast<std::int8_t>(data[at + 2 + j]);
        }
      }
      return out;
    case io::GgmlType::Q4_0:    // f16 d, 16 bytes: low nibbles are elements 0-15, high 16-31
    case io::GgmlType::Q4_1: {  // f16 d, f16 m, the same nibbles; x = d * q + m
      const bool q41 = type == io::GgmlType::Q4_1;
      const std::size_t block = q41 ? 20 : 18, qs = q41 ? 4 : 2;
      for (std::size_t b = 0; b < count / 32; ++b) {
        const std::size_t at = b * block;
        const double d = half_at(data, at), m = q41 ? half_at(data, at + 2) : 0.0;
        for (std::size_t j = 0; j < 16; ++j) {
          const auto byte = static_cast<unsigned>(data[at + qs + j]);
          const double lo = byte & 0xF, hi = byte >> 4;
          out[b * 32 + j] = q41 ? d * lo + m : d * (lo - 8);
          out[b * 32 + j + 16] = q41 ? d * hi + m : d * (hi - 8);
        }
      }
      return out;
    }
    default: {
      std::vector<float> f(count);
      io::ggml_dequantize(type, data, f);
      return {f.begin(), f.end()};
    }
  }
}

/// Q4_1 blocks (ggml has it; io's quantizer does not): min/max per block of 32.
inline std::vector<std::byte> quantize_q4_1(const std::vector<float>& x) {
  std::vector<std::byte> out(x.size() / 32 * 20);
  for (std::size_t b = 0; b < x.size() / 32; ++b) {
    float lo = x[b * 32], hi = x[b * 32];
    for (std::size_t j = 0; j < 32; ++j) {
      lo = std::min(lo, x[b * 32 + j]);
      hi = std::max(hi, x[b * 32 + j]);
    }
    const std::uint16_t d = f32_to_f16_bits((hi - lo) / 15.0f), m = f32_to_f16_bits(lo);
    const float df = f16_bits_to_f32(d), mf = f16_bits_to_f32(m);
    std::byte* p = out.data() + b * 20;
    std::memcpy(p, &d, 2);
    std::memcpy(p + 2, &m, 2);
    auto code = [&](std::size_t j) {
      const float q = df > 0 ? std::round((x[b * 32 + j] - mf) / df) : 0.0f;
      return static_cast<unsigned>(std::clamp(q, 0.0f, 15.0f));
    };
    for (std::size_t j = 0; j < 16; ++j) p[4 + j] = std::byte(code(j) | (code(j + 16) << 4));
  }
  return out;
}

/// y[m, n] = x[m, k] . w[n, k]^T (+ bias[n]) in float64.
inline std::vector<double> matmul_ref(const std::vector<float>& x, const std::vector<double>& w,
                                      std::int64_t m, std::int64_t n, std::int64_t k,
                                      const std::vector<double>* bias = nullptr) {
  std::vector<double> y(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = bias ? (*bias)[static_cast<std::size_t>(j)] : 0.0;
      for (std::int64_t t = 0; t < k; ++t) {
        acc += static_cast<double>(x[static_cast<std::size_t>(i * k + t)]) *
               w[static_cast<std::size_t>(j * k + t)];
      }
      y[static_cast<std::size_t>(i * n + j)] = acc;
    }
  }
  return y;
}

/// Rows [row0, row0 + rows) of a row-major [*, cols] matrix.
inline std::vector<double> rows_of(const std::vector<double>& m, std::int64_t cols,
                                   std::int64_t row0, std::int64_t rows) {
  return {m.begin() + row0 * cols, m.begin() + (row0 + rows) * cols};
}

// ---------------------------------------------------------------------------------------------
// Tiny model files.

/// How one expected tensor is written.
struct Storage {
  enum class Kind { Float, Mlx, Ggml };
  Kind kind = Kind::Float;
  io::TensorDType float_dtype = io::TensorDType::BF16;  // safetensors floats
  int bits = 4;                                         // Mlx
  int group_size = 32;                                  // Mlx
  io::TensorDType scale_dtype = io::TensorDType::BF16;  // Mlx scales and biases
  io::GgmlType ggml = io::GgmlType::F32;                // GGUF tensors

  static Storage f(io::TensorDType dtype) { return {Kind::Float, dtype}; }
  static Storage mlx(int bits, int group, io::TensorDType scales = io::TensorDType::BF16) {
    Storage s;
    s.kind = Kind::Mlx;
    s.bits = bits;
    s.group_size = group;
    s.scale_dtype = scales;
    return s;
  }
  static Storage gg(io::GgmlType type) {
    Storage s;
    s.kind = Kind::Ggml;
    s.ggml = type;
    return s;
  }
};

/// A tensor as written: its logical shape and the values the stored data stands for.
struct WrittenTensor {
  std::string stored_name;  // the name in the file
  Shape shape;              // logical [out, in], [experts, out, in] or [n]
  Storage storage;
  std::vector<double> values;  // dequantized, row-major over `shape`
  std::vector<std::byte> raw;  // GGUF: the tensor's bytes as written
};

/// Writes a tiny model with every tensor its config's family expects. Values are random (fresh
/// seed per test); 1-D tensors (norms, biases) are kept near 1 so they are plainly non-zero.
class TinyModel {
 public:
  /// A safetensors model directory from config.json text.
  static TinyModel safetensors(std::string config_json, io::TensorNaming naming = {}) {
    TinyModel m;
    m.config_json_ = std::move(config_json);
    m.config_ = io::ModelConfig::from_json_string(m.config_json_, "config.json");
    m.naming_ = std::move(naming);
    return m;
  }

  /// A GGUF file whose metadata `meta` already holds; `tied` leaves output.weight out.
  static TinyModel gguf(io::GgufWriter meta, bool tied) {
    TinyModel m;
    m.gguf_ = true;
    const io::GgufFile parsed = io::GgufFile::from_bytes("meta", meta.to_bytes());
    m.config_ = io::model_config_from_gguf(parsed);
    m.config_.tie_word_embeddings = tied;
    m.naming_.stacked_experts = true;
    m.meta_ = std::move(meta);
    return m;
  }

  /// Storage of each expected tensor (by Hugging Face name); default: BF16 / F32 floats.
  std::function<Storage(const io::ExpectedTensor&)> storage;
  /// Tensors (stored names) to leave out, or to write with another shape.
  std::set<std::string> drop;
  std::map<std::string, Shape> reshape;

  const io::ModelConfig& config() const { return config_; }

  /// Writes the model into `dir` and returns the path to open (the directory).
  std::filesystem::path write(const std::filesystem::path& dir, std::mt19937& rng) {
    std::filesystem::create_directories(dir);
    written_.clear();
    io::SafetensorsWriter st;
    io::GgufWriter gg = meta_;
    for (const io::ExpectedTensor& e : io::expected_tensors(config_, naming_)) {
      Storage s = storage ? storage(e) : Storage{};
      if (!e.quantizable && s.kind == Storage::Kind::Mlx) s = Storage{};
      if (gguf_ && s.kind != Storage::Kind::Ggml) s = Storage::gg(io::GgmlType::F32);
      WrittenTensor t;
      t.stored_name = gguf_ ? io::gguf_tensor_name(e.name, config_.arch) : e.name;
      t.shape = e.shape;
      t.storage = s;
      const bool vec = e.shape.size() == 1;
      std::vector<float> v =
          mlxn::test::random_floats(rng, static_cast<std::size_t>(shape_numel(e.shape)),
                                    vec ? 0.5f : -1.0f, vec ? 1.5f : 1.0f);
      if (gguf_) {
        put_gguf(gg, t, v);
      } else {
        put_safetensors(st, e.name, t, v);
      }
      written_.emplace(e.name, std::move(t));
    }
    if (gguf_) {
      const std::filesystem::path file = dir / "model.gguf";
      gg.write(file);
      return dir;
    }
    io::test::write_file(dir / "config.json", config_json_);
    st.write(dir / "model.safetensors");
    return dir;
  }

  /// The tensor written for a Hugging Face name (e.g. "model.layers.0.self_attn.q_proj.weight").
  const WrittenTensor& at(const std::string& name) const {
    auto it = written_.find(name);
    if (it == written_.end()) throw std::runtime_error("test model has no tensor " + name);
    return it->second;
  }

 private:
  // Safetensors: floats in s.float_dtype, or MLX-quantized weight/scales/biases.
  void put_safetensors(io::SafetensorsWriter& w, const std::string& name, WrittenTensor& t,
                       const std::vector<float>& v) {
    if (drop.count(name)) return;
    Shape file_shape = t.shape;
    if (auto it = reshape.find(name); it != reshape.end()) file_shape = it->second;
    if (t.storage.kind != Storage::Kind::Mlx) {
      const DType dt = *io::to_dtype(t.storage.float_dtype);
      const auto bytes = mlxn::test::encode(dt, v);
      std::vector<float> stored = mlxn::test::decode(dt, bytes);
      t.values.assign(stored.begin(), stored.end());
      // A reshaped tensor keeps the leading values, padded or cut to its new element count.
      std::vector<unsigned char> data = bytes;
      data.resize(static_cast<std::size_t>(shape_numel(file_shape)) * dtype_size(dt));
      w.add(name, t.storage.float_dtype, file_shape, std::as_bytes(std::span(data)));
      return;
    }
    const int bits = t.storage.bits, group = t.storage.group_size;
    const io::AffineQuantized q = io::quantize_affine(v, t.shape, bits, group);
    const DType sdt = *io::to_dtype(t.storage.scale_dtype);
    const auto sb = mlxn::test::encode(sdt, q.scales), bb = mlxn::test::encode(sdt, q.biases);
    const auto scales = mlxn::test::decode(sdt, sb), biases = mlxn::test::decode(sdt, bb);
    const std::int64_t in = t.shape.back(), rows = shape_numel(t.shape) / in;
    t.values = mlx_dequant_ref(q.packed, scales, biases, rows, in, bits, group);
    const std::string module = name.substr(0, name.size() - 7);
    w.add(name, io::TensorDType::U32, q.packed_shape, q.packed);
    w.add(module + ".scales", t.storage.scale_dtype, q.group_shape, std::as_bytes(std::span(sb)));
    w.add(module + ".biases", t.storage.scale_dtype, q.group_shape, std::as_bytes(std::span(bb)));
  }

  // GGUF: quantized with io's quantizers (Q4_1 here), or raw bytes for types without one.
  void put_gguf(io::GgufWriter& w, WrittenTensor& t, const std::vector<float>& v) {
    if (drop.count(t.stored_name)) return;
    const io::GgmlType type = t.storage.ggml;
    const auto n = static_cast<std::uint64_t>(v.size());
    if (type == io::GgmlType::Q4_1) {
      t.raw = quantize_q4_1(v);
    } else if (io::ggml_can_quantize(type)) {
      t.raw = io::ggml_quantize(type, v);
    } else {
      t.raw.resize(io::ggml_row_size(type, n));
      for (std::size_t i = 0; i < t.raw.size(); ++i) t.raw[i] = std::byte((i * 37u) & 0xFFu);
    }
    if (io::ggml_can_dequantize(type)) t.values = ggml_dequant_ref(type, t.raw, v.size());
    Shape shape = t.shape;
    if (auto it = reshape.find(t.stored_name); it != reshape.end()) shape = it->second;
    std::vector<std::uint64_t> dims(shape.rbegin(), shape.rend());
    std::vector<std::byte> bytes = t.raw;
    bytes.resize(io::ggml_row_size(type, static_cast<std::uint64_t>(shape_numel(shape))));
    w.add_tensor(t.stored_name, type, dims, bytes);
  }

  bool gguf_ = false;
  std::string config_json_;
  io::ModelConfig config_;
  io::TensorNaming naming_;
  io::GgufWriter meta_;
  std::map<std::string, WrittenTensor> written_;
};

/// GGUF metadata of a small model of `arch` (llama.cpp key names).
inline io::GgufWriter gguf_meta(const std::string& arch, std::uint32_t layers, std::uint32_t hidden,
                                std::uint32_t ffn, std::uint32_t heads, std::uint32_t kv_heads,
                                std::uint32_t vocab) {
  io::GgufWriter w;
  w.add("general.architecture", arch);
  w.add(arch + ".block_count", layers);
  w.add(arch + ".embedding_length", hidden);
  w.add(arch + ".feed_forward_length", ffn);
  w.add(arch + ".attention.head_count", heads);
  w.add(arch + ".attention.head_count_kv", kv_heads);
  w.add(arch + ".vocab_size", vocab);
  w.add(arch + ".context_length", std::uint32_t{256});
  return w;
}

// ---------------------------------------------------------------------------------------------
// Device helpers.

/// f32 values of a float buffer (f32, f16 or bf16).
inline std::vector<float> read_floats(const Buffer& b) {
  return mlxn::test::download(b);
}

/// out = x [m, in] through `apply` into a poisoned [m, n] buffer of `dtype`, read back as f32.
template <class Apply>
std::vector<float> run_linear(Device& device, DType dtype, const std::vector<float>& x,
                              std::int64_t m, std::int64_t in, std::int64_t n, Apply&& apply) {
  Buffer xb = mlxn::test::upload(device, x, dtype, {m, in});
  Buffer out = mlxn::test::poisoned(device, dtype, {m, n});
  CommandEncoder enc = device.command_encoder();
  apply(enc, xb, out);
  enc.commit_and_wait();
  return read_floats(out);
}

// Storage that follows the config's quantization (as mlx-lm writes it), `floats` otherwise.
inline std::function<Storage(const io::ExpectedTensor&)> as_config_says(const io::ModelConfig& c,
                                                                        io::TensorDType floats) {
  return [c, floats](const io::ExpectedTensor& e) {
    if (e.quantizable && c.quantization) {
      if (auto p = c.quantization->for_module(e.name.substr(0, e.name.size() - 7))) {
        return Storage::mlx(p->bits, p->group_size);
      }
    }
    return Storage::f(floats);
  };
}

// The storage of a GGUF projection of `type` (one ops::ggml_matmul runs natively), whole, fused
// or a row view, as `backend` loads it: where it repacks the type (CUDA: Q4_0, Q8_0), MLX affine
// codes of the type's bits in groups of 32 with f16 scales and biases; elsewhere u8 rows of its
// blocks. Returns whether it is repacked.
inline bool expect_gguf_storage(Backend backend, const Linear& l, io::GgmlType type) {
  if (!detail::repacks_ggml(backend, type)) {
    EXPECT_EQ(l.kind, WeightKind::Ggml);
    EXPECT_EQ(l.ggml_type, type);
    EXPECT_EQ(l.ggml.dtype(), DType::U8);
    EXPECT_EQ(l.ggml.shape(),
              (Shape{l.out, static_cast<std::int64_t>(io::ggml_row_size(type, l.in))}));
    return false;
  }
  const detail::MlxRepackFormat f = detail::ggml_repack_format(type).value();
  EXPECT_EQ(l.kind, WeightKind::MlxQuant);
  EXPECT_EQ(l.quant.bits, f.bits);
  EXPECT_EQ(l.quant.group_size, 32);
  EXPECT_EQ(f.group_size, 32);
  EXPECT_EQ(l.quant.packed.dtype(), DType::U32);
  EXPECT_EQ(l.quant.packed.shape(), (Shape{l.out, l.in * f.bits / 32}));
  for (const Buffer* b : {&l.quant.scales, &l.quant.biases}) {
    EXPECT_EQ(b->dtype(), DType::F16);
    EXPECT_EQ(b->shape(), (Shape{l.out, l.in / 32}));
  }
  return true;
}

}  // namespace mlxn::engine::test
