// GGML Q4_0 / Q8_0 -> MLX affine repacking (engine/ggml_repack.h) and the GGUF layout the CUDA
// backend loads with it: the repacked weights dequantize (through io's MLX dequantizer and in
// plain float from the f16 scales and biases) to exactly the values io's GGML dequantizer gives,
// over random blocks with negative, zero, subnormal and largest scales and extreme codes; a
// tensor whose bias would overflow f16 is never converted; only CUDA repacks; and a GGUF model
// loaded in the CUDA layout -- built here on the CPU backend, whose kernels are the reference --
// binds MLX-quantized projections (fused q/k/v and gate/up as one weight with row views) whose
// values and products match the GGUF ones. On a GPU, the fixture models loaded on CUDA run MLX
// weights whose products match the CPU's GGML ones.
#include "engine/ggml_repack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/fused_projections.h"
#include "engine/weight_source.h"
#include "engine/weight_upload.h"
#include "engine_test_util.h"
#include "mlxn/core/half.h"
#include "mlxn/engine/model_weights.h"
#include "mlxn/io/ggml_dequant.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/gguf_writer.h"
#include "mlxn/io/mlx_quant.h"
#include "mlxn/io/model_dir.h"
#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine {
namespace {

using detail::ggml_repack_exact;
using detail::ggml_repack_format;
using detail::LinearBinding;
using detail::repack_ggml;
using detail::repacks_ggml;
using io::GgmlType;
using mlxn::test::rel_l2;
using test::Storage;
using test::TinyModel;
using test::WrittenTensor;

constexpr std::int64_t kBlock = 32;

std::size_t block_bytes(GgmlType type) {
  return type == GgmlType::Q4_0 ? 18 : 34;
}

// The largest f16 scale whose bias (-8 d for Q4_0, -128 d for Q8_0) still fits f16 (65504), and
// the next one up, whose bias overflows.
std::uint16_t largest_exact_d(GgmlType type) {
  return type == GgmlType::Q4_0 ? 0x6FFF /* 8188 */ : 0x5FFF /* 511.75 */;
}
std::uint16_t first_overflowing_d(GgmlType type) {
  return type == GgmlType::Q4_0 ? 0x7000 /* 8192 */ : 0x6000 /* 512 */;
}

// An f16 scale of one of the kinds that must convert: ordinary values of either sign, +-0,
// subnormals (the smallest too), and the largest that does not overflow.
std::uint16_t random_d(GgmlType type, std::mt19937& rng, std::size_t block) {
  const std::uint16_t sign = (rng() & 1u) ? 0x8000 : 0;
  switch (block % 6) {
    case 0:
      return sign;  // +0 or -0
    case 1:
      return static_cast<std::uint16_t>(sign | (1 + rng() % 0x3FF));  // subnormal
    case 2:
      return static_cast<std::uint16_t>(sign | 0x0001);  // smallest subnormal
    case 3:
      return static_cast<std::uint16_t>(sign | largest_exact_d(type));
    default: {
      // Normal, exponents up to the largest exact scale's.
      const std::uint16_t max_exp = largest_exact_d(type) >> 10;
      const auto exp = static_cast<std::uint16_t>(1 + rng() % max_exp);
      return static_cast<std::uint16_t>(sign | (exp << 10) | (rng() & 0x3FF));
    }
  }
}

// n_blocks blocks of `type` with scales from random_d; codes random except blocks of all
// smallest and all largest codes.
std::vector<std::byte> random_blocks(GgmlType type, std::size_t n_blocks, std::mt19937& rng) {
  const std::size_t bb = block_bytes(type);
  std::vector<std::byte> data(n_blocks * bb);
  for (std::size_t b = 0; b < n_blocks; ++b) {
    std::byte* p = data.data() + b * bb;
    const std::uint16_t d = random_d(type, rng, b);
    std::memcpy(p, &d, 2);
    for (std::size_t i = 2; i < bb; ++i) {
      std::uint8_t v = static_cast<std::uint8_t>(rng());
      if (b % 5 == 4) v = type == GgmlType::Q4_0 ? 0x00 : 0x80;  // codes 0 / int8 -128
      if (b % 7 == 6) v = type == GgmlType::Q4_0 ? 0xFF : 0x7F;  // codes 15 / int8 127
      p[i] = std::byte(v);
    }
  }
  return data;
}

// The MLX code of element j of block b, from the GGML block format description.
std::uint8_t ggml_code(GgmlType type, const std::vector<std::byte>& data, std::size_t b,
                       std::size_t j) {
  const std::byte* qs = data.data() + b * block_bytes(type) + 2;
  if (type == GgmlType::Q4_0) {
    const auto byte = static_cast<std::uint8_t>(qs[j % 16]);
    return j < 16 ? byte & 0x0F : byte >> 4;
  }
  return static_cast<std::uint8_t>(static_cast<std::int8_t>(qs[j]) + 128);
}

// Equal floats, bit for bit, except that a zero may change sign (GGML's d * (q - 8) keeps the
// sign of the product, MLX's d * q + bias gives +0).
bool same_value(float a, float b) {
  std::uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub || (a == 0.0f && b == 0.0f);
}

// `data` as [rows, in] repacks to codes, scales and biases whose MLX dequantization equals the
// GGML dequantization exactly.
void expect_exact_repack(GgmlType type, const std::vector<std::byte>& data, std::int64_t rows,
                         std::int64_t in) {
  SCOPED_TRACE(io::ggml_type_name(type));
  const auto n = static_cast<std::size_t>(rows * in);
  ASSERT_TRUE(ggml_repack_exact(type, data));
  const std::optional<detail::MlxRepacked> r = repack_ggml(type, data);
  ASSERT_TRUE(r.has_value());
  const int bits = type == GgmlType::Q4_0 ? 4 : 8;
  EXPECT_EQ(r->bits, bits);
  EXPECT_EQ(r->group_size, kBlock);
  ASSERT_EQ(r->packed.size(), n * static_cast<std::size_t>(bits) / 32);
  ASSERT_EQ(r->scales.size(), n / kBlock);
  ASSERT_EQ(r->biases.size(), n / kBlock);

  // Codes, in io's MLX bit-stream convention, are the GGML codes (+ 128 for Q8_0).
  std::vector<std::uint8_t> codes(n);
  io::unpack_codes(r->packed, rows, in, bits, codes);
  std::size_t bad_codes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bad_codes += codes[i] != ggml_code(type, data, i / kBlock, i % kBlock);
  }
  EXPECT_EQ(bad_codes, 0u);

