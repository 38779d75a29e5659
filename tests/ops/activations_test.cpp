// Activation ops (scalar_mul, silu, gelu tanh/erf, softcap, silu_mul, gelu_mul, sigmoid_mul) for
// f32/f16/bf16: each backend vs a float64 reference, CUDA vs CPU, odd sizes, unaligned views,
// in-place use, outputs poisoned before every run.
#include "mlxn/ops/activations.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr std::int64_t kSizes[] = {1, 3, 31, 33, 1000, 4097, 65543};
constexpr float kScalar = 0.37f;
constexpr float kCap = 3.0f;

enum class Act {
  ScalarMul,
  Silu,
  GeluTanh,
  GeluErf,
  Softcap,
  SiluMul,
  GeluTanhMul,
  GeluErfMul,
  SigmoidMul
};
constexpr Act kActs[] = {Act::ScalarMul,   Act::Silu,       Act::GeluTanh,
                         Act::GeluErf,     Act::Softcap,    Act::SiluMul,
                         Act::GeluTanhMul, Act::GeluErfMul, Act::SigmoidMul};

const char* act_name(Act a) {
  switch (a) {
    case Act::ScalarMul:
      return "scalar_mul";
    case Act::Silu:
      return "silu";
    case Act::GeluTanh:
      return "gelu_tanh";
    case Act::GeluErf:
      return "gelu_erf";
    case Act::Softcap:
      return "softcap";
    case Act::SiluMul:
      return "silu_mul";
    case Act::GeluTanhMul:
      return "gelu_tanh_mul";
    case Act::GeluErfMul:
      return "gelu_erf_mul";
    case Act::SigmoidMul:
      return "sigmoid_mul";
  }
  return "?";
}

bool is_gated(Act a) {
  return a == Act::SiluMul || a == Act::GeluTanhMul || a == Act::GeluErfMul || a == Act::SigmoidMul;
}

