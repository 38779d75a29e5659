// ops::bias_add (out[r, :] = x[r, :] + bias) for f32/f16/bf16: each backend vs a float64
// reference at odd sizes, leading dims as rows, in place, unaligned views, argument checks, and
// CUDA vs CPU bit for bit (both add in f32 and round once).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

struct Size {
  std::int64_t rows, n;
};
// One element; n below, at and off every pack width (4 f32, 8 f16/bf16); long rows.
constexpr Size kSizes[] = {{1, 1},  {1, 7},     {3, 8},     {2, 4},
                           {5, 37}, {17, 1000}, {64, 4099}, {7, 4096}};

struct Inputs {
  std::vector<float> x, bias;  // already rounded to the dtype
};

Inputs make_inputs(std::mt19937& rng, DType dt, Size s) {
  return {test::round_to(dt, test::random_floats(rng, s.rows * s.n)),
          test::round_to(dt, test::random_floats(rng, s.n))};
}

std::vector<double> reference(const Inputs& in, Size s) {
  std::vector<double> out(s.rows * s.n);
  for (std::int64_t r = 0; r < s.rows; ++r) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      out[r * s.n + j] = double(in.x[r * s.n + j]) + double(in.bias[j]);
    }
  }
  return out;
}

std::vector<float> run(Device& device, DType dt, Size s, const Inputs& in) {
  Buffer x = test::upload(device, in.x, dt, {s.rows, s.n});
  Buffer bias = test::upload(device, in.bias, dt);
  Buffer out = test::poisoned(device, dt, {s.rows, s.n});
  CommandEncoder enc = device.command_encoder();
  ops::bias_add(enc, x, bias, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(DType dt, Size s) {
  return std::string(dtype_name(dt)) + " rows=" + std::to_string(s.rows) +
         " n=" + std::to_string(s.n);
}

class BiasAddTest : public BackendTest {};

TEST_P(BiasAddTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Size s : kSizes) {
      SCOPED_TRACE(describe(dt, s));
      const Inputs in = make_inputs(rng, dt, s);
      // One rounding of an exact sum: half an ulp of the dtype at most.
      EXPECT_LE(test::rel_l2(run(device(), dt, s, in), reference(in, s)),
                test::dtype_tolerance(dt, 1e-7));
    }
  }
}

TEST_P(BiasAddTest, LeadingDimsAreRows) {
  auto rng = test::seeded_rng();
  const Size s{6, 40};
  const Inputs in = make_inputs(rng, DType::F32, s);
  Buffer x = test::upload(device(), in.x, DType::F32, {2, 3, s.n});
  Buffer bias = test::upload(device(), in.bias, DType::F32);
  Buffer out = test::poisoned(device(), DType::F32, {2, 3, s.n});
  CommandEncoder enc = device().command_encoder();
  ops::bias_add(enc, x, bias, out);
  enc.commit_and_wait();
  EXPECT_LE(test::rel_l2(test::download(out), reference(in, s)), 1e-7);
}

TEST_P(BiasAddTest, InPlaceOnX) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Size s : {Size{9, 64}, Size{5, 33}}) {
      SCOPED_TRACE(describe(dt, s));
      const Inputs in = make_inputs(rng, dt, s);
      Buffer x = test::upload(device(), in.x, dt, {s.rows, s.n});
      Buffer bias = test::upload(device(), in.bias, dt);
      CommandEncoder enc = device().command_encoder();
      ops::bias_add(enc, x, bias, x);
      enc.barrier();
      ops::bias_add(enc, x, bias, x);  // twice: the second run reads the first one's result
      enc.commit_and_wait();
      std::vector<double> ref = reference(in, s);
      for (std::int64_t r = 0; r < s.rows; ++r) {
        for (std::int64_t j = 0; j < s.n; ++j) {
          // The first sum was stored in the dtype before the second add.
          ref[r * s.n + j] = double(test::round_to(dt, float(ref[r * s.n + j]))) + in.bias[j];
        }
      }
      EXPECT_LE(test::rel_l2(test::download(x), ref), test::dtype_tolerance(dt, 1e-7));
    }
  }
}

TEST_P(BiasAddTest, UnalignedViewsUseTheScalarPath) {
  // Views one element into their storage: no operand is 16-byte aligned though n is a multiple
  // of every pack width.
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    const Size s{5, 64};
    SCOPED_TRACE(describe(dt, s));
    const Inputs in = make_inputs(rng, dt, s);
    const std::size_t es = dtype_size(dt);
    auto shifted = [&](const std::vector<float>& v, Shape shape) {
      std::vector<float> padded(v.size() + 1, 1.0f);
      std::copy(v.begin(), v.end(), padded.begin() + 1);
      Buffer b = test::upload(device(), padded, dt);
      return b.view(es, v.size() * es, dt, std::move(shape));
    };
    Buffer x = shifted(in.x, {s.rows, s.n});
    Buffer bias = shifted(in.bias, {s.n});
    Buffer out_storage = test::poisoned(device(), dt, {s.rows * s.n + 1});
    Buffer out = out_storage.view(es, s.rows * s.n * es, dt, {s.rows, s.n});
    CommandEncoder enc = device().command_encoder();
    ops::bias_add(enc, x, bias, out);
    enc.commit_and_wait();
    EXPECT_LE(test::rel_l2(test::download(out), reference(in, s)), test::dtype_tolerance(dt, 1e-7));
  }
}

TEST_P(BiasAddTest, RejectsBadArguments) {
  Buffer x = device().alloc(DType::F32, {3, 8});
  Buffer bias = device().alloc(DType::F32, {8});
  Buffer out = device().alloc(DType::F32, {3, 8});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::bias_add(enc, x, device().alloc(DType::F32, {7}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::bias_add(enc, x, device().alloc(DType::F16, {8}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::bias_add(enc, x, bias, device().alloc(DType::F32, {4, 8})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::bias_add(enc, x, bias, device().alloc(DType::F32, {8, 3})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::bias_add(enc, x, bias, device().alloc(DType::BF16, {3, 8})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::bias_add(enc, device().alloc(DType::I32, {3, 8}), bias, out),
                    ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(BiasAddTest);

// CUDA vs CPU at projection-bias shapes (Qwen2 q/k/v biases over decode and prefill rows).
class BiasAddCudaTest : public test::CudaVsCpuTest {};

TEST_F(BiasAddCudaTest, MatchesCpuBitForBit) {
  auto rng = test::seeded_rng();
  constexpr Size kLarge[] = {{1, 3584}, {1, 512}, {333, 3584}, {128, 4099}, {1000, 18944}};
  for (DType dt : kFloatTypes) {
    for (Size s : kLarge) {
      SCOPED_TRACE(describe(dt, s));
      const Inputs in = make_inputs(rng, dt, s);
      const auto want = run(cpu_, dt, s, in);
      const auto got = run(*cuda_, dt, s, in);
      ASSERT_EQ(got.size(), want.size());
      std::size_t mismatches = 0;
      for (std::size_t i = 0; i < got.size(); ++i) mismatches += got[i] == want[i] ? 0 : 1;
      EXPECT_EQ(mismatches, 0u) << "of " << got.size();
    }
  }
}

}  // namespace
}  // namespace mlxn