  std::vector<float> gguf(n);
  io::ggml_dequantize(type, data, gguf);
  // io's MLX dequantizer reading the f16 scales and biases as stored...
  io::QuantizedMatrixView m;
  m.packed = r->packed.data();
  m.scales = r->scales.data();
  m.biases = r->biases.data();
  m.scale_dtype = DType::F16;
  m.rows = rows;
  m.in = in;
  m.bits = bits;
  m.group_size = static_cast<int>(kBlock);
  std::vector<float> mlx(n);
  io::dequantize_rows(m, 0, rows, mlx);
  // ...and scale * code + bias in float, written out here.
  std::size_t bad_io = 0, bad_float = 0, nonzero = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float scale = f16_bits_to_f32(r->scales[i / kBlock]);
    const float bias = f16_bits_to_f32(r->biases[i / kBlock]);
    const float v = scale * static_cast<float>(codes[i]) + bias;
    bad_io += !same_value(mlx[i], gguf[i]);
    bad_float += !same_value(v, gguf[i]);
    nonzero += gguf[i] != 0.0f;
  }
  EXPECT_EQ(bad_io, 0u);
  EXPECT_EQ(bad_float, 0u);
  EXPECT_GT(nonzero, n / 2);  // the comparison is not over zeros
}

TEST(GgmlRepack, Q4_0AndQ8_0DequantizeToTheGgufValuesExactly) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    const std::int64_t rows = 37, in = 7 * kBlock;  // rows of odd block counts
    const std::vector<std::byte> data =
        random_blocks(type, static_cast<std::size_t>(rows * in / kBlock), rng);
    expect_exact_repack(type, data, rows, in);
  }
}

