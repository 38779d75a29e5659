// Dense expert-routed matmul (ops::matmul_id) for f32/f16/bf16: each backend vs a float64
// reference (x shared by the slots or one row per slot, repeated experts, odd sizes), unaligned
// views, graph capture, out-of-range expert ids, argument checks, and CUDA vs CPU at MoE shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mlxn/core/compute_graph.h"
#include "mlxn/ops/matmul.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

struct Case {
  std::int64_t m, top_k, experts, n, k;
};
// A single element; odd n and k (the scalar path); k a multiple of every pack width; long rows;
// more assignments than experts (so tokens share experts).
constexpr Case kCases[] = {{1, 1, 1, 1, 1},     {1, 2, 3, 37, 19},    {3, 2, 5, 45, 72},
                           {17, 4, 6, 33, 100}, {2, 8, 16, 129, 264}, {5, 3, 4, 17, 2050},
                           {9, 2, 3, 300, 512}};

struct Inputs {
  std::vector<float> x, w;  // already rounded to the dtype
  std::vector<std::int32_t> ids;
};

Inputs make_inputs(std::mt19937& rng, DType dt, const Case& c, bool per_slot) {
  Inputs in;
  in.x = test::round_to(dt, test::random_floats(rng, (per_slot ? c.m * c.top_k : c.m) * c.k));
  in.w = test::round_to(dt, test::random_floats(rng, c.experts * c.n * c.k));
  in.ids.resize(c.m * c.top_k);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(c.experts) - 1);
  for (auto& id : in.ids) id = pick(rng);
  return in;
}

std::vector<double> reference(const Inputs& in, const Case& c, bool per_slot) {
  std::vector<double> out(c.m * c.top_k * c.n);
  for (std::int64_t a = 0; a < c.m * c.top_k; ++a) {
    const float* xr = &in.x[(per_slot ? a : a / c.top_k) * c.k];
    const float* we = &in.w[in.ids[a] * c.n * c.k];
    for (std::int64_t j = 0; j < c.n; ++j) {
      double acc = 0.0;
      for (std::int64_t i = 0; i < c.k; ++i) acc += double(xr[i]) * we[j * c.k + i];
      out[a * c.n + j] = acc;
    }
  }
  return out;
}

Buffer upload_ids(Device& device, const std::vector<std::int32_t>& ids, std::int64_t m,
                  std::int64_t top_k) {
  Buffer b = device.alloc(DType::I32, {m, top_k});
  b.write(ids);
  return b;
}

