// Softmax (plain, scaled, masked with broadcast, f32 output from f16/bf16): each backend vs a
// float64 reference and CUDA vs CPU, over odd shapes, with outputs poisoned before every run.
#include "mlxn/ops/softmax.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

struct Shape2 {
  std::int64_t rows, cols;
};
// Moderate on CPU (the CI budget); the Cuda test adds vocab-sized and longer rows.
constexpr Shape2 kShapes[] = {{1, 1}, {1, 4096}, {7, 33}, {16, 127}, {3, 20001}};
constexpr Shape2 kCudaShapes[] = {{1, 1},      {7, 33},     {64, 2048}, {5, 4099},
                                  {2, 128256}, {1, 200003}, {300, 80}};
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Variant {
  DType in, out;
};
constexpr Variant kVariants[] = {{DType::F32, DType::F32},
                                 {DType::F16, DType::F16},
                                 {DType::BF16, DType::BF16},
                                 {DType::F16, DType::F32},
                                 {DType::BF16, DType::F32}};

double tolerance(DType out) {
  return out == DType::F16 ? 2e-3 : out == DType::BF16 ? 1e-2 : 1e-5;
}

// softmax(x * scale + mask[r % mask_rows]) per row in double; all -inf rows give zeros.
std::vector<double> softmax_ref(const std::vector<float>& x, const std::vector<float>* mask,
                                Shape2 s, float scale) {
  std::vector<double> out(x.size());
  const std::int64_t mask_rows = mask ? static_cast<std::int64_t>(mask->size()) / s.cols : 1;
  for (std::int64_t r = 0; r < s.rows; ++r) {
    std::vector<double> v(s.cols);
    double m = -std::numeric_limits<double>::infinity();
    for (std::int64_t c = 0; c < s.cols; ++c) {
      v[c] = double(x[r * s.cols + c]) * scale;
      if (mask) v[c] += (*mask)[(r % mask_rows) * s.cols + c];
      m = std::max(m, v[c]);
    }
    if (m == -std::numeric_limits<double>::infinity()) continue;  // zeros
    double sum = 0.0;
    for (double t : v) sum += std::exp(t - m);
    for (std::int64_t c = 0; c < s.cols; ++c) out[r * s.cols + c] = std::exp(v[c] - m) / sum;
  }
  return out;
}

std::vector<float> softmax_on(Device& device, Variant v, Shape2 s, const std::vector<float>& x,
                              const std::vector<float>* mask, float scale) {
  Buffer xb = test::upload(device, x, v.in, {s.rows, s.cols});
  Buffer out = test::poisoned(device, v.out, {s.rows, s.cols});
  CommandEncoder enc = device.command_encoder();
  if (mask) {
    const std::int64_t mask_rows = static_cast<std::int64_t>(mask->size()) / s.cols;
    Buffer mb = test::upload(device, *mask, v.in, {mask_rows, s.cols});
    ops::softmax_masked(enc, xb, mb, out, scale);
  } else {
    ops::softmax(enc, xb, out, scale);
  }
  enc.commit_and_wait();
  return test::download(out);
}

// A causal-style mask [q, cols]: row i allows the first cols - q + i + 1 columns, -inf after;
// its last row allows nothing when `with_empty_row` (a fully masked row must give zeros).
std::vector<float> causal_mask(std::int64_t q, std::int64_t cols, bool with_empty_row) {
  std::vector<float> m(q * cols, 0.0f);
  for (std::int64_t i = 0; i < q; ++i) {
    const std::int64_t allowed =
        (with_empty_row && i == q - 1) ? 0 : std::max<std::int64_t>(1, cols - q + i + 1);
    for (std::int64_t c = allowed; c < cols; ++c) m[i * cols + c] = -kInf;
  }
  return m;
}

std::string describe(Variant v, Shape2 s, const char* what) {
  return std::string(what) + " " + std::string(dtype_name(v.in)) + "->" +
         std::string(dtype_name(v.out)) + " " + std::to_string(s.rows) + "x" +
         std::to_string(s.cols);
}

class SoftmaxTest : public BackendTest {};

TEST_P(SoftmaxTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (Variant v : kVariants) {
    for (Shape2 s : kShapes) {
      SCOPED_TRACE(describe(v, s, "softmax"));
      // Wide range: without max subtraction exp() would overflow.
      const auto x = test::round_to(v.in, test::random_floats(rng, s.rows * s.cols, -60.f, 60.f));
      const auto out = softmax_on(device(), v, s, x, nullptr, 1.0f);
      EXPECT_LE(test::rel_l2(out, softmax_ref(x, nullptr, s, 1.0f)), tolerance(v.out));
    }
  }
}

TEST_P(SoftmaxTest, ScaleIsAppliedBeforeTheMax) {
  auto rng = test::seeded_rng();
  const Shape2 s{5, 300};
  const auto x = test::random_floats(rng, s.rows * s.cols, -8.f, 8.f);
  for (float scale : {0.088388f, 1.0f, 3.0f}) {
    const auto out = softmax_on(device(), {DType::F32, DType::F32}, s, x, nullptr, scale);
    EXPECT_LE(test::rel_l2(out, softmax_ref(x, nullptr, s, scale)), 1e-5) << scale;
  }
}