TEST(GgmlRepack, SpecialScalesConvertExactly) {
  // One block per special scale, codes 0..31 (Q4_0: low/high nibbles), so every code and sign
  // of (code - offset) meets every scale.
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    const std::vector<std::uint16_t> ds = {
        0x0000,
        0x8000,
        0x0001,
        0x8001,
        0x03FF,
        0x83FF,
        0x0400,
        0x3C00,
        0xBC00,
        largest_exact_d(type),
        static_cast<std::uint16_t>(0x8000 | largest_exact_d(type))};
    std::vector<std::byte> data(ds.size() * block_bytes(type));
    for (std::size_t b = 0; b < ds.size(); ++b) {
      std::byte* p = data.data() + b * block_bytes(type);
      std::memcpy(p, &ds[b], 2);
      for (std::size_t i = 2; i < block_bytes(type); ++i) {
        const std::size_t j = i - 2;
        p[i] = type == GgmlType::Q4_0 ? std::byte((j & 0xF) | ((15 - j) << 4))
                                      : std::byte(static_cast<std::uint8_t>(j * 8 + b));
      }
    }
    expect_exact_repack(type, data, static_cast<std::int64_t>(ds.size()), kBlock);
    const std::optional<detail::MlxRepacked> r = repack_ggml(type, data);
    ASSERT_TRUE(r);
    // The largest exact scale's bias is -+65504, the largest finite f16.
    EXPECT_EQ(r->biases[9], 0xFBFF);
    EXPECT_EQ(r->biases[10], 0x7BFF);
    EXPECT_EQ(r->scales[3], 0x8001);  // scales are the stored d, bit for bit
  }
}

TEST(GgmlRepack, OverflowingOrNonFiniteScalesAreNotConverted) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    SCOPED_TRACE(io::ggml_type_name(type));
    const std::uint16_t over = first_overflowing_d(type);
    for (std::uint16_t d : {over, static_cast<std::uint16_t>(0x8000 | over),
                            std::uint16_t{0x7BFF} /* 65504 */, std::uint16_t{0x7C00} /* inf */,
                            std::uint16_t{0xFC00} /* -inf */, std::uint16_t{0x7E00} /* NaN */}) {
      SCOPED_TRACE(d);
      // One such block among 64 convertible ones is enough to keep the whole tensor as it is.
      std::vector<std::byte> data = random_blocks(type, 64, rng);
      ASSERT_TRUE(ggml_repack_exact(type, data));
      std::memcpy(data.data() + 41 * block_bytes(type), &d, 2);
      EXPECT_FALSE(ggml_repack_exact(type, data));
      EXPECT_FALSE(repack_ggml(type, data).has_value());
    }
  }
}

