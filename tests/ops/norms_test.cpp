// Norm ops of norms.h (Gemma RMSNorm, LayerNorm with/without bias, L2 norm, add + RMSNorm, qk-norm)
// for f32/f16/bf16: each backend vs a float64 reference, CUDA vs CPU, odd shapes, aliasing,
// outputs poisoned before every run.
#include "mlxn/ops/norms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
struct RowsCols {
  std::int64_t rows, cols;
};
// Single row, tiny rows (warp-per-row layout), odd and long rows (block layout and striding).
constexpr RowsCols kShapes[] = {{1, 1}, {1, 4096}, {7, 33}, {9, 128}, {5, 5120}, {2, 100003}};
constexpr float kEps = 1e-5f;

enum class Variant { RmsGemma, LayerNorm, LayerNormBias, L2, AddRms, AddRmsGemma, Qk, QkGemma };
constexpr Variant kVariants[] = {Variant::RmsGemma, Variant::LayerNorm, Variant::LayerNormBias,
                                 Variant::L2,       Variant::AddRms,    Variant::AddRmsGemma,
                                 Variant::Qk,       Variant::QkGemma};

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::RmsGemma:
      return "rms_norm_gemma";
    case Variant::LayerNorm:
      return "layer_norm";
    case Variant::LayerNormBias:
      return "layer_norm+bias";
    case Variant::L2:
      return "l2_norm";
    case Variant::AddRms:
      return "add_rms_norm";
    case Variant::AddRmsGemma:
      return "add_rms_norm(1+w)";
    case Variant::Qk:
      return "qk_norm";
    case Variant::QkGemma:
      return "qk_norm(1+w)";
  }
  return "?";
}

bool has_residual(Variant v) {
  return v == Variant::AddRms || v == Variant::AddRmsGemma;
}

struct Inputs {
  std::vector<float> x, r, w, b;
};

Inputs make_inputs(std::mt19937& rng, DType dt, RowsCols s) {
  Inputs in;
  in.x = test::random_floats(rng, s.rows * s.cols, -3.0f, 3.0f);
  for (auto& v : in.x) v = test::round_to(dt, v + 2.0f);  // a mean far from 0 tests LayerNorm
  in.r = test::round_to(dt, test::random_floats(rng, s.rows * s.cols, -3.0f, 3.0f));
  in.w = test::round_to(dt, test::random_floats(rng, s.cols, -1.5f, 1.5f));
  in.b = test::round_to(dt, test::random_floats(rng, s.cols, -1.0f, 1.0f));
  return in;
}

// h = round(x + r) as the kernels store it.
std::vector<float> residual_sum(DType dt, const Inputs& in) {
  std::vector<float> h(in.x.size());
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = test::round_to(dt, in.x[i] + in.r[i]);
  return h;
}

// The float64 definition of each variant (for add_rms_norm: y, from the rounded h).
std::vector<double> reference(Variant v, DType dt, RowsCols s, const Inputs& in, float eps) {
  const std::vector<float> src = has_residual(v) ? residual_sum(dt, in) : in.x;
  const double offset =
      (v == Variant::RmsGemma || v == Variant::AddRmsGemma || v == Variant::QkGemma) ? 1.0 : 0.0;
  std::vector<double> out(src.size());
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const float* row = src.data() + r * s.cols;
    double sum = 0.0, ss = 0.0;
    for (std::int64_t c = 0; c < s.cols; ++c) sum += row[c];
    const double mean = sum / s.cols;
    for (std::int64_t c = 0; c < s.cols; ++c) {
      const double d =
          v == Variant::LayerNorm || v == Variant::LayerNormBias ? row[c] - mean : row[c];
      ss += d * d;
    }
    for (std::int64_t c = 0; c < s.cols; ++c) {
      double& o = out[r * s.cols + c];
      switch (v) {
        case Variant::LayerNorm:
        case Variant::LayerNormBias:
          o = (row[c] - mean) / std::sqrt(ss / s.cols + eps) * in.w[c] +
              (v == Variant::LayerNormBias ? double(in.b[c]) : 0.0);
          break;
        case Variant::L2:
          o = row[c] / std::sqrt(ss + eps);
          break;
        default:
          o = row[c] / std::sqrt(ss / s.cols + eps) * (double(in.w[c]) + offset);
          break;
      }
    }
  }
  return out;
}

struct Outputs {
  std::vector<float> y, h;
};