TEST_P(SoftmaxTest, MaskedBroadcastOverRowsAndFullyMaskedRowsGiveZeros) {
  auto rng = test::seeded_rng();
  for (Variant v : kVariants) {
    for (Shape2 q : {Shape2{4, 37}, Shape2{3, 256}, Shape2{1, 4097}}) {
      const Shape2 s{q.rows * 3, q.cols};  // 3 "heads" share the mask
      SCOPED_TRACE(describe(v, s, "softmax_masked"));
      const auto x = test::round_to(v.in, test::random_floats(rng, s.rows * s.cols, -4.f, 4.f));
      auto mask = causal_mask(q.rows, q.cols, q.rows > 1);
      // Finite additive biases too, not only 0 / -inf.
      for (std::size_t i = 0; i < mask.size(); i += 3) {
        if (std::isfinite(mask[i])) mask[i] = test::round_to(v.in, -1.5f + float(i % 7) * 0.5f);
      }
      const auto out = softmax_on(device(), v, s, x, &mask, 0.125f);
      const auto ref = softmax_ref(x, &mask, s, 0.125f);
      EXPECT_LE(test::rel_l2(out, ref), tolerance(v.out));
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (ref[i] == 0.0) ASSERT_EQ(out[i], 0.0f) << "masked element " << i;
      }
    }
  }
}

TEST_P(SoftmaxTest, InPlaceAndLeadingDims) {
  auto rng = test::seeded_rng();
  const Shape2 s{6, 129};
  const auto x = test::random_floats(rng, s.rows * s.cols, -5.f, 5.f);
  Buffer b = test::upload(device(), x, DType::F32, {2, 3, 129});
  CommandEncoder enc = device().command_encoder();
  ops::softmax(enc, b, b);
  enc.commit_and_wait();
  EXPECT_LE(test::rel_l2(test::download(b), softmax_ref(x, nullptr, s, 1.0f)), 1e-5);
}

TEST_P(SoftmaxTest, RejectsBadArguments) {
  Buffer x = device().alloc(DType::F32, {4, 8});
  Buffer out16 = device().alloc(DType::F16, {4, 8});
  Buffer short_out = device().alloc(DType::F32, {4, 7});
  Buffer mask_bad = device().alloc(DType::F32, {3, 8});
  Buffer mask_i32 = device().alloc(DType::I32, {1, 8});
  Buffer xi = device().alloc(DType::I32, {4, 8});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::softmax(enc, x, out16), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::softmax(enc, x, short_out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::softmax(enc, xi, x), ErrorKind::UnsupportedDType);
  MLXN_EXPECT_ERROR(ops::softmax_masked(enc, x, mask_bad, x), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::softmax_masked(enc, x, mask_i32, x), ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(SoftmaxTest);

class SoftmaxCudaTest : public test::CudaVsCpuTest {};

TEST_F(SoftmaxCudaTest, MatchesCpuAndReferenceOnLongRows) {
  auto rng = test::seeded_rng();
  for (Variant v : kVariants) {
    for (Shape2 s : kCudaShapes) {
      for (bool masked : {false, true}) {
        SCOPED_TRACE(describe(v, s, masked ? "softmax_masked" : "softmax"));
        const auto x = test::round_to(v.in, test::random_floats(rng, s.rows * s.cols, -30, 30));
        std::vector<float> mask;
        if (masked) mask = causal_mask(1, s.cols, false);
        if (masked) mask[0] = -kInf;  // at least one masked element in every row
        const auto* mp = masked ? &mask : nullptr;
        const auto got = softmax_on(*cuda_, v, s, x, mp, 0.5f);
        const auto want = softmax_on(cpu_, v, s, x, mp, 0.5f);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  tolerance(v.out));
        EXPECT_LE(test::rel_l2(got, softmax_ref(x, mp, s, 0.5f)), tolerance(v.out));
      }
    }
  }
}

TEST_F(SoftmaxCudaTest, MisalignedViewsUseTheScalarPath) {
  auto rng = test::seeded_rng();
  const Shape2 s{3, 64};
  const auto x = test::random_floats(rng, s.rows * s.cols + 1, -3.f, 3.f);
  for (Device* d : {&cpu_, &*cuda_}) {
    Buffer all = test::upload(*d, x, DType::F32);
    Buffer xv = all.view(4, s.rows * s.cols * 4, DType::F32, {s.rows, s.cols});
    Buffer out_all = test::poisoned(*d, DType::F32, {s.rows * s.cols + 1});
    Buffer ov = out_all.view(4, s.rows * s.cols * 4, DType::F32, {s.rows, s.cols});
    CommandEncoder enc = d->command_encoder();
    ops::softmax(enc, xv, ov);
    enc.commit_and_wait();
    const std::vector<float> xs(x.begin() + 1, x.end());
    EXPECT_LE(test::rel_l2(test::download(ov), softmax_ref(xs, nullptr, s, 1.0f)), 1e-5);
  }
}

}  // namespace
}  // namespace mlxn