TEST(GgmlRepack, OnlyCudaRepacksAndOnlyQ4_0AndQ8_0) {
  EXPECT_EQ(ggml_repack_format(GgmlType::Q4_0)->bits, 4);
  EXPECT_EQ(ggml_repack_format(GgmlType::Q4_0)->group_size, 32);
  EXPECT_EQ(ggml_repack_format(GgmlType::Q8_0)->bits, 8);
  EXPECT_EQ(ggml_repack_format(GgmlType::Q8_0)->group_size, 32);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_1, GgmlType::Q5_0,
                     GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL}) {
    EXPECT_FALSE(ggml_repack_format(t).has_value()) << io::ggml_type_name(t);
    EXPECT_FALSE(repacks_ggml(Backend::Cuda, t)) << io::ggml_type_name(t);
    EXPECT_FALSE(ggml_repack_exact(t, {}));
  }
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    EXPECT_TRUE(repacks_ggml(Backend::Cuda, t));
    EXPECT_FALSE(repacks_ggml(Backend::Cpu, t));  // the CPU runs GGUF blocks: the reference
  }
  // 4-bit codes + two f16 per 32 weights; 8-bit likewise.
  EXPECT_EQ(detail::mlx_repacked_bytes({4, 32}, 64 * 256), 64 * 256 / 2 + 2 * 2 * 64 * 256 / 32);
  EXPECT_EQ(detail::mlx_repacked_bytes({8, 32}, 64 * 256), 64 * 256 + 2 * 2 * 64 * 256 / 32);
}

TEST(GgmlRepack, BadSizesAndTypesThrow) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  const std::vector<std::byte> data = random_blocks(GgmlType::Q4_0, 4, rng);
  std::vector<std::uint32_t> packed(16);
  std::vector<std::uint16_t> scales(4), biases(4);
  EXPECT_TRUE(detail::repack_ggml_blocks(GgmlType::Q4_0, data, packed, scales, biases));
  MLXN_EXPECT_ERROR(
      detail::repack_ggml_blocks(GgmlType::Q4_0, data, std::span(packed).first(12), scales, biases),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(
      detail::repack_ggml_blocks(GgmlType::Q4_0, std::span(data).first(17), packed, scales, biases),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(detail::repack_ggml_blocks(GgmlType::Q4_K, data, packed, scales, biases),
                    ErrorKind::InvalidArgument);
  EXPECT_FALSE(repack_ggml(GgmlType::Q4_1, data).has_value());
}

// ---------------------------------------------------------------------------------------------
// The CUDA layout of GGUF weights, built on the CPU backend.

// Loads tensors of one GGUF model through make_gguf_source in a chosen layout.
class GgufRepackLoadTest : public ::testing::Test {
 protected:
  void SetUp() override { rng_ = mlxn::test::seeded_rng(); }

  void open(TinyModel& m) {
    model_.emplace(io::ModelDir::open(m.write(dir_.path() / "m", rng_)));
    check_ = model_->check_weights();
  }

  std::unique_ptr<detail::WeightSource> source(Backend layout) {
    return detail::make_gguf_source(*model_->gguf(), up_, layout);
  }

  const io::TensorBinding& at(const std::string& name) const {
    for (const io::TensorBinding& b : check_.bindings) {
      if (b.expected.name == name) return b;
    }
    throw std::runtime_error("no binding " + name);
  }

  // The f32 values a repacked Linear stands for (ops::dequantize on the CPU).
  std::vector<float> values(const Linear& l) {
    Buffer out = mlxn::test::poisoned(cpu_, DType::F32, {l.out, l.in});
    CommandEncoder enc = cpu_.command_encoder();
    ops::dequantize(enc, l.quant, out);
    enc.commit_and_wait();
    return mlxn::test::download(out);
  }

  // A Linear repacked from `t`: MLX `bits`-bit, group 32, f16
  // scales; values exactly the GGUF ones; products as the float64 reference.
  void expect_repacked(const Linear& l, const WrittenTensor& t, int bits) {
    SCOPED_TRACE(t.stored_name);
    ASSERT_EQ(l.kind, WeightKind::MlxQuant);
    EXPECT_EQ(l.quant.bits, bits);
    EXPECT_EQ(l.quant.group_size, 32);
    EXPECT_EQ(l.quant.packed.dtype(), DType::U32);
    EXPECT_EQ(l.quant.packed.shape(), (Shape{l.out, l.in * bits / 32}));
    EXPECT_EQ(l.quant.scales.dtype(), DType::F16);
    EXPECT_EQ(l.quant.biases.shape(), (Shape{l.out, l.in / 32}));
    const std::vector<double>& w = t.values;
    ASSERT_EQ(w.size(), static_cast<std::size_t>(l.out * l.in));
    const std::vector<float> got = values(l);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) bad += got[i] != static_cast<float>(w[i]);
    EXPECT_EQ(bad, 0u);
    for (std::int64_t m : {1, 3}) {
      const auto x = mlxn::test::random_floats(rng_, static_cast<std::size_t>(m * l.in));
      const auto y = test::run_linear(
          cpu_, DType::F32, x, m, l.in, l.out,
          [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) { l.apply(e, xb, out); });
      EXPECT_LT(rel_l2(y, test::matmul_ref(x, w, m, l.out, l.in)), 1e-5) << "m = " << m;
    }
  }

  test::TempDir dir_;
  std::mt19937 rng_;
  Device cpu_ = Device::open(Backend::Cpu);
  LoadProgress progress_;
  detail::Uploader up_{cpu_, DType::F32, progress_};
  std::optional<io::ModelDir> model_;
  io::WeightCheck check_;
};

