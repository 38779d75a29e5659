// Elementwise ops (add, mul, cast) for f32/f16/bf16: each backend vs a float64 reference, CUDA vs
// CPU, over odd and large sizes, with outputs poisoned before every run.
#include "mlxn/ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr std::int64_t kSizes[] = {1, 3, 31, 33, 1000, 4097, (1 << 20) + 7};

enum class Binary { Add, Mul };

const char* binary_name(Binary op) {
  return op == Binary::Add ? "add" : "mul";
}

void run_binary(Binary op, CommandEncoder& enc, const Buffer& a, const Buffer& b,
                const Buffer& out) {
  if (op == Binary::Add)
    ops::add(enc, a, b, out);
  else
    ops::mul(enc, a, b, out);
}

// Runs `op` on `device` over host inputs (already representable in `dtype`); returns the output.
std::vector<float> binary_on(Device& device, Binary op, DType dtype, const std::vector<float>& a,
                             const std::vector<float>& b) {
  Buffer ab = test::upload(device, a, dtype), bb = test::upload(device, b, dtype);
  Buffer out = test::poisoned(device, dtype, {static_cast<std::int64_t>(a.size())});
  CommandEncoder enc = device.command_encoder();
  run_binary(op, enc, ab, bb, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::vector<float> cast_on(Device& device, DType src, DType dst, const std::vector<float>& in) {
  Buffer ib = test::upload(device, in, src);
  Buffer out = test::poisoned(device, dst, {static_cast<std::int64_t>(in.size())});
  CommandEncoder enc = device.command_encoder();
  ops::cast(enc, ib, out);
  enc.commit_and_wait();
  return test::download(out);
}

class ElementwiseTest : public BackendTest {
 protected:
  void check_binary(Binary op) {
    auto rng = test::seeded_rng();
    for (DType dt : kFloatTypes) {
      for (std::int64_t n : kSizes) {
        SCOPED_TRACE(std::string(binary_name(op)) + " " + std::string(dtype_name(dt)) +
                     " n=" + std::to_string(n));
        const auto a = test::round_to(dt, test::random_floats(rng, n));
        const auto b = test::round_to(dt, test::random_floats(rng, n));
        std::vector<double> ref(n);
        for (std::int64_t i = 0; i < n; ++i) {
          ref[i] = op == Binary::Add ? double(a[i]) + b[i] : double(a[i]) * b[i];
        }
        const auto out = binary_on(device(), op, dt, a, b);
        EXPECT_LE(test::rel_l2(out, ref), test::dtype_tolerance(dt, 1e-6));
      }
    }
  }
};

TEST_P(ElementwiseTest, AddMatchesFloat64Reference) {
  check_binary(Binary::Add);
}

TEST_P(ElementwiseTest, MulMatchesFloat64Reference) {
  check_binary(Binary::Mul);
}

TEST_P(ElementwiseTest, CastAllPairsRoundToNearestEven) {
  auto rng = test::seeded_rng();
  for (DType src : kFloatTypes) {
    for (DType dst : kFloatTypes) {
      for (std::int64_t n : kSizes) {
        SCOPED_TRACE(std::string(dtype_name(src)) + "->" + std::string(dtype_name(dst)) +
                     " n=" + std::to_string(n));
        auto in = test::round_to(src, test::random_floats(rng, n, -70000.0f, 70000.0f));
        // Small magnitudes too, down to f16 subnormals.
        for (std::int64_t i = 0; i < n; i += 2) in[i] = test::round_to(src, in[i] * 1e-9f);
        const auto out = cast_on(device(), src, dst, in);
        const std::vector<double> ref(in.begin(), in.end());
        std::vector<double> finite_ref;
        std::vector<float> finite_out;
        for (std::int64_t i = 0; i < n; ++i) {
          const float expected = test::round_to(dst, in[i]);  // host RNE conversion
          ASSERT_EQ(out[i], expected)
              << "element " << i << ": " << in[i] << " -> " << out[i] << ", expected " << expected;
          // The relative bound holds where dst is normal; subnormals are covered by the exact
          // check above.
          if (std::isfinite(expected) && std::fabs(in[i]) >= 1e-3f) {
            finite_out.push_back(out[i]);
            finite_ref.push_back(ref[i]);
          }
        }
        // Widening to f32 and identity casts are exact.
        const double tol = src == dst || dst == DType::F32 ? 0.0 : test::dtype_tolerance(dst, 0.0);
        EXPECT_LE(test::rel_l2(finite_out, finite_ref), tol);
      }
    }
  }
}

TEST_P(ElementwiseTest, OutputMayAliasAnInput) {
  auto rng = test::seeded_rng();
  const auto av = test::random_floats(rng, 4097), bv = test::random_floats(rng, 4097);
  Buffer a = test::upload(device(), av, DType::F32), b = test::upload(device(), bv, DType::F32);
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, a, b, a);
  enc.barrier();
  ops::mul(enc, a, b, b);
  enc.commit_and_wait();
  const auto a2 = a.to_vector<float>(), b2 = b.to_vector<float>();
  for (int i = 0; i < 4097; ++i) {
    ASSERT_EQ(a2[i], av[i] + bv[i]) << i;
    ASSERT_EQ(b2[i], (av[i] + bv[i]) * bv[i]) << i;
  }
}

TEST_P(ElementwiseTest, NonFiniteInputsPropagate) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType dt : kFloatTypes) {
    const auto out =
        binary_on(device(), Binary::Add, dt, {1.0f, inf, nan, -inf}, {2.0f, 1.0f, 1.0f, inf});
    EXPECT_EQ(out[0], 3.0f) << dtype_name(dt);
    EXPECT_EQ(out[1], inf) << dtype_name(dt);
    EXPECT_TRUE(std::isnan(out[2])) << dtype_name(dt);
    EXPECT_TRUE(std::isnan(out[3])) << dtype_name(dt) << ": -inf + inf";
  }
}

