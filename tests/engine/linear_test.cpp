// Linear / ExpertLinear: each storage kind runs its matmul (with bias), matches a float64
// matmul with the independently dequantized weight, and rows() slices without copying.
#include "mlxn/engine/linear.h"

#include <gtest/gtest.h>

#include "engine_test_util.h"

namespace mlxn::engine {
namespace {

using mlxn::test::rel_l2;
using test::matmul_ref;

// A weight of `kind` with logical shape `lead..., n, k` and the values it stands for.
struct Weight {
  Buffer dense;
  ops::QuantizedWeight quant;
  Buffer ggml;
  std::vector<double> values;
};

Weight dense_weight(Device& d, DType dtype, Shape shape, std::mt19937& rng) {
  const auto v = mlxn::test::round_to(
      dtype, mlxn::test::random_floats(rng, static_cast<std::size_t>(shape_numel(shape))));
  Weight w;
  w.dense = mlxn::test::upload(d, v, dtype, shape);
  w.values.assign(v.begin(), v.end());
  return w;
}

Weight mlx_weight(Device& d, Shape shape, int bits, int group, std::mt19937& rng) {
  const auto v = mlxn::test::random_floats(rng, static_cast<std::size_t>(shape_numel(shape)));
  const io::AffineQuantized q = io::quantize_affine(v, shape, bits, group);
  const auto scales = mlxn::test::round_to(DType::BF16, q.scales);
  const auto biases = mlxn::test::round_to(DType::BF16, q.biases);
  Weight w;
  w.quant.bits = bits;
  w.quant.group_size = group;
  w.quant.packed = d.alloc(DType::U32, q.packed_shape);
  w.quant.packed.write(q.packed);
  w.quant.scales = mlxn::test::upload(d, scales, DType::BF16, q.group_shape);
  w.quant.biases = mlxn::test::upload(d, biases, DType::BF16, q.group_shape);
  const std::int64_t in = shape.back();
  w.values =
      test::mlx_dequant_ref(q.packed, scales, biases, shape_numel(shape) / in, in, bits, group);
  return w;
}

Weight ggml_weight(Device& d, io::GgmlType type, Shape shape, std::mt19937& rng) {
  const auto v = mlxn::test::random_floats(rng, static_cast<std::size_t>(shape_numel(shape)));
  const std::vector<std::byte> blocks = io::ggml_quantize(type, v);
  Shape bshape = shape;
  bshape.back() = static_cast<std::int64_t>(io::ggml_row_size(type, shape.back()));
  Weight w;
  w.ggml = d.alloc(DType::U8, bshape);
  w.ggml.write(blocks);
  w.values = test::ggml_dequant_ref(type, blocks, shape_numel(shape));
  return w;
}

class LinearTest : public mlxn::test::BackendTest {
 protected:
  // Checks l.apply on fresh inputs against x . values^T (+ bias).
  void expect_matches(const Linear& l, const std::vector<double>& values, DType dtype,
                      const std::vector<double>* bias = nullptr, std::int64_t m = 3) {
    std::mt19937 rng = mlxn::test::seeded_rng();
    const auto x = mlxn::test::round_to(
        dtype, mlxn::test::random_floats(rng, static_cast<std::size_t>(m * l.in)));
    const auto y = test::run_linear(
        device(), dtype, x, m, l.in, l.out,
        [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) { l.apply(e, xb, out); });
    EXPECT_LT(rel_l2(y, matmul_ref(x, values, m, l.out, l.in, bias)),
              mlxn::test::dtype_tolerance(dtype, 1e-5));
  }

  // A bias [n] in `dtype` and its values.
  std::pair<Buffer, std::vector<double>> bias(std::int64_t n, DType dtype, std::mt19937& rng) {
    const auto v = mlxn::test::round_to(
        dtype, mlxn::test::random_floats(rng, static_cast<std::size_t>(n), 0.5f, 1.5f));
    return {mlxn::test::upload(device(), v, dtype, {n}), {v.begin(), v.end()}};
  }
};

TEST_P(LinearTest, DenseWithAndWithoutBias) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  for (DType dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    Weight w = dense_weight(device(), dtype, {24, 40}, rng);
    Linear l{WeightKind::Dense, 40, 24, w.dense};
    expect_matches(l, w.values, dtype);
    auto [b, bv] = bias(24, dtype, rng);
    l.bias = b;
    expect_matches(l, w.values, dtype, &bv);
  }
}

TEST_P(LinearTest, MlxQuantizedWithAndWithoutBias) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  for (auto [bits, group] : {std::pair{4, 32}, std::pair{3, 64}, std::pair{8, 128}}) {
    SCOPED_TRACE(std::to_string(bits) + "-bit group " + std::to_string(group));
    Weight w = mlx_weight(device(), {20, 256}, bits, group, rng);
    Linear l;
    l.kind = WeightKind::MlxQuant;
    l.in = 256;
    l.out = 20;
    l.quant = w.quant;
    expect_matches(l, w.values, DType::F32);
    auto [b, bv] = bias(20, DType::F32, rng);
    l.bias = b;
    expect_matches(l, w.values, DType::F32, &bv);
  }
}