// Runs the variant on `device`; qk-norm sees the rows as the heads of one token.
Outputs run_on(Device& device, Variant v, DType dt, RowsCols s, const Inputs& in,
               float eps = kEps) {
  const Shape shape = (v == Variant::Qk || v == Variant::QkGemma) ? Shape{1, s.rows, s.cols}
                                                                  : Shape{s.rows, s.cols};
  Buffer x = test::upload(device, in.x, dt, shape);
  Buffer w = test::upload(device, in.w, dt);
  Buffer y = test::poisoned(device, dt, shape);
  Buffer h = test::poisoned(device, dt, shape);
  CommandEncoder enc = device.command_encoder();
  switch (v) {
    case Variant::RmsGemma:
      ops::rms_norm_gemma(enc, x, w, y, eps);
      break;
    case Variant::LayerNorm:
      ops::layer_norm(enc, x, w, Buffer(), y, eps);
      break;
    case Variant::LayerNormBias:
      ops::layer_norm(enc, x, w, test::upload(device, in.b, dt), y, eps);
      break;
    case Variant::L2:
      ops::l2_norm(enc, x, y, eps);
      break;
    case Variant::AddRms:
    case Variant::AddRmsGemma:
      ops::add_rms_norm(enc, x, test::upload(device, in.r, dt, shape), w, h, y, eps,
                        v == Variant::AddRms ? ops::NormWeight::Plain : ops::NormWeight::OnePlus);
      break;
    case Variant::Qk:
    case Variant::QkGemma:
      ops::qk_norm(enc, x, w, y, eps,
                   v == Variant::Qk ? ops::NormWeight::Plain : ops::NormWeight::OnePlus);
      break;
  }
  enc.commit_and_wait();
  Outputs o{test::download(y), {}};
  if (has_residual(v)) o.h = test::download(h);
  return o;
}

std::string describe(Variant v, DType dt, RowsCols s) {
  return std::string(variant_name(v)) + " " + std::string(dtype_name(dt)) + " " +
         std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

class NormsTest : public BackendTest {};

TEST_P(NormsTest, EveryVariantMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (Variant v : kVariants) {
    for (DType dt : kFloatTypes) {
      for (RowsCols s : kShapes) {
        SCOPED_TRACE(describe(v, dt, s));
        const Inputs in = make_inputs(rng, dt, s);
        const Outputs out = run_on(device(), v, dt, s, in);
        EXPECT_LE(test::rel_l2(out.y, reference(v, dt, s, in, kEps)),
                  test::dtype_tolerance(dt, 1e-5));
        if (has_residual(v)) EXPECT_EQ(out.h, residual_sum(dt, in)) << "h = x + residual";
      }
    }
  }
}

TEST_P(NormsTest, LayerNormIsExactAboutLargeMeans) {
  // mean 1000, std ~1: E[x^2] - E[x]^2 in f32 would lose every digit of the variance.
  auto rng = test::seeded_rng();
  const RowsCols s{3, 4096};
  Inputs in = make_inputs(rng, DType::F32, s);
  for (auto& v : in.x) v += 1000.0f;
  for (Variant v : {Variant::LayerNorm, Variant::LayerNormBias}) {
    SCOPED_TRACE(variant_name(v));
    const Outputs out = run_on(device(), v, DType::F32, s, in);
    EXPECT_LE(test::rel_l2(out.y, reference(v, DType::F32, s, in, kEps)), 1e-4);
  }
}

TEST_P(NormsTest, EpsIsHonoured) {
  auto rng = test::seeded_rng();
  const RowsCols s{4, 64};
  Inputs in = make_inputs(rng, DType::F32, s);
  for (auto& v : in.x) v *= 1e-3f;
  for (Variant v : {Variant::RmsGemma, Variant::L2, Variant::LayerNorm}) {
    for (float eps : {0.0f, 1e-6f, 1e-2f}) {
      SCOPED_TRACE(std::string(variant_name(v)) + " eps=" + std::to_string(eps));
      const Outputs out = run_on(device(), v, DType::F32, s, in, eps);
      EXPECT_LE(test::rel_l2(out.y, reference(v, DType::F32, s, in, eps)), 1e-5);
    }
  }
}

TEST_P(NormsTest, InPlaceResidualStreamAndAliasedOutputs) {
  // The decoder's residual stream: residual += x in place, y written over x.
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (RowsCols s : {RowsCols{3, 4096}, RowsCols{5, 33}}) {
      SCOPED_TRACE(describe(Variant::AddRms, dt, s));
      const Inputs in = make_inputs(rng, dt, s);
      Buffer x = test::upload(device(), in.x, dt, {s.rows, s.cols});
      Buffer r = test::upload(device(), in.r, dt, {s.rows, s.cols});
      Buffer w = test::upload(device(), in.w, dt);
      CommandEncoder enc = device().command_encoder();
      ops::add_rms_norm(enc, x, r, w, r, x, kEps);
      enc.commit_and_wait();
      EXPECT_EQ(test::download(r), residual_sum(dt, in));
      EXPECT_LE(test::rel_l2(test::download(x), reference(Variant::AddRms, dt, s, in, kEps)),
                test::dtype_tolerance(dt, 1e-5));

      Buffer x2 = test::upload(device(), in.x, dt, {s.rows, s.cols});
      ops::rms_norm_gemma(enc, x2, w, x2, kEps);
      enc.commit_and_wait();
      EXPECT_LE(test::rel_l2(test::download(x2), reference(Variant::RmsGemma, dt, s, in, kEps)),
                test::dtype_tolerance(dt, 1e-5));
    }
  }
}

