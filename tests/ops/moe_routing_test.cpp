// MoE routing: top-k expert selection (softmax / sigmoid, with and without renormalization and
// scaling) and the weighted combine (plain, + shared expert, + gated shared expert), each backend
// vs a float64 reference and CUDA vs CPU, with outputs poisoned before every run.
#include "mlxn/ops/moe_routing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

struct RouteCase {
  std::int64_t n_tokens, n_experts, k;
};
constexpr RouteCase kRouteCases[] = {{1, 8, 2},   {7, 60, 4},   {33, 64, 8},  {5, 128, 1},
                                     {9, 256, 8}, {3, 384, 32}, {2, 1024, 5}, {4, 3, 3}};

struct RouteOut {
  std::vector<std::int32_t> ids;
  std::vector<float> weights;
};

// Reference: ids by descending logit, ties by lower id; weights in double.
RouteOut route_ref(const std::vector<float>& x, RouteCase c, ops::MoeScoring scoring, bool renorm,
                   float scale, std::vector<double>& w_ref) {
  RouteOut out;
  w_ref.clear();
  for (std::int64_t t = 0; t < c.n_tokens; ++t) {
    const float* row = x.data() + t * c.n_experts;
    std::vector<std::int32_t> idx(c.n_experts);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return row[a] > row[b]; });
    const double m = row[idx[0]];
    double all = 0.0;
    for (std::int64_t e = 0; e < c.n_experts; ++e) all += std::exp(double(row[e]) - m);
    std::vector<double> w(c.k);
    double sel = 0.0;
    for (std::int64_t j = 0; j < c.k; ++j) {
      const double v = row[idx[j]];
      w[j] =
          scoring == ops::MoeScoring::Softmax ? std::exp(v - m) / all : 1.0 / (1.0 + std::exp(-v));
      sel += w[j];
    }
    for (std::int64_t j = 0; j < c.k; ++j) {
      out.ids.push_back(idx[j]);
      w_ref.push_back((renorm ? w[j] / sel : w[j]) * scale);
    }
  }
  return out;
}

RouteOut route_on(Device& d, DType dt, RouteCase c, const std::vector<float>& x,
                  ops::MoeScoring scoring, bool renorm, float scale) {
  Buffer logits = test::upload(d, x, dt, {c.n_tokens, c.n_experts});
  Buffer ids = test::poisoned(d, DType::I32, {c.n_tokens, c.k});
  Buffer weights = test::poisoned(d, DType::F32, {c.n_tokens, c.k});
  CommandEncoder enc = d.command_encoder();
  ops::moe_route(enc, logits, c.k, scoring, renorm, ids, weights, scale);
  enc.commit_and_wait();
  return {ids.to_vector<std::int32_t>(), weights.to_vector<float>()};
}

std::string describe(DType dt, RouteCase c, ops::MoeScoring sc, bool renorm) {
  return std::string(dtype_name(dt)) + " tokens=" + std::to_string(c.n_tokens) +
         " experts=" + std::to_string(c.n_experts) + " k=" + std::to_string(c.k) +
         (sc == ops::MoeScoring::Softmax ? " softmax" : " sigmoid") + (renorm ? " renorm" : "");
}

// Weights are computed from the stored (rounded) logits in f32: the bound is f32's.
constexpr double kWeightTol = 1e-5;

class MoeRoutingTest : public BackendTest {};

TEST_P(MoeRoutingTest, RouteMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (RouteCase c : kRouteCases) {
      for (auto sc : {ops::MoeScoring::Softmax, ops::MoeScoring::Sigmoid}) {
        for (bool renorm : {false, true}) {
          SCOPED_TRACE(describe(dt, c, sc, renorm));
          // f16/bf16 rounding makes exact ties: the lower id must win on every backend.
          const auto x =
              test::round_to(dt, test::random_floats(rng, c.n_tokens * c.n_experts, -4.f, 4.f));
          const float scale = renorm ? 2.5f : 1.0f;
          std::vector<double> w_ref;
          const RouteOut want = route_ref(x, c, sc, renorm, scale, w_ref);
          const RouteOut got = route_on(device(), dt, c, x, sc, renorm, scale);
          EXPECT_EQ(got.ids, want.ids);
          EXPECT_LE(test::rel_l2(got.weights, w_ref), kWeightTol);
        }
      }
    }
  }
}