TEST(CompareHelpersTest, NonFiniteOutputsNeverPass) {
  const std::vector<double> ref{1.0, 2.0, 3.0};
  EXPECT_EQ(test::rel_l2({1.0f, 2.0f, 3.0f}, ref), 0.0);
  EXPECT_FALSE(test::rel_l2({1.0f, std::nanf(""), 3.0f}, ref) <= 1.0);
  EXPECT_FALSE(test::rel_l2({1.0f, 2.0f, std::numeric_limits<float>::infinity()}, ref) <= 1.0);
  EXPECT_FALSE(test::rel_l2({1.0f, 2.0f}, ref) <= 1.0) << "size mismatch";
  Device cpu = Device::open(Backend::Cpu);
  for (DType dt : kFloatTypes) {
    Buffer b = test::poisoned(cpu, dt, {5});
    EXPECT_EQ(test::count_non_finite(test::download(b)), 5u) << dtype_name(dt);
  }
}

MLXN_INSTANTIATE_BACKENDS(ElementwiseTest);

// CUDA kernels vs the CPU kernels on the same inputs.
class ElementwiseCudaTest : public test::CudaVsCpuTest {};

TEST_F(ElementwiseCudaTest, AddAndMulMatchCpu) {
  auto rng = test::seeded_rng();
  for (Binary op : {Binary::Add, Binary::Mul}) {
    for (DType dt : kFloatTypes) {
      for (std::int64_t n : kSizes) {
        SCOPED_TRACE(std::string(binary_name(op)) + " " + std::string(dtype_name(dt)) +
                     " n=" + std::to_string(n));
        const auto a = test::round_to(dt, test::random_floats(rng, n));
        const auto b = test::round_to(dt, test::random_floats(rng, n));
        const auto want = binary_on(cpu_, op, dt, a, b);
        const auto got = binary_on(*cuda_, op, dt, a, b);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  test::dtype_tolerance(dt, 1e-6));
      }
    }
  }
}

TEST_F(ElementwiseCudaTest, CastMatchesCpu) {
  auto rng = test::seeded_rng();
  for (DType src : kFloatTypes) {
    for (DType dst : kFloatTypes) {
      for (std::int64_t n : kSizes) {
        SCOPED_TRACE(std::string(dtype_name(src)) + "->" + std::string(dtype_name(dst)) +
                     " n=" + std::to_string(n));
        const auto in = test::round_to(src, test::random_floats(rng, n, -300.0f, 300.0f));
        const auto want = cast_on(cpu_, src, dst, in);
        const auto got = cast_on(*cuda_, src, dst, in);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  test::dtype_tolerance(dst, 1e-6));
        EXPECT_EQ(got, want) << "both backends round to nearest even";
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