// The float64 definitions the kernels must match.
double sigmoid_ref(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double gelu_tanh_ref(double x) {
  return 0.5 * x *
         (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}
double gelu_erf_ref(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

double act_ref(Act a, double x, double up) {
  switch (a) {
    case Act::ScalarMul:
      return x * double(kScalar);
    case Act::Silu:
      return x * sigmoid_ref(x);
    case Act::GeluTanh:
      return gelu_tanh_ref(x);
    case Act::GeluErf:
      return gelu_erf_ref(x);
    case Act::Softcap:
      return double(kCap) * std::tanh(x / double(kCap));
    case Act::SiluMul:
      return x * sigmoid_ref(x) * up;
    case Act::GeluTanhMul:
      return gelu_tanh_ref(x) * up;
    case Act::GeluErfMul:
      return gelu_erf_ref(x) * up;
    case Act::SigmoidMul:
      return sigmoid_ref(x) * up;
  }
  return 0.0;
}

void run_act(Act a, CommandEncoder& enc, const Buffer& x, const Buffer& up, const Buffer& out) {
  switch (a) {
    case Act::ScalarMul:
      return ops::scalar_mul(enc, x, kScalar, out);
    case Act::Silu:
      return ops::silu(enc, x, out);
    case Act::GeluTanh:
      return ops::gelu(enc, x, out, ops::GeluApprox::Tanh);
    case Act::GeluErf:
      return ops::gelu(enc, x, out, ops::GeluApprox::Erf);
    case Act::Softcap:
      return ops::softcap(enc, x, kCap, out);
    case Act::SiluMul:
      return ops::silu_mul(enc, x, up, out);
    case Act::GeluTanhMul:
      return ops::gelu_mul(enc, x, up, out, ops::GeluApprox::Tanh);
    case Act::GeluErfMul:
      return ops::gelu_mul(enc, x, up, out, ops::GeluApprox::Erf);
    case Act::SigmoidMul:
      return ops::sigmoid_mul(enc, x, up, out);
  }
}

struct ActInputs {
  std::vector<float> x, up;
};

// x spans the saturating tails (|x| up to 6, softcap inputs up to 12); values exact in `dt`.
ActInputs make_inputs(std::mt19937& rng, Act a, DType dt, std::int64_t n) {
  const float range = a == Act::Softcap ? 12.0f : 6.0f;
  return {test::round_to(dt, test::random_floats(rng, n, -range, range)),
          test::round_to(dt, test::random_floats(rng, n, -2.0f, 2.0f))};
}

// The float64 result rounded once to the output dtype: the best answer a kernel can give. (Tiny
// outputs such as gelu(-4.5) ~ -1.5e-5 are f16 subnormals whose rounding alone is 2e-3 relative,
// which would dominate a one-element comparison against the unrounded value.)
std::vector<double> reference(Act a, const ActInputs& in, DType dt) {
  std::vector<double> ref(in.x.size());
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double r = act_ref(a, in.x[i], in.up[i]);
    ref[i] = dt == DType::F32 ? r : double(test::round_to(dt, static_cast<float>(r)));
  }
  return ref;
}

// A buffer whose data starts `offset` elements into its storage (offset 1 defeats 16-byte
// alignment, exercising the kernels' scalar path).
Buffer upload_at(Device& device, const std::vector<float>& v, DType dt, std::int64_t offset) {
  Buffer whole = device.alloc(dt, {static_cast<std::int64_t>(v.size()) + offset});
  Buffer view = whole.slice(offset, static_cast<std::int64_t>(v.size()));
  test::upload_to(view, v);
  return view;
}

Buffer poisoned_at(Device& device, DType dt, std::int64_t n, std::int64_t offset) {
  Buffer whole = device.alloc(dt, {n + offset});
  Buffer view = whole.slice(offset, n);
  test::poison(view);
  return view;
}

std::vector<float> act_on(Device& device, Act a, DType dt, const ActInputs& in,
                          std::int64_t offset = 0) {
  const auto n = static_cast<std::int64_t>(in.x.size());
  Buffer x = upload_at(device, in.x, dt, offset);
  Buffer up = upload_at(device, in.up, dt, offset);
  Buffer out = poisoned_at(device, dt, n, offset);
  CommandEncoder enc = device.command_encoder();
  run_act(a, enc, x, up, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(Act a, DType dt, std::int64_t n, std::int64_t offset = 0) {
  return std::string(act_name(a)) + " " + std::string(dtype_name(dt)) + " n=" + std::to_string(n) +
         (offset ? " offset=" + std::to_string(offset) : "");
}

// f32 outputs are one rounding (CPU) or a few ulps (CUDA libdevice) from the reference. The erf
// gelus are the exception: erfc(z) at z = -x / sqrt(2) turns the f32 rounding of z (up to 6e-8
// relative) into 2 z^2 times as much relative error in the result, ~2e-6 at x = -6, the inputs'
// edge (seen on the H200: gelu_erf_mul f32, one element, 1.15e-6).
double tolerance(DType dt, Act a) {
  const bool erf = a == Act::GeluErf || a == Act::GeluErfMul;
  return test::dtype_tolerance(dt, erf ? 4e-6 : 1e-6);
}

class ActivationsTest : public BackendTest {};

TEST_P(ActivationsTest, EveryActivationMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (Act a : kActs) {
    for (DType dt : kFloatTypes) {
      for (std::int64_t n : kSizes) {
        SCOPED_TRACE(describe(a, dt, n));
        const ActInputs in = make_inputs(rng, a, dt, n);
        EXPECT_LE(test::rel_l2(act_on(device(), a, dt, in), reference(a, in, dt)),
                  tolerance(dt, a));
      }
    }
  }
}

TEST_P(ActivationsTest, UnalignedViewsTakeTheScalarPath) {
  auto rng = test::seeded_rng();
  for (Act a : kActs) {
    for (DType dt : kFloatTypes) {
      for (std::int64_t offset : {1, 3}) {
        SCOPED_TRACE(describe(a, dt, 1027, offset));
        const ActInputs in = make_inputs(rng, a, dt, 1027);
        EXPECT_LE(test::rel_l2(act_on(device(), a, dt, in, offset), reference(a, in, dt)),
                  tolerance(dt, a));
      }
    }
  }
}

TEST_P(ActivationsTest, OutMayAliasAnInput) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 4099;
  for (Act a : kActs) {
    SCOPED_TRACE(act_name(a));
    const ActInputs in = make_inputs(rng, a, DType::BF16, n);
    Buffer x = test::upload(device(), in.x, DType::BF16);
    Buffer up = test::upload(device(), in.up, DType::BF16);
    // Unary: in place on x. Gated: the result lands in up (x = sigmoid(gate) * x style).
    const Buffer& out = is_gated(a) ? up : x;
    CommandEncoder enc = device().command_encoder();
    run_act(a, enc, x, up, out);
    enc.commit_and_wait();
    EXPECT_LE(test::rel_l2(test::download(out), reference(a, in, DType::BF16)),
              tolerance(DType::BF16, a));
  }
}

TEST_P(ActivationsTest, SaturatedInputsStayFinite) {
  // exp(-x) overflows for x < -88: silu and sigmoid must give 0 there, not NaN.
  const std::vector<float> x = {-1000.0f, -100.0f, -89.0f, 89.0f, 100.0f, 1000.0f};
  const std::vector<float> up(x.size(), 1.0f);
  for (Act a : kActs) {
    SCOPED_TRACE(act_name(a));
    const ActInputs in{x, up};
    const auto out = act_on(device(), a, DType::F32, in);
    EXPECT_EQ(test::count_non_finite(out), 0u);
    EXPECT_LE(test::rel_l2(out, reference(a, in, DType::F32)), 1e-6);
  }
}

TEST_P(ActivationsTest, BadArgumentsThrowBeforeQueuing) {
  Buffer f32 = device().alloc(DType::F32, {8});
  Buffer f16 = device().alloc(DType::F16, {8});
  Buffer short_f32 = device().alloc(DType::F32, {7});
  Buffer i32 = device().alloc(DType::I32, {8});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::silu(enc, f32, f16), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::silu(enc, f32, short_f32), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::gelu(enc, i32, i32), ErrorKind::UnsupportedDType);
  MLXN_EXPECT_ERROR(ops::silu_mul(enc, f32, short_f32, f32), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::sigmoid_mul(enc, f32, f16, f32), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::softcap(enc, f32, 0.0f, f32), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::softcap(enc, f32, -1.0f, f32), ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(ActivationsTest);

// CUDA kernels vs the CPU kernels on the same inputs, at sizes too large for the CPU suite.
class ActivationsCudaTest : public test::CudaVsCpuTest {};

TEST_F(ActivationsCudaTest, LargeSizesMatchCpu) {
  auto rng = test::seeded_rng();
  for (Act a : kActs) {
    for (DType dt : kFloatTypes) {
      for (std::int64_t n : {std::int64_t{14336}, std::int64_t{(1 << 22) + 5}}) {
        SCOPED_TRACE(describe(a, dt, n));
        const ActInputs in = make_inputs(rng, a, dt, n);
        const auto want = act_on(cpu_, a, dt, in);
        const auto got = act_on(*cuda_, a, dt, in);
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                  tolerance(dt, a));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