TEST_F(GgufRepackLoadTest, CudaLayoutRepacksQ4_0AndQ8_0ProjectionsFusedOrNot) {
  // hidden 256, q 256 rows, k/v 128, ffn 512.
  TinyModel m = TinyModel::gguf(test::gguf_meta("llama", 2, 256, 512, 4, 2, 64), false);
  const std::map<std::string, GgmlType> types = {
      {"token_embd.weight", GgmlType::Q4_0},     {"output.weight", GgmlType::Q8_0},
      {"blk.0.attn_q.weight", GgmlType::Q4_0},   {"blk.0.attn_k.weight", GgmlType::Q4_0},
      {"blk.0.attn_v.weight", GgmlType::Q4_0},   {"blk.0.attn_output.weight", GgmlType::Q8_0},
      {"blk.0.ffn_gate.weight", GgmlType::Q8_0}, {"blk.0.ffn_up.weight", GgmlType::Q8_0},
      {"blk.0.ffn_down.weight", GgmlType::Q4_K}, {"blk.1.attn_q.weight", GgmlType::Q8_0},
      {"blk.1.attn_k.weight", GgmlType::Q4_0},   {"blk.1.attn_v.weight", GgmlType::Q8_0}};
  m.storage = [&](const io::ExpectedTensor& e) {
    auto it = types.find(io::gguf_tensor_name(e.name, io::Architecture::Llama));
    if (it != types.end()) return Storage::gg(it->second);
    return Storage::gg(e.shape.size() == 1 ? GgmlType::F32 : GgmlType::Q4_0);
  };
  open(m);
  auto src = source(Backend::Cuda);
  const std::string p0 = "model.layers.0.", p1 = "model.layers.1.";
  auto bind = [&](const std::string& name) -> LinearBinding { return {&at(name), nullptr}; };

  // Layer 0: q/k/v all Q4_0 -> one 4-bit MLX weight, the parts row views of it.
  const LinearBinding qkv0[] = {bind(p0 + "self_attn.q_proj.weight"),
                                bind(p0 + "self_attn.k_proj.weight"),
                                bind(p0 + "self_attn.v_proj.weight")};
  const detail::LinearFormat f = src->linear_format(qkv0[0]);
  EXPECT_EQ(f.kind, WeightKind::MlxQuant);
  EXPECT_EQ(f.bits, 4);
  EXPECT_EQ(f.group_size, 32);
  EXPECT_EQ(f.dtype, DType::F16);
  std::int64_t before = up_.done();
  detail::FusedProjections a = detail::load_projections(*src, qkv0);
  EXPECT_EQ(up_.done() - before,
            src->device_bytes(*qkv0[0].weight, detail::TensorRole::Linear) +
                src->device_bytes(*qkv0[1].weight, detail::TensorRole::Linear) +
                src->device_bytes(*qkv0[2].weight, detail::TensorRole::Linear));
  ASSERT_TRUE(a.fused.valid());
  EXPECT_EQ(a.fused.kind, WeightKind::MlxQuant);
  EXPECT_EQ(a.fused.out, 256 + 128 + 128);
  for (std::size_t i = 0; i < 3; ++i) {
    const Linear& part = a.parts[i];
    EXPECT_TRUE(part.quant.packed.same_storage(a.fused.quant.packed));
    EXPECT_TRUE(part.quant.scales.same_storage(a.fused.quant.scales));
    EXPECT_TRUE(part.quant.biases.same_storage(a.fused.quant.biases));
    expect_repacked(part, m.at(qkv0[i].weight->expected.name), 4);
  }
  // The fused weight's rows are the parts', in order.
  std::vector<double> all;
  for (const LinearBinding& b : qkv0) {
    const auto& v = m.at(b.weight->expected.name).values;
    all.insert(all.end(), v.begin(), v.end());
  }
  WrittenTensor stacked;
  stacked.stored_name = "q|k|v";
  stacked.values = all;
  expect_repacked(a.fused, stacked, 4);

  // gate/up Q8_0 -> one 8-bit weight.
  const LinearBinding gu0[] = {bind(p0 + "mlp.gate_proj.weight"), bind(p0 + "mlp.up_proj.weight")};
  detail::FusedProjections g = detail::load_projections(*src, gu0);
  ASSERT_TRUE(g.fused.valid());
  expect_repacked(g.parts[0], m.at(p0 + "mlp.gate_proj.weight"), 8);
  expect_repacked(g.parts[1], m.at(p0 + "mlp.up_proj.weight"), 8);

  // o Q8_0 repacked alone; down Q4_K stays in its blocks.
  before = up_.done();
  const Linear o = src->linear(at(p0 + "self_attn.o_proj.weight"), nullptr);
  EXPECT_EQ(up_.done() - before,
            src->device_bytes(at(p0 + "self_attn.o_proj.weight"), detail::TensorRole::Linear));
  expect_repacked(o, m.at(p0 + "self_attn.o_proj.weight"), 8);
  const Linear down = src->linear(at(p0 + "mlp.down_proj.weight"), nullptr);
  EXPECT_EQ(down.kind, WeightKind::Ggml);
  EXPECT_EQ(down.ggml_type, GgmlType::Q4_K);

  // Layer 1: Q8_0 / Q4_0 / Q8_0 do not stack (different bits) and are repacked one by one.
  const LinearBinding qkv1[] = {bind(p1 + "self_attn.q_proj.weight"),
                                bind(p1 + "self_attn.k_proj.weight"),
                                bind(p1 + "self_attn.v_proj.weight")};
  detail::FusedProjections b = detail::load_projections(*src, qkv1);
  EXPECT_FALSE(b.fused.valid());
  expect_repacked(b.parts[0], m.at(p1 + "self_attn.q_proj.weight"), 8);
  expect_repacked(b.parts[1], m.at(p1 + "self_attn.k_proj.weight"), 4);
  expect_repacked(b.parts[2], m.at(p1 + "self_attn.v_proj.weight"), 8);

  // The untied head, and a head tied to a Q4_0 table: repacked; the table stays dequantized.
  expect_repacked(src->linear(at("lm_head.weight"), nullptr), m.at("lm_head.weight"), 8);
  const io::TensorBinding& emb = at("model.embed_tokens.weight");
  const EmbeddingWeights e = src->embedding(emb);
  EXPECT_TRUE(e.dense.valid());
  EXPECT_FALSE(e.quant.has_value());
  before = up_.done();
  const Linear tied = src->tied_head(emb, e);
  EXPECT_EQ(up_.done() - before, src->tied_head_bytes(emb));
  expect_repacked(tied, m.at("model.embed_tokens.weight"), 4);

  // The CPU layout of the same file keeps the GGUF blocks.
  auto cpu_src = source(Backend::Cpu);
  EXPECT_EQ(cpu_src->linear_format(qkv0[0]).kind, WeightKind::Ggml);
  const Linear o_cpu = cpu_src->linear(at(p0 + "self_attn.o_proj.weight"), nullptr);
  EXPECT_EQ(o_cpu.kind, WeightKind::Ggml);
  EXPECT_EQ(o_cpu.ggml_type, GgmlType::Q8_0);
  // And the public loader on the CPU device builds the CPU layout.
  const ModelWeights w = load_model_weights(*model_, cpu_, DType::F32);
  EXPECT_EQ(w.layers[0].attn.qkv.kind, WeightKind::Ggml);
  EXPECT_EQ(w.lm_head.kind, WeightKind::Ggml);
}