TEST_P(NormsTest, QkNormNormalizesEachHeadSeparately) {
  // [n_tokens, n_heads, head_dim] with one loud head: other heads must not notice it.
  auto rng = test::seeded_rng();
  for (std::int64_t head_dim : {64, 128, 256, 80}) {
    const std::int64_t n_tokens = 3, n_heads = 5;
    const RowsCols s{n_tokens * n_heads, head_dim};
    Inputs in = make_inputs(rng, DType::BF16, s);
    for (std::int64_t c = 0; c < head_dim; ++c) in.x[2 * head_dim + c] *= 64.0f;
    Buffer x = test::upload(device(), in.x, DType::BF16, {n_tokens, n_heads, head_dim});
    Buffer w = test::upload(device(), in.w, DType::BF16);
    Buffer out = test::poisoned(device(), DType::BF16, {n_tokens, n_heads, head_dim});
    CommandEncoder enc = device().command_encoder();
    ops::qk_norm(enc, x, w, out, kEps);
    enc.commit_and_wait();
    EXPECT_LE(test::rel_l2(test::download(out), reference(Variant::Qk, DType::BF16, s, in, kEps)),
              test::dtype_tolerance(DType::BF16, 1e-5))
        << head_dim;
  }
}

TEST_P(NormsTest, BadArgumentsThrowBeforeQueuing) {
  Device& d = device();
  Buffer x = d.alloc(DType::F32, {4, 8}), out = d.alloc(DType::F32, {4, 8});
  Buffer w = d.alloc(DType::F32, {8}), w7 = d.alloc(DType::F32, {7});
  Buffer w16 = d.alloc(DType::F16, {8});
  Buffer big = d.alloc(DType::F32, {8, 8});
  CommandEncoder enc = d.command_encoder();
  MLXN_EXPECT_ERROR(ops::rms_norm_gemma(enc, x, w7, out, kEps), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::rms_norm_gemma(enc, x, w16, out, kEps), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::layer_norm(enc, x, w, w7, out, kEps), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::l2_norm(enc, x, w, kEps), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::l2_norm(enc, x, out, -1.0f), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::qk_norm(enc, x, w, out, kEps), ErrorKind::InvalidArgument);  // 2-D
  // y overlapping h: y would overwrite h mid-row.
  Buffer hy = big.slice(0, 32).reshape({4, 8});
  Buffer y_over = big.slice(16, 32).reshape({4, 8});
  MLXN_EXPECT_ERROR(ops::add_rms_norm(enc, x, x, w, hy, y_over, kEps), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::add_rms_norm(enc, x, big, w, out, x, kEps), ErrorKind::InvalidArgument);
  Buffer i32 = d.alloc(DType::I32, {4, 8});
  MLXN_EXPECT_ERROR(ops::l2_norm(enc, i32, i32, kEps), ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(NormsTest);

// CUDA kernels vs the CPU kernels at decoder shapes (many rows, hidden 4096/5120, qk heads).
class NormsCudaTest : public test::CudaVsCpuTest {};

TEST_F(NormsCudaTest, LargeShapesMatchCpu) {
  auto rng = test::seeded_rng();
  constexpr RowsCols kBig[] = {{512, 4096}, {257, 5120}, {4096, 128}, {33, 14336}, {2, 262147}};
  for (Variant v : kVariants) {
    for (DType dt : kFloatTypes) {
      for (RowsCols s : kBig) {
        SCOPED_TRACE(describe(v, dt, s));
        const Inputs in = make_inputs(rng, dt, s);
        const Outputs want = run_on(cpu_, v, dt, s, in);
        const Outputs got = run_on(*cuda_, v, dt, s, in);
        EXPECT_LE(test::rel_l2(got.y, std::vector<double>(want.y.begin(), want.y.end())),
                  test::dtype_tolerance(dt, 1e-5));
        if (has_residual(v)) EXPECT_EQ(got.h, want.h);
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
