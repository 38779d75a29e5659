// RMSNorm and the fused rms_norm_mul for f32/f16/bf16: each backend vs a float64 reference and
// CUDA vs CPU, over odd shapes, with outputs poisoned before every run.
#include "mlxn/ops/norm.h"

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
constexpr RowsCols kShapes[] = {{1, 1}, {1, 4096}, {7, 33}, {64, 5120}, {3, 100003}};
constexpr float kEps = 1e-5f;

// out[r, c] = x[r, c] / sqrt(mean(x[r, :]^2) + eps) * w[c] (* g[r, c]), in double.
std::vector<double> rms_norm_ref(const std::vector<float>& x, const std::vector<float>& w,
                                 const std::vector<float>* g, RowsCols s, float eps) {
  std::vector<double> out(x.size());
  for (std::int64_t r = 0; r < s.rows; ++r) {
    double ss = 0.0;
    for (std::int64_t c = 0; c < s.cols; ++c) ss += double(x[r * s.cols + c]) * x[r * s.cols + c];
    const double inv = 1.0 / std::sqrt(ss / s.cols + double(eps));
    for (std::int64_t c = 0; c < s.cols; ++c) {
      const std::int64_t i = r * s.cols + c;
      out[i] = double(x[i]) * inv * w[c] * (g ? double((*g)[i]) : 1.0);
    }
  }
  return out;
}

struct NormInputs {
  std::vector<float> x, w, g;
};

NormInputs make_inputs(std::mt19937& rng, DType dt, RowsCols s) {
  NormInputs in;
  in.x = test::round_to(dt, test::random_floats(rng, s.rows * s.cols, -3.0f, 3.0f));
  in.w = test::round_to(dt, test::random_floats(rng, s.cols, 0.5f, 1.5f));
  in.g = test::round_to(dt, test::random_floats(rng, s.rows * s.cols));
  return in;
}

// Runs rms_norm (or rms_norm_mul when `fused`) on `device`; returns the output as f32.
std::vector<float> norm_on(Device& device, DType dt, RowsCols s, const NormInputs& in, bool fused,
                           float eps = kEps) {
  Buffer x = test::upload(device, in.x, dt, {s.rows, s.cols});
  Buffer w = test::upload(device, in.w, dt);
  Buffer out = test::poisoned(device, dt, {s.rows, s.cols});
  CommandEncoder enc = device.command_encoder();
  if (fused) {
    Buffer g = test::upload(device, in.g, dt, {s.rows, s.cols});
    ops::rms_norm_mul(enc, x, w, g, out, eps);
  } else {
    ops::rms_norm(enc, x, w, out, eps);
  }
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(bool fused, DType dt, RowsCols s) {
  return std::string(fused ? "rms_norm_mul " : "rms_norm ") + std::string(dtype_name(dt)) + " " +
         std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

class NormTest : public BackendTest {
 protected:
  void check(bool fused) {
    auto rng = test::seeded_rng();
    for (DType dt : kFloatTypes) {
      for (RowsCols s : kShapes) {
        SCOPED_TRACE(describe(fused, dt, s));
        const NormInputs in = make_inputs(rng, dt, s);
        const auto out = norm_on(device(), dt, s, in, fused);
        const auto ref = rms_norm_ref(in.x, in.w, fused ? &in.g : nullptr, s, kEps);
        EXPECT_LE(test::rel_l2(out, ref), test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
};

TEST_P(NormTest, RmsNormMatchesFloat64Reference) {
  check(false);
}

TEST_P(NormTest, RmsNormMulMatchesFloat64Reference) {
  check(true);
}

TEST_P(NormTest, EpsIsAddedToTheMeanSquare) {
  auto rng = test::seeded_rng();
  const RowsCols s{4, 64};
  NormInputs in = make_inputs(rng, DType::F32, s);
  for (auto& v : in.x) v *= 1e-3f;  // mean square ~1e-6, comparable to eps
  for (float eps : {0.0f, 1e-6f, 1e-2f}) {
    const auto out = norm_on(device(), DType::F32, s, in, false, eps);
    EXPECT_LE(test::rel_l2(out, rms_norm_ref(in.x, in.w, nullptr, s, eps)), 1e-5) << eps;
  }
}

TEST_P(NormTest, LeadingDimsAreFlattenedIntoRows) {
  auto rng = test::seeded_rng();
  const RowsCols s{6, 33};
  const NormInputs in = make_inputs(rng, DType::F32, s);
  Buffer x = test::upload(device(), in.x, DType::F32, {2, 3, 33});
  Buffer w = test::upload(device(), in.w, DType::F32);
  Buffer out = test::poisoned(device(), DType::F32, {2, 3, 33});
  CommandEncoder enc = device().command_encoder();
  ops::rms_norm(enc, x, w, out, kEps);
  enc.commit_and_wait();
  EXPECT_LE(test::rel_l2(test::download(out), rms_norm_ref(in.x, in.w, nullptr, s, kEps)), 1e-5);
}

TEST_P(NormTest, RowsAreIndependent) {
  // One huge row must not change its neighbours (a kernel mixing rows would fail this).
  auto rng = test::seeded_rng();
  const RowsCols s{3, 257};
  NormInputs in = make_inputs(rng, DType::F32, s);
  for (std::int64_t c = 0; c < s.cols; ++c) in.x[s.cols + c] *= 1e4f;
  const auto out = norm_on(device(), DType::F32, s, in, false);
  EXPECT_LE(test::rel_l2(out, rms_norm_ref(in.x, in.w, nullptr, s, kEps)), 1e-5);
  std::vector<float> row0(out.begin(), out.begin() + s.cols);
  const auto ref = rms_norm_ref(in.x, in.w, nullptr, s, kEps);
  EXPECT_LE(test::rel_l2(row0, std::vector<double>(ref.begin(), ref.begin() + s.cols)), 1e-5);
}

MLXN_INSTANTIATE_BACKENDS(NormTest);

// CUDA kernels vs the CPU kernels on the same inputs.
class NormCudaTest : public test::CudaVsCpuTest {};

TEST_F(NormCudaTest, RmsNormAndFusedMatchCpu) {
  auto rng = test::seeded_rng();
  for (bool fused : {false, true}) {
    for (DType dt : kFloatTypes) {
      for (RowsCols s : kShapes) {
        SCOPED_TRACE(describe(fused, dt, s));
        const NormInputs in = make_inputs(rng, dt, s);
        const auto want = norm_on(cpu_, dt, s, in, fused);
        const auto got = norm_on(*cuda_, dt, s, in, fused);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
