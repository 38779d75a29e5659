// Dense matmul (x @ w^T + bias) for f32/f16/bf16: each backend vs a float64 reference, CUDA vs
// CPU at Llama-sized shapes, unaligned views, graph capture, and argument checks.
#include "mlxn/ops/matmul.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mlxn/core/compute_graph.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

struct Mnk {
  std::int64_t m, n, k;
};
// m = 1 takes the matvec kernel, the rest the GEMM; odd n and k, a single element, long rows.
constexpr Mnk kShapes[] = {{1, 1, 1},   {1, 37, 19},   {1, 300, 4096}, {2, 5, 8},
                           {3, 17, 33}, {17, 64, 100}, {64, 129, 257}, {5, 33, 2050}};

struct Inputs {
  std::vector<float> x, w, bias;
};

Inputs make_inputs(std::mt19937& rng, DType dt, Mnk s) {
  return {test::round_to(dt, test::random_floats(rng, s.m * s.k)),
          test::round_to(dt, test::random_floats(rng, s.n * s.k)),
          test::round_to(dt, test::random_floats(rng, s.n))};
}

std::vector<double> matmul_ref(const Inputs& in, Mnk s, bool bias) {
  std::vector<double> out(s.m * s.n);
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      double acc = bias ? in.bias[j] : 0.0;
      for (std::int64_t c = 0; c < s.k; ++c) acc += double(in.x[i * s.k + c]) * in.w[j * s.k + c];
      out[i * s.n + j] = acc;
    }
  }
  return out;
}