TEST_P(LinearTest, GgmlBlocksWithAndWithoutBias) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  for (io::GgmlType type :
       {io::GgmlType::Q4_0, io::GgmlType::Q8_0, io::GgmlType::Q4_K, io::GgmlType::Q6_K}) {
    SCOPED_TRACE(io::ggml_type_name(type));
    Weight w = ggml_weight(device(), type, {12, 512}, rng);
    Linear l;
    l.kind = WeightKind::Ggml;
    l.in = 512;
    l.out = 12;
    l.ggml = w.ggml;
    l.ggml_type = type;
    expect_matches(l, w.values, DType::F32);
    auto [b, bv] = bias(12, DType::F32, rng);
    l.bias = b;
    expect_matches(l, w.values, DType::F32, &bv);
  }
}

// With a workspace, a quantized Linear on CUDA applied to kDequantGemmMinRows rows or more
// decodes its weight there and runs the dense matmul (dequantize + matmul dispatches); fewer
// rows, or the CPU, keep the quantized kernel. Either way: the same product.
TEST_P(LinearTest, QuantizedWithWorkspaceMatchesReference) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  const bool cuda = device().backend() == Backend::Cuda;
  Weight mlx = mlx_weight(device(), {40, 256}, 4, 64, rng);
  Weight q4 = ggml_weight(device(), io::GgmlType::Q4_0, {40, 256}, rng);
  Weight q6 = ggml_weight(device(), io::GgmlType::Q6_K, {40, 256}, rng);
  std::vector<std::pair<Linear, const Weight*>> cases;
  Linear l;
  l.kind = WeightKind::MlxQuant;
  l.in = 256;
  l.out = 40;
  l.quant = mlx.quant;
  cases.emplace_back(l, &mlx);
  for (auto [type, w] : {std::pair{io::GgmlType::Q4_0, &q4}, std::pair{io::GgmlType::Q6_K, &q6}}) {
    Linear g;
    g.kind = WeightKind::Ggml;
    g.in = 256;
    g.out = 40;
    g.ggml = w->ggml;
    g.ggml_type = type;
    cases.emplace_back(g, w);
  }
  for (DType dtype : {DType::F32, DType::BF16}) {
    Buffer workspace = device().alloc(dtype, {40 * 256});
    for (auto& [lin, w] : cases) {
      for (bool with_bias : {false, true}) {
        Linear lb = lin;
        std::vector<double> bv;
        if (with_bias) std::tie(lb.bias, bv) = bias(40, dtype, rng);
        for (std::int64_t m : {kDequantGemmMinRows - 1, kDequantGemmMinRows, std::int64_t{48}}) {
          SCOPED_TRACE(
              std::string(dtype_name(dtype)) +
              (lb.kind == WeightKind::MlxQuant ? " mlx4" : " " + io::ggml_type_name(lb.ggml_type)) +
              (with_bias ? " bias" : "") + " m=" + std::to_string(m));
          const auto x = mlxn::test::round_to(
              dtype, mlxn::test::random_floats(rng, static_cast<std::size_t>(m * 256)));
          std::size_t dispatches = 0;
          const auto y =
              test::run_linear(device(), dtype, x, m, 256, 40,
                               [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) {
                                 lb.apply(e, xb, out, workspace);
                                 dispatches = e.pending_dispatches();
                               });
          EXPECT_LT(rel_l2(y, matmul_ref(x, w->values, m, 40, 256, with_bias ? &bv : nullptr)),
                    mlxn::test::dtype_tolerance(dtype, 1e-5));
          const bool decoded = cuda && m >= kDequantGemmMinRows;
          // Quantized kernel: 1 dispatch, +1 for the bias add. Decoded: dequantize + matmul
          // (+1 where the GEMM's epilogue cannot take the bias).
          if (decoded) {
            EXPECT_GE(dispatches, 2u);
            EXPECT_LE(dispatches, with_bias ? 3u : 2u);
          } else {
            EXPECT_EQ(dispatches, with_bias ? 2u : 1u);
          }
        }
      }
    }
  }
}