TEST_F(GgufRepackLoadTest, TensorWithOverflowingBiasKeepsItsBlocksAndIsNotFused) {
  // gate Q8_0 with one block whose -128 d overflows f16, up Q8_0 convertible: the gate stays
  // GGML (so gate/up stay apart), the up projection is repacked.
  const std::int64_t rows = 64, in = 256;
  std::vector<float> v = mlxn::test::random_floats(rng_, static_cast<std::size_t>(rows * in));
  std::vector<std::byte> gate = io::ggml_quantize(GgmlType::Q8_0, v);
  std::vector<std::byte> up = io::ggml_quantize(GgmlType::Q8_0, v);
  const std::uint16_t big = first_overflowing_d(GgmlType::Q8_0);
  std::memcpy(gate.data() + 5 * 34, &big, 2);
  io::GgufWriter w;
  w.add_tensor("gate", GgmlType::Q8_0, {256, 64}, gate);
  w.add_tensor("up", GgmlType::Q8_0, {256, 64}, up);
  const io::GgufFile file = io::GgufFile::from_bytes("crafted.gguf", w.to_bytes());
  auto binding = [](const std::string& name) {
    io::TensorBinding b;
    b.expected = {name, Shape{64, 256}, true};
    b.stored_name = name;
    b.type_name = "q8_0";
    return b;
  };
  const io::TensorBinding gb = binding("gate"), ub = binding("up");
  auto src = detail::make_gguf_source(file, up_, Backend::Cuda);
  EXPECT_EQ(src->linear_format({&gb, nullptr}).kind, WeightKind::Ggml);
  EXPECT_EQ(src->linear_format({&ub, nullptr}).kind, WeightKind::MlxQuant);
  EXPECT_EQ(src->device_bytes(gb, detail::TensorRole::Linear),
            static_cast<std::int64_t>(gate.size()));
  const LinearBinding parts[] = {{&gb, nullptr}, {&ub, nullptr}};
  detail::FusedProjections p = detail::load_projections(*src, parts);
  EXPECT_FALSE(p.fused.valid());
  ASSERT_EQ(p.parts.size(), 2u);
  EXPECT_EQ(p.parts[0].kind, WeightKind::Ggml);
  EXPECT_EQ(p.parts[0].ggml.to_vector<std::byte>(), gate);  // the blocks, untouched
  EXPECT_EQ(p.parts[1].kind, WeightKind::MlxQuant);
  WrittenTensor t;
  t.stored_name = "up";
  t.values = test::ggml_dequant_ref(GgmlType::Q8_0, up, rows * in);
  expect_repacked(p.parts[1], t, 8);
}