std::vector<float> matmul_on(Device& device, DType dt, Mnk s, const Inputs& in, bool bias) {
  Buffer x = test::upload(device, in.x, dt, {s.m, s.k});
  Buffer w = test::upload(device, in.w, dt, {s.n, s.k});
  Buffer out = test::poisoned(device, dt, {s.m, s.n});
  CommandEncoder enc = device.command_encoder();
  if (bias) {
    ops::matmul(enc, x, w, test::upload(device, in.bias, dt), out);
  } else {
    ops::matmul(enc, x, w, out);
  }
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(DType dt, Mnk s, bool bias) {
  return std::string(dtype_name(dt)) + " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
         " k=" + std::to_string(s.k) + (bias ? " +bias" : "");
}

class MatmulTest : public BackendTest {};

TEST_P(MatmulTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Mnk s : kShapes) {
      for (bool bias : {false, true}) {
        SCOPED_TRACE(describe(dt, s, bias));
        const Inputs in = make_inputs(rng, dt, s);
        EXPECT_LE(test::rel_l2(matmul_on(device(), dt, s, in, bias), matmul_ref(in, s, bias)),
                  test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

TEST_P(MatmulTest, LeadingDimsAreRows) {
  auto rng = test::seeded_rng();
  const Mnk s{6, 40, 24};
  const Inputs in = make_inputs(rng, DType::F32, s);
  Buffer x = test::upload(device(), in.x, DType::F32, {2, 3, s.k});
  Buffer w = test::upload(device(), in.w, DType::F32, {s.n, s.k});
  Buffer out = test::poisoned(device(), DType::F32, {2, 3, s.n});
  CommandEncoder enc = device().command_encoder();
  ops::matmul(enc, x, w, out);
  enc.commit_and_wait();
  EXPECT_LE(test::rel_l2(test::download(out), matmul_ref(in, s, false)), 1e-5);
}

TEST_P(MatmulTest, UnalignedViewsUseTheScalarPath) {
  // Views one element into their storage: no operand is 16-byte aligned.
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Mnk s : {Mnk{1, 70, 64}, Mnk{9, 70, 64}}) {
      SCOPED_TRACE(describe(dt, s, true));
      const Inputs in = make_inputs(rng, dt, s);
      const std::size_t es = dtype_size(dt);
      auto shifted = [&](const std::vector<float>& v, Shape shape) {
        std::vector<float> padded(v.size() + 1, 1.0f);
        std::copy(v.begin(), v.end(), padded.begin() + 1);
        Buffer b = test::upload(device(), padded, dt);
        return b.view(es, v.size() * es, dt, std::move(shape));
      };
      Buffer x = shifted(in.x, {s.m, s.k});
      Buffer w = shifted(in.w, {s.n, s.k});
      Buffer bias = shifted(in.bias, {s.n});
      Buffer out_storage = test::poisoned(device(), dt, {s.m * s.n + 1});
      Buffer out = out_storage.view(es, s.m * s.n * es, dt, {s.m, s.n});
      CommandEncoder enc = device().command_encoder();
      ops::matmul(enc, x, w, bias, out);
      enc.commit_and_wait();
      EXPECT_LE(test::rel_l2(test::download(out), matmul_ref(in, s, true)),
                test::dtype_tolerance(dt, 1e-5));
    }
  }
}

TEST_P(MatmulTest, CapturedGraphMatchesDirect) {
  // On CUDA the GEMM is a host-enqueued library call: a graph captures it as a child graph.
  auto rng = test::seeded_rng();
  for (Mnk s : {Mnk{1, 96, 64}, Mnk{24, 96, 64}}) {
    SCOPED_TRACE(describe(DType::BF16, s, true));
    const Inputs in = make_inputs(rng, DType::BF16, s);
    Buffer x = test::upload(device(), in.x, DType::BF16, {s.m, s.k});
    Buffer w = test::upload(device(), in.w, DType::BF16, {s.n, s.k});
    Buffer bias = test::upload(device(), in.bias, DType::BF16);
    Buffer out = test::poisoned(device(), DType::BF16, {s.m, s.n});
    ComputeGraph graph;
    CommandEncoder enc = device().command_encoder();
    enc.begin_capture(graph);
    ops::matmul(enc, x, w, bias, out);
    enc.end_capture();
    GraphExec exec = graph.instantiate(device());
    for (int rep = 0; rep < 2; ++rep) {
      test::poison(out);
      enc.launch(exec);
      enc.commit_and_wait();
      EXPECT_LE(test::rel_l2(test::download(out), matmul_ref(in, s, true)), 8e-3) << rep;
    }
  }
}

TEST_P(MatmulTest, RejectsBadArguments) {
  Buffer x = device().alloc(DType::F32, {2, 8});
  Buffer w = device().alloc(DType::F32, {4, 8});
  Buffer out = device().alloc(DType::F32, {2, 4});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::matmul(enc, x, device().alloc(DType::F32, {4, 7}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul(enc, x, w, device().alloc(DType::F32, {2, 5})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul(enc, x, device().alloc(DType::F16, {4, 8}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul(enc, x, w, device().alloc(DType::F32, {5}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul(enc, device().alloc(DType::I32, {2, 8}), w, out),
                    ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(MatmulTest);

// CUDA kernels vs the CPU kernels at decode and prefill shapes of Llama-3-8B.
class MatmulCudaTest : public test::CudaVsCpuTest {};

TEST_F(MatmulCudaTest, LargeShapesMatchCpu) {
  auto rng = test::seeded_rng();
  constexpr Mnk kLarge[] = {{1, 4096, 4096}, {1, 1024, 4096},   {1, 4096, 14336},
                            {1, 1001, 4095}, {128, 4096, 4096}, {77, 1030, 4096}};
  for (DType dt : kFloatTypes) {
    for (Mnk s : kLarge) {
      SCOPED_TRACE(describe(dt, s, true));
      const Inputs in = make_inputs(rng, dt, s);
      const auto want = matmul_on(cpu_, dt, s, in, true);
      const auto got = matmul_on(*cuda_, dt, s, in, true);
      EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                test::dtype_tolerance(dt, 1e-5));
    }
  }
}

}  // namespace
}  // namespace mlxn