std::vector<float> run(Device& device, DType dt, const Case& c, const Inputs& in, bool per_slot) {
  Buffer x = test::upload(device, in.x, dt, per_slot ? Shape{c.m, c.top_k, c.k} : Shape{c.m, c.k});
  Buffer w = test::upload(device, in.w, dt, {c.experts, c.n, c.k});
  Buffer ids = upload_ids(device, in.ids, c.m, c.top_k);
  Buffer out = test::poisoned(device, dt, {c.m, c.top_k, c.n});
  CommandEncoder enc = device.command_encoder();
  ops::matmul_id(enc, x, w, ids, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(DType dt, const Case& c, bool per_slot) {
  return std::string(dtype_name(dt)) + " m=" + std::to_string(c.m) +
         " top_k=" + std::to_string(c.top_k) + " experts=" + std::to_string(c.experts) +
         " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         (per_slot ? " x per slot" : " x per token");
}

class MatmulIdTest : public BackendTest {};

TEST_P(MatmulIdTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (const Case& c : kCases) {
      for (bool per_slot : {false, true}) {
        SCOPED_TRACE(describe(dt, c, per_slot));
        const Inputs in = make_inputs(rng, dt, c, per_slot);
        EXPECT_LE(test::rel_l2(run(device(), dt, c, in, per_slot), reference(in, c, per_slot)),
                  test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

TEST_P(MatmulIdTest, SlotsOfOneTokenMayPickTheSameExpert) {
  // Every slot of every token on one expert, and the last expert of the stack (its rows end
  // exactly at the end of w).
  auto rng = test::seeded_rng();
  const Case c{4, 3, 5, 24, 40};
  for (std::int32_t e : {0, 4}) {
    SCOPED_TRACE("expert " + std::to_string(e));
    Inputs in = make_inputs(rng, DType::F32, c, true);
    std::fill(in.ids.begin(), in.ids.end(), e);
    EXPECT_LE(test::rel_l2(run(device(), DType::F32, c, in, true), reference(in, c, true)), 1e-5);
  }
}

TEST_P(MatmulIdTest, UnalignedViewsUseTheScalarPath) {
  // Views one element into their storage: neither x nor w nor out is 16-byte aligned.
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    const Case c{3, 2, 4, 70, 64};
    SCOPED_TRACE(describe(dt, c, false));
    const Inputs in = make_inputs(rng, dt, c, false);
    const std::size_t es = dtype_size(dt);
    auto shifted = [&](const std::vector<float>& v, Shape shape) {
      std::vector<float> padded(v.size() + 1, 1.0f);
      std::copy(v.begin(), v.end(), padded.begin() + 1);
      Buffer b = test::upload(device(), padded, dt);
      return b.view(es, v.size() * es, dt, std::move(shape));
    };
    Buffer x = shifted(in.x, {c.m, c.k});
    Buffer w = shifted(in.w, {c.experts, c.n, c.k});
    const std::int64_t n_out = c.m * c.top_k * c.n;
    Buffer out_storage = test::poisoned(device(), dt, {n_out + 1});
    Buffer out = out_storage.view(es, n_out * es, dt, {c.m, c.top_k, c.n});
    CommandEncoder enc = device().command_encoder();
    ops::matmul_id(enc, x, w, upload_ids(device(), in.ids, c.m, c.top_k), out);
    enc.commit_and_wait();
    EXPECT_LE(test::rel_l2(test::download(out), reference(in, c, false)),
              test::dtype_tolerance(dt, 1e-5));
  }
}

TEST_P(MatmulIdTest, CapturedGraphFollowsNewIds) {
  // A replayed graph reads ids at run time: new routing between replays must take effect.
  auto rng = test::seeded_rng();
  const Case c{2, 2, 4, 48, 64};
  Inputs in = make_inputs(rng, DType::BF16, c, false);
  Buffer x = test::upload(device(), in.x, DType::BF16, {c.m, c.k});
  Buffer w = test::upload(device(), in.w, DType::BF16, {c.experts, c.n, c.k});
  Buffer ids = upload_ids(device(), in.ids, c.m, c.top_k);
  Buffer out = test::poisoned(device(), DType::BF16, {c.m, c.top_k, c.n});
  ComputeGraph graph;
  CommandEncoder enc = device().command_encoder();
  enc.begin_capture(graph);
  ops::matmul_id(enc, x, w, ids, out);
  enc.end_capture();
  GraphExec exec = graph.instantiate(device());
  for (int rep = 0; rep < 3; ++rep) {
    std::uniform_int_distribution<int> pick(0, static_cast<int>(c.experts) - 1);
    for (auto& id : in.ids) id = pick(rng);
    ids.write(in.ids);
    test::poison(out);
    enc.launch(exec);
    enc.commit_and_wait();
    EXPECT_LE(test::rel_l2(test::download(out), reference(in, c, false)), 8e-3) << rep;
  }
}

TEST_P(MatmulIdTest, ExpertIdOutOfRangeFailsTheCommandBuffer) {
  auto rng = test::seeded_rng();
  const Case c{2, 2, 3, 8, 64};
  for (std::int32_t bad : {3, -1, 1 << 30}) {
    SCOPED_TRACE("bad id " + std::to_string(bad));
    Inputs in = make_inputs(rng, DType::F32, c, false);
    in.ids[3] = bad;
    MLXN_EXPECT_ERROR(run(device(), DType::F32, c, in, false), ErrorKind::CommandBuffer);
  }
  // The device stays usable: a valid routing afterwards still gives correct results.
  const Inputs in = make_inputs(rng, DType::F32, c, false);
  EXPECT_LE(test::rel_l2(run(device(), DType::F32, c, in, false), reference(in, c, false)), 1e-5);
}

TEST_P(MatmulIdTest, RejectsBadArguments) {
  Buffer x = device().alloc(DType::F32, {2, 8});
  Buffer w = device().alloc(DType::F32, {3, 4, 8});
  Buffer ids = device().alloc(DType::I32, {2, 2});
  Buffer out = device().alloc(DType::F32, {2, 2, 4});
  CommandEncoder enc = device().command_encoder();
  // w not stacked, k mismatch, dtype mismatch.
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, device().alloc(DType::F32, {4, 8}), ids, out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, device().alloc(DType::F32, {3, 4, 7}), ids, out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, device().alloc(DType::F16, {3, 4, 8}), ids, out),
                    ErrorKind::InvalidArgument);
  // ids not i32 [m, top_k]; x neither [m, k] nor [m, top_k, k]; out not [m, top_k, n].
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, w, device().alloc(DType::F32, {2, 2}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, w, device().alloc(DType::I32, {4}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, device().alloc(DType::F32, {2, 3, 8}), w, ids, out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, w, ids, device().alloc(DType::F32, {4, 4})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, x, w, ids, device().alloc(DType::F16, {2, 2, 4})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::matmul_id(enc, device().alloc(DType::I32, {2, 8}), w, ids, out),
                    ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(MatmulIdTest);

// CUDA kernel vs the CPU kernel at the expert shapes of MoE models (Qwen3-30B-A3B: 128 experts
// of 768 x 2048, top 8; Llama-sized 4096 x 4096 experts, top 2), fewer experts stacked.
class MatmulIdCudaTest : public test::CudaVsCpuTest {};

TEST_F(MatmulIdCudaTest, MoeShapesMatchCpu) {
  auto rng = test::seeded_rng();
  constexpr Case kLarge[] = {{1, 8, 12, 768, 2048}, {1, 8, 12, 2048, 768}, {7, 8, 12, 768, 2048},
                             {1, 2, 2, 4096, 4096}, {3, 2, 3, 1001, 4095}, {40, 4, 8, 256, 1024}};
  for (DType dt : kFloatTypes) {
    for (const Case& c : kLarge) {
      for (bool per_slot : {false, true}) {
        SCOPED_TRACE(describe(dt, c, per_slot));
        const Inputs in = make_inputs(rng, dt, c, per_slot);
        const auto want = run(cpu_, dt, c, in, per_slot);
        const auto got = run(*cuda_, dt, c, in, per_slot);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