TEST_P(MoeRoutingTest, RouteTiesTakeLowerExpertIds) {
  const RouteCase c{2, 40, 6};
  std::vector<float> x(c.n_tokens * c.n_experts, 0.5f);  // token 0: all equal
  for (std::int64_t e = 0; e < c.n_experts; ++e) x[c.n_experts + e] = (e % 4 == 3) ? 1.0f : 0.0f;
  const auto got = route_on(device(), DType::F32, c, x, ops::MoeScoring::Softmax, true, 1.0f);
  EXPECT_EQ(got.ids, (std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 3, 7, 11, 15, 19, 23}));
  for (float w : got.weights) EXPECT_NEAR(w, 1.0f / 6.0f, 1e-6f);
}

TEST_P(MoeRoutingTest, RejectsBadArguments) {
  Buffer logits = device().alloc(DType::F32, {2, 8});
  Buffer ids = device().alloc(DType::I32, {2, 9});
  Buffer w = device().alloc(DType::F32, {2, 9});
  Buffer ids2 = device().alloc(DType::I32, {2, 2});
  Buffer w2 = device().alloc(DType::F32, {2, 2});
  Buffer big = device().alloc(DType::F32, {1, 2000});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::moe_route(enc, logits, 9, ops::MoeScoring::Softmax, false, ids, w),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::moe_route(enc, logits, 2, ops::MoeScoring::Softmax, false, w2, ids2),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::moe_route(enc, big, 2, ops::MoeScoring::Softmax, false, ids2, w2),
                    ErrorKind::InvalidArgument);
  Buffer e = device().alloc(DType::F32, {2, 2, 16});
  Buffer out = device().alloc(DType::F32, {2, 16});
  Buffer out16 = device().alloc(DType::F16, {2, 16});
  MLXN_EXPECT_ERROR(ops::moe_combine(enc, e, w, out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::moe_combine(enc, e, w2, out16), ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Combine.

struct CombineCase {
  std::int64_t n_tokens, k, hidden;
};
constexpr CombineCase kCombineCases[] = {
    {1, 1, 8}, {3, 2, 33}, {7, 8, 256}, {2, 4, 1000}, {5, 3, 4096}};
enum class Shared { None, Plain, Gated };

struct CombineInputs {
  std::vector<float> e, w, shared, gate;
};

CombineInputs combine_inputs(std::mt19937& rng, DType dt, CombineCase c) {
  CombineInputs in;
  // Expert outputs are kept away from zero (|e| in [0.25, 1]): a near-zero product rounded to
  // f16 has a large relative error by itself, which says nothing about the kernel.
  in.e = test::random_floats(rng, c.n_tokens * c.k * c.hidden);
  for (float& v : in.e) v = std::copysign(0.25f + 0.75f * std::fabs(v), v);
  in.e = test::round_to(dt, in.e);
  in.w = test::random_floats(rng, c.n_tokens * c.k, 0.1f, 1.0f);
  in.shared = test::round_to(dt, test::random_floats(rng, c.n_tokens * c.hidden));
  in.gate = test::round_to(dt, test::random_floats(rng, c.n_tokens, -3.f, 3.f));
  return in;
}

std::vector<double> combine_ref(const CombineInputs& in, CombineCase c, Shared sh) {
  std::vector<double> out(c.n_tokens * c.hidden);
  for (std::int64_t t = 0; t < c.n_tokens; ++t) {
    const double g = sh == Shared::Gated ? 1.0 / (1.0 + std::exp(-double(in.gate[t]))) : 1.0;
    for (std::int64_t h = 0; h < c.hidden; ++h) {
      double acc = 0.0;
      for (std::int64_t j = 0; j < c.k; ++j) {
        acc += double(in.w[t * c.k + j]) * in.e[(t * c.k + j) * c.hidden + h];
      }
      if (sh != Shared::None) acc += g * in.shared[t * c.hidden + h];
      out[t * c.hidden + h] = acc;
    }
  }
  return out;
}

std::vector<float> combine_on(Device& d, DType dt, CombineCase c, const CombineInputs& in,
                              Shared sh) {
  Buffer e = test::upload(d, in.e, dt, {c.n_tokens, c.k, c.hidden});
  Buffer w = test::upload(d, in.w, DType::F32, {c.n_tokens, c.k});
  Buffer out = test::poisoned(d, dt, {c.n_tokens, c.hidden});
  CommandEncoder enc = d.command_encoder();
  if (sh == Shared::None) {
    ops::moe_combine(enc, e, w, out);
  } else {
    Buffer s = test::upload(d, in.shared, dt, {c.n_tokens, c.hidden});
    Buffer g = sh == Shared::Gated ? test::upload(d, in.gate, dt, {c.n_tokens, 1}) : Buffer{};
    ops::moe_combine_shared(enc, e, w, s, g, out);
  }
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(DType dt, CombineCase c, Shared sh) {
  return std::string(dtype_name(dt)) + " tokens=" + std::to_string(c.n_tokens) +
         " k=" + std::to_string(c.k) + " hidden=" + std::to_string(c.hidden) +
         (sh == Shared::None    ? ""
          : sh == Shared::Plain ? " +shared"
                                : " +gated shared");
}

TEST_P(MoeRoutingTest, CombineMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (CombineCase c : kCombineCases) {
      for (Shared sh : {Shared::None, Shared::Plain, Shared::Gated}) {
        SCOPED_TRACE(describe(dt, c, sh));
        const CombineInputs in = combine_inputs(rng, dt, c);
        const auto out = combine_on(device(), dt, c, in, sh);
        EXPECT_LE(test::rel_l2(out, combine_ref(in, c, sh)), test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

MLXN_INSTANTIATE_BACKENDS(MoeRoutingTest);

class MoeRoutingCudaTest : public test::CudaVsCpuTest {};

TEST_F(MoeRoutingCudaTest, RouteAndCombineMatchCpu) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (RouteCase c : {RouteCase{1000, 128, 8}, RouteCase{513, 256, 8}, RouteCase{77, 60, 4},
                        RouteCase{70000, 8, 2}}) {
      for (auto sc : {ops::MoeScoring::Softmax, ops::MoeScoring::Sigmoid}) {
        SCOPED_TRACE(describe(dt, c, sc, true));
        const auto x =
            test::round_to(dt, test::random_floats(rng, c.n_tokens * c.n_experts, -4.f, 4.f));
        const RouteOut want = route_on(cpu_, dt, c, x, sc, true, 1.0f);
        const RouteOut got = route_on(*cuda_, dt, c, x, sc, true, 1.0f);
        EXPECT_EQ(got.ids, want.ids);
        EXPECT_LE(test::rel_l2(got.weights, want.weights), kWeightTol);
      }
    }
    for (CombineCase c :
         {CombineCase{64, 8, 4096}, CombineCase{3, 2, 4097}, CombineCase{70000, 2, 8}}) {
      for (Shared sh : {Shared::None, Shared::Plain, Shared::Gated}) {
        SCOPED_TRACE(describe(dt, c, sh));
        const CombineInputs in = combine_inputs(rng, dt, c);
        const auto want = combine_on(cpu_, dt, c, in, sh);
        const auto got = combine_on(*cuda_, dt, c, in, sh);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  test::dtype_tolerance(dt, 1e-5));
        EXPECT_LE(test::rel_l2(got, combine_ref(in, c, sh)), test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