// ---------------------------------------------------------------------------------------------
// On a GPU: the parity fixtures loaded on CUDA run repacked MLX weights that give the CPU's
// GGUF products.

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(MLXN_FIXTURE_DIR) / name;
}

TEST(GgufRepackCuda, FixtureProjectionsAreMlxOnCudaAndMatchCpuGguf) {
  std::string reason;
  std::optional<Device> cuda = mlxn::test::open_cuda_or_reason(reason);
  if (!cuda) GTEST_SKIP() << "no CUDA device: " << reason;
  Device cpu = Device::open(Backend::Cpu);
  std::mt19937 rng = mlxn::test::seeded_rng();
  for (const auto& [file, type] :
       {std::pair{"llama_q4_0.gguf", GgmlType::Q4_0}, std::pair{"llama_q8_0.gguf", GgmlType::Q8_0},
        std::pair{"qwen3_q4_0.gguf", GgmlType::Q4_0},
        std::pair{"qwen3_q8_0.gguf", GgmlType::Q8_0}}) {
    SCOPED_TRACE(file);
    const io::ModelDir model = io::ModelDir::open(fixture(file));
    const int bits = type == GgmlType::Q4_0 ? 4 : 8;
    const ModelWeights ref = load_model_weights(model, cpu, DType::F32);
    for (DType dtype : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(dtype_name(dtype));
      const ModelWeights w = load_model_weights(model, *cuda, dtype);
      auto check = [&](const Linear& c, const Linear& r, const std::string& what) {
        SCOPED_TRACE(what);
        ASSERT_EQ(r.kind, WeightKind::Ggml);  // the CPU keeps the blocks
        EXPECT_EQ(r.ggml_type, type);
        ASSERT_EQ(c.kind, WeightKind::MlxQuant);
        EXPECT_EQ(c.quant.bits, bits);
        EXPECT_EQ(c.quant.group_size, 32);
        EXPECT_EQ(c.quant.scales.dtype(), DType::F16);
        ASSERT_EQ(c.out, r.out);
        ASSERT_EQ(c.in, r.in);
        for (std::int64_t m : {1, 5}) {
          // x in the compute dtype's values; the CPU reference multiplies them in f32.
          const auto x = mlxn::test::round_to(
              dtype, mlxn::test::random_floats(rng, static_cast<std::size_t>(m * c.in)));
          const auto yc = test::run_linear(
              *cuda, dtype, x, m, c.in, c.out,
              [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) { c.apply(e, xb, out); });
          const auto yr = test::run_linear(
              cpu, DType::F32, x, m, r.in, r.out,
              [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) { r.apply(e, xb, out); });
          EXPECT_LT(rel_l2(yc, yr), mlxn::test::dtype_tolerance(dtype, 1e-5)) << "m = " << m;
        }
      };
      for (std::size_t l = 0; l < w.layers.size(); ++l) {
        const LayerWeights& lc = w.layers[l];
        const LayerWeights& lr = ref.layers[l];
        const std::string p = "layer " + std::to_string(l) + " ";
        ASSERT_TRUE(lc.attn.qkv.valid());  // fused on CUDA as on the CPU
        check(lc.attn.qkv, lr.attn.qkv, p + "qkv");
        for (const Linear* part : {&lc.attn.q, &lc.attn.k, &lc.attn.v}) {
          EXPECT_TRUE(part->quant.packed.same_storage(lc.attn.qkv.quant.packed));
          EXPECT_TRUE(part->quant.scales.same_storage(lc.attn.qkv.quant.scales));
        }
        check(lc.attn.q, lr.attn.q, p + "q");
        check(lc.attn.v, lr.attn.v, p + "v");
        check(lc.attn.o, lr.attn.o, p + "o");
        ASSERT_TRUE(lc.mlp && lr.mlp);
        ASSERT_TRUE(lc.mlp->gate_up.valid());
        check(lc.mlp->gate_up, lr.mlp->gate_up, p + "gate_up");
        check(lc.mlp->up, lr.mlp->up, p + "up");
        check(lc.mlp->down, lr.mlp->down, p + "down");
      }
      if (ref.lm_head.kind == WeightKind::Ggml) check(w.lm_head, ref.lm_head, "lm_head");
    }
  }
}

}  // namespace
}  // namespace mlxn::engine