TEST_P(LinearTest, RowsAreZeroCopyPartsOfEveryKind) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  const std::int64_t n = 16, k = 256, row0 = 6, rows = 7;
  Weight dw = dense_weight(device(), DType::F32, {n, k}, rng);
  Weight mw = mlx_weight(device(), {n, k}, 4, 64, rng);
  Weight gw = ggml_weight(device(), io::GgmlType::Q8_0, {n, k}, rng);
  auto [b, bv] = bias(n, DType::F32, rng);
  std::vector<Linear> all(3);
  all[0] = Linear{WeightKind::Dense, k, n, dw.dense};
  all[1].kind = WeightKind::MlxQuant;
  all[1].quant = mw.quant;
  all[2].kind = WeightKind::Ggml;
  all[2].ggml = gw.ggml;
  all[2].ggml_type = io::GgmlType::Q8_0;
  const std::vector<double>* values[] = {&dw.values, &mw.values, &gw.values};
  for (std::size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(i);
    Linear& full = all[i];
    full.in = k;
    full.out = n;
    full.bias = b;
    const Linear part = full.rows(row0, rows);
    EXPECT_EQ(part.kind, full.kind);
    EXPECT_EQ(part.in, k);
    EXPECT_EQ(part.out, rows);
    EXPECT_TRUE(part.bias.same_storage(b));
    EXPECT_EQ(part.bias.shape(), (Shape{rows}));
    if (full.kind == WeightKind::Dense) {
      EXPECT_TRUE(part.dense.same_storage(full.dense));
      EXPECT_EQ(part.dense.shape(), (Shape{rows, k}));
    } else if (full.kind == WeightKind::MlxQuant) {
      EXPECT_TRUE(part.quant.packed.same_storage(full.quant.packed));
      EXPECT_TRUE(part.quant.scales.same_storage(full.quant.scales));
      EXPECT_EQ(part.quant.packed.shape(), (Shape{rows, k * 4 / 32}));
      EXPECT_EQ(part.quant.biases.shape(), (Shape{rows, k / 64}));
      EXPECT_EQ(part.quant.bits, 4);
      EXPECT_EQ(part.quant.group_size, 64);
    } else {
      EXPECT_TRUE(part.ggml.same_storage(full.ggml));
      EXPECT_EQ(part.ggml.shape(), (Shape{rows, 272}));
      EXPECT_EQ(part.ggml_type, io::GgmlType::Q8_0);
    }
    const auto part_bias = test::rows_of(bv, 1, row0, rows);
    expect_matches(part, test::rows_of(*values[i], k, row0, rows), DType::F32, &part_bias);
  }
}

TEST_P(LinearTest, RowsOutsideTheWeightAreRejected) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  Weight w = dense_weight(device(), DType::F32, {8, 32}, rng);
  const Linear l{WeightKind::Dense, 32, 8, w.dense};
  MLXN_EXPECT_ERROR((void)l.rows(4, 5), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR((void)l.rows(-1, 2), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR((void)l.rows(2, 0), ErrorKind::InvalidArgument);
  EXPECT_EQ(l.rows(4, 4).out, 4);
}

TEST_P(LinearTest, ExpertsOfEveryKindMatchPerExpertReference) {
  std::mt19937 rng = mlxn::test::seeded_rng();
  const std::int64_t experts = 4, n = 12, k = 256, m = 3, top_k = 2;
  const std::vector<std::int32_t> ids = {2, 0, 3, 3, 1, 2};
  for (WeightKind kind : {WeightKind::Dense, WeightKind::MlxQuant, WeightKind::Ggml}) {
    SCOPED_TRACE(static_cast<int>(kind));
    ExpertLinear el;
    el.kind = kind;
    el.n_experts = experts;
    el.in = k;
    el.out = n;
    Weight w;
    if (kind == WeightKind::Dense) {
      w = dense_weight(device(), DType::F32, {experts, n, k}, rng);
      el.dense = w.dense;
    } else if (kind == WeightKind::MlxQuant) {
      w = mlx_weight(device(), {experts, n, k}, 4, 32, rng);
      el.quant = w.quant;
    } else {
      w = ggml_weight(device(), io::GgmlType::Q4_K, {experts, n, k}, rng);
      el.ggml = w.ggml;
      el.ggml_type = io::GgmlType::Q4_K;
    }
    const auto x = mlxn::test::random_floats(rng, static_cast<std::size_t>(m * k));
    Buffer xb = mlxn::test::upload(device(), x, DType::F32, {m, k});
    Buffer idb = device().alloc(DType::I32, {m, top_k});
    idb.write(ids);
    Buffer out = mlxn::test::poisoned(device(), DType::F32, {m, top_k, n});
    CommandEncoder enc = device().command_encoder();
    el.apply(enc, xb, idb, out);
    enc.commit_and_wait();
    std::vector<double> ref;
    for (std::int64_t t = 0; t < m; ++t) {
      const std::vector<float> xt(x.begin() + t * k, x.begin() + (t + 1) * k);
      for (std::int64_t s = 0; s < top_k; ++s) {
        const std::int64_t e = ids[static_cast<std::size_t>(t * top_k + s)];
        const auto y = matmul_ref(xt, test::rows_of(w.values, k, e * n, n), 1, n, k);
        ref.insert(ref.end(), y.begin(), y.end());
      }
    }
    EXPECT_LT(rel_l2(mlxn::test::download(out), ref), 1e-5);
  }
}

MLXN_INSTANTIATE_BACKENDS(LinearTest);

}  // namespace
}  // namespace mlxn::engine
