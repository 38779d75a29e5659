// RoPE: frequency tables of every rope type against their closed forms, and the rope kernel
// (interleaved / NeoX, partial rotary, attention scale, in place) for f32/f16/bf16 vs a float64
// reference, CUDA vs CPU, outputs poisoned before every run.
#include "mlxn/ops/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using ops::RopeConfig;
using ops::RopeLayout;
using ops::RopeScaling;
using test::BackendTest;

// ---------------------------------------------------------------------------------------------
// Frequency tables.

double base_freq(double theta, std::int64_t dim, std::int64_t i) {
  return std::pow(theta, -2.0 * double(i) / double(dim));
}

void expect_near_rel(float got, double want, double tol, const std::string& what) {
  EXPECT_LE(std::abs(double(got) - want), tol * std::abs(want))
      << what << ": " << got << " vs " << want;
}

TEST(RopeInvFreq, DefaultAndLinear) {
  RopeConfig c;
  c.theta = 10000.0;
  c.rotary_dim = 128;
  const ops::RopeTable t = ops::rope_inv_freq(c, 1);
  ASSERT_EQ(t.inv_freq.size(), 64u);
  EXPECT_EQ(t.attention_scale, 1.0f);
  for (std::int64_t i = 0; i < 64; ++i) {
    expect_near_rel(t.inv_freq[i], base_freq(1e4, 128, i), 1e-7, "default " + std::to_string(i));
  }
  c.scaling = RopeScaling::Linear;
  c.factor = 4.0;
  const ops::RopeTable lin = ops::rope_inv_freq(c, 1);
  for (std::int64_t i = 0; i < 64; ++i) {
    expect_near_rel(lin.inv_freq[i], base_freq(1e4, 128, i) / 4.0, 1e-7,
                    "linear " + std::to_string(i));
  }
}

TEST(RopeInvFreq, Llama3BandsOfLlama31) {
  // Llama 3.1: theta 500000, factor 8, low 1, high 4, original context 8192, head_dim 128.
  RopeConfig c;
  c.scaling = RopeScaling::Llama3;
  c.theta = 500000.0;
  c.rotary_dim = 128;
  c.factor = 8.0;
  c.low_freq_factor = 1.0;
  c.high_freq_factor = 4.0;
  c.original_max_position_embeddings = 8192;
  const ops::RopeTable t = ops::rope_inv_freq(c, 1);
  int high = 0, low = 0, medium = 0;
  for (std::int64_t i = 0; i < 64; ++i) {
    const double f = base_freq(5e5, 128, i);
    const double wavelen = 2.0 * std::numbers::pi / f;
    double want;
    if (wavelen < 8192.0 / 4.0) {
      want = f, ++high;  // short wavelengths keep their frequency
    } else if (wavelen > 8192.0) {
      want = f / 8.0, ++low;  // long ones are interpolated by the factor
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / 3.0;
      want = (1.0 - smooth) * f / 8.0 + smooth * f, ++medium;
    }
    expect_near_rel(t.inv_freq[i], want, 1e-6, "llama3 " + std::to_string(i));
  }
  EXPECT_GT(high, 0);
  EXPECT_GT(low, 0);
  EXPECT_GT(medium, 0);
  EXPECT_EQ(t.inv_freq[0], 1.0f);
  EXPECT_EQ(t.attention_scale, 1.0f);
  c.original_max_position_embeddings = 0;
  MLXN_EXPECT_ERROR(ops::rope_inv_freq(c, 1), ErrorKind::InvalidArgument);
}

TEST(RopeInvFreq, YarnRampAndAttentionFactor) {
  RopeConfig c;
  c.scaling = RopeScaling::Yarn;
  c.theta = 10000.0;
  c.rotary_dim = 128;
  c.factor = 4.0;
  c.original_max_position_embeddings = 4096;
  // Correction range: floor/ceil of dim * ln(orig / (beta * 2 pi)) / (2 ln theta) for beta 32, 1.
  const auto corr = [](double beta) {
    return 128.0 * std::log(4096.0 / (beta * 2.0 * std::numbers::pi)) / (2.0 * std::log(1e4));
  };
  const double low = std::floor(corr(32.0)), high = std::ceil(corr(1.0));
  ASSERT_EQ(low, 20.0);
  ASSERT_EQ(high, 46.0);
  const ops::RopeTable t = ops::rope_inv_freq(c, 1);
  for (std::int64_t i = 0; i < 64; ++i) {
    const double f = base_freq(1e4, 128, i);
    const double ramp = std::min(1.0, std::max(0.0, (double(i) - low) / (high - low)));
    // ramp 0: extrapolate (keep f); ramp 1: interpolate (f / factor).
    expect_near_rel(t.inv_freq[i], f * (1.0 - ramp) + f / 4.0 * ramp, 1e-6,
                    "yarn " + std::to_string(i));
  }
  expect_near_rel(t.attention_scale, 0.1 * std::log(4.0) + 1.0, 1e-7, "yarn mscale");

  c.mscale = 0.707;
  c.mscale_all_dim = 1.0;
  expect_near_rel(ops::rope_inv_freq(c, 1).attention_scale,
                  (0.1 * 0.707 * std::log(4.0) + 1.0) / (0.1 * std::log(4.0) + 1.0), 1e-7,
                  "yarn mscale ratio");
  c.attention_factor = 0.5;
  EXPECT_EQ(ops::rope_inv_freq(c, 1).attention_scale, 0.5f);
  // Without truncation the bounds are the raw correction dims.
  c.truncate = false;
  const ops::RopeTable u = ops::rope_inv_freq(c, 1);
  const double ramp30 = (30.0 - corr(32.0)) / (corr(1.0) - corr(32.0));
  const double f30 = base_freq(1e4, 128, 30);
  expect_near_rel(u.inv_freq[30], f30 * (1.0 - ramp30) + f30 / 4.0 * ramp30, 1e-6, "untruncated");
}

TEST(RopeInvFreq, LongRopeSwitchesFactorsPastTheOriginalContext) {
  // Phi-3-mini-128k: head_dim 96, original 4096, max 131072.
  std::mt19937 rng(7);
  RopeConfig c;
  c.scaling = RopeScaling::LongRope;
  c.theta = 10000.0;
  c.rotary_dim = 96;
  c.max_position_embeddings = 131072;
  c.original_max_position_embeddings = 4096;
  std::uniform_real_distribution<double> dist(1.0, 4.0);
  for (int i = 0; i < 48; ++i) {
    c.short_factor.push_back(dist(rng));
    c.long_factor.push_back(dist(rng) * 4.0);
  }
  const double attention = std::sqrt(1.0 + std::log(32.0) / std::log(4096.0));
  for (std::int64_t seq_len : {1, 4096, 4097, 100000}) {
    const ops::RopeTable t = ops::rope_inv_freq(c, seq_len);
    const auto& ext = seq_len > 4096 ? c.long_factor : c.short_factor;
    for (std::int64_t i = 0; i < 48; ++i) {
      expect_near_rel(t.inv_freq[i], base_freq(1e4, 96, i) / ext[i], 1e-6,
                      "longrope len " + std::to_string(seq_len) + " i " + std::to_string(i));
    }
    expect_near_rel(t.attention_scale, attention, 1e-7, "longrope attention");
  }
  c.long_factor.pop_back();
  MLXN_EXPECT_ERROR(ops::rope_inv_freq(c, 1), ErrorKind::InvalidArgument);
}

TEST(RopeInvFreq, DynamicNtkGrowsTheBaseOnlyPastMaxPositions) {
  RopeConfig c;
  c.scaling = RopeScaling::DynamicNtk;
  c.theta = 10000.0;
  c.rotary_dim = 128;
  c.factor = 2.0;
  c.max_position_embeddings = 2048;
  for (std::int64_t seq_len : {1, 2048}) {
    const ops::RopeTable t = ops::rope_inv_freq(c, seq_len);
    for (std::int64_t i = 0; i < 64; ++i) {
      expect_near_rel(t.inv_freq[i], base_freq(1e4, 128, i), 1e-7, "dynamic short");
    }
  }
  // seq_len 4096: base = theta * (factor * 4096 / 2048 - (factor - 1))^(dim / (dim - 2)).
  const double base = 1e4 * std::pow(3.0, 128.0 / 126.0);
  const ops::RopeTable t = ops::rope_inv_freq(c, 4096);
  for (std::int64_t i = 0; i < 64; ++i) {
    expect_near_rel(t.inv_freq[i], base_freq(base, 128, i), 1e-6, "dynamic long");
  }
}

TEST(RopeInvFreq, BadConfigsThrow) {
  RopeConfig c;
  c.rotary_dim = 7;
  MLXN_EXPECT_ERROR(ops::rope_inv_freq(c, 1), ErrorKind::InvalidArgument);
  c.rotary_dim = 0;
  MLXN_EXPECT_ERROR(ops::rope_inv_freq(c, 1), ErrorKind::InvalidArgument);
  c.rotary_dim = 64;
  c.scaling = RopeScaling::DynamicNtk;  // no max_position_embeddings
  MLXN_EXPECT_ERROR(ops::rope_inv_freq(c, 1), ErrorKind::InvalidArgument);
  c.scaling = RopeScaling::Yarn;
  MLXN_EXPECT_ERROR(ops::rope_inv_freq(c, 1), ErrorKind::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// The kernel.

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
struct RopeShape {
  std::int64_t n_tokens, n_heads, head_dim, rotary_dim;
};
constexpr RopeShape kShapes[] = {{1, 1, 2, 2},   {5, 3, 64, 64},   {7, 4, 128, 128}, {3, 2, 80, 32},
                                 {4, 3, 96, 48}, {2, 8, 256, 128}, {33, 1, 128, 128}};

struct RopeCase {
  std::vector<float> x;
  std::vector<std::int32_t> pos;
  std::vector<float> inv_freq;
  float scale;
};

// Positions within a long context plus the far end of a 128k one, where an f32 angle alone
// would be off by up to 4e-3 rad.
RopeCase make_case(std::mt19937& rng, DType dt, RopeShape s, float scale) {
  RopeCase c;
  c.x = test::round_to(dt, test::random_floats(rng, s.n_tokens * s.n_heads * s.head_dim));
  std::uniform_int_distribution<std::int32_t> pos(0, 8191);
  for (std::int64_t t = 0; t < s.n_tokens; ++t) c.pos.push_back(pos(rng));
  c.pos[0] = 0;
  if (s.n_tokens > 2) c.pos[1] = 131071;
  RopeConfig cfg;
  cfg.theta = 10000.0;
  cfg.rotary_dim = s.rotary_dim;
  c.inv_freq = ops::rope_inv_freq(cfg, 1).inv_freq;
  c.scale = scale;
  return c;
}

std::vector<double> rope_ref(const RopeCase& c, RopeShape s, RopeLayout layout) {
  std::vector<double> out(c.x.begin(), c.x.end());
  const std::int64_t half = s.rotary_dim / 2;
  for (std::int64_t t = 0; t < s.n_tokens; ++t) {
    for (std::int64_t h = 0; h < s.n_heads; ++h) {
      const std::int64_t base = (t * s.n_heads + h) * s.head_dim;
      for (std::int64_t i = 0; i < half; ++i) {
        const double a = double(c.pos[t]) * double(c.inv_freq[i]);
        const std::int64_t u = layout == RopeLayout::Neox ? i : 2 * i;
        const std::int64_t v = layout == RopeLayout::Neox ? i + half : 2 * i + 1;
        const double xu = c.x[base + u], xv = c.x[base + v];
        out[base + u] = (xu * std::cos(a) - xv * std::sin(a)) * c.scale;
        out[base + v] = (xv * std::cos(a) + xu * std::sin(a)) * c.scale;
      }
    }
  }
  return out;
}

std::vector<float> rope_on(Device& device, DType dt, RopeShape s, const RopeCase& c,
                           RopeLayout layout, bool in_place) {
  const Shape shape{s.n_tokens, s.n_heads, s.head_dim};
  Buffer x = test::upload(device, c.x, dt, shape);
  Buffer pos = device.alloc(DType::I32, {s.n_tokens});
  pos.write(c.pos);
  Buffer freq = test::upload(device, c.inv_freq, DType::F32);
  Buffer out = in_place ? x : test::poisoned(device, dt, shape);
  CommandEncoder enc = device.command_encoder();
  ops::rope(enc, x, pos, freq, out, layout, c.scale);
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(DType dt, RopeShape s, RopeLayout layout, bool in_place) {
  return std::string(dtype_name(dt)) + " " + std::to_string(s.n_tokens) + "x" +
         std::to_string(s.n_heads) + "x" + std::to_string(s.head_dim) + " rot " +
         std::to_string(s.rotary_dim) + (layout == RopeLayout::Neox ? " neox" : " interleaved") +
         (in_place ? " in place" : "");
}

class RopeTest : public BackendTest {};

TEST_P(RopeTest, BothLayoutsMatchFloat64Reference) {
  auto rng = test::seeded_rng();
  int k = 0;
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Neox}) {
    for (DType dt : kFloatTypes) {
      for (RopeShape s : kShapes) {
        for (bool in_place : {false, true}) {
          SCOPED_TRACE(describe(dt, s, layout, in_place));
          const RopeCase c = make_case(rng, dt, s, ++k % 2 ? 1.0f : 0.8f);
          const auto out = rope_on(device(), dt, s, c, layout, in_place);
          EXPECT_LE(test::rel_l2(out, rope_ref(c, s, layout)), test::dtype_tolerance(dt, 1e-5));
        }
      }
    }
  }
}

TEST_P(RopeTest, PassThroughDimsAreCopiedExactly) {
  auto rng = test::seeded_rng();
  const RopeShape s{3, 2, 80, 32};
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Neox}) {
    const RopeCase c = make_case(rng, DType::BF16, s, 0.8f);
    const auto out = rope_on(device(), DType::BF16, s, c, layout, false);
    for (std::int64_t row = 0; row < s.n_tokens * s.n_heads; ++row) {
      for (std::int64_t d = s.rotary_dim; d < s.head_dim; ++d) {
        ASSERT_EQ(out[row * s.head_dim + d], c.x[row * s.head_dim + d]) << row << " " << d;
      }
    }
  }
}

TEST_P(RopeTest, PositionZeroIsTheIdentity) {
  auto rng = test::seeded_rng();
  const RopeShape s{1, 4, 128, 128};
  RopeCase c = make_case(rng, DType::F32, s, 1.0f);
  const auto out = rope_on(device(), DType::F32, s, c, RopeLayout::Neox, false);
  EXPECT_EQ(out, c.x);
}

TEST_P(RopeTest, BadArgumentsThrowBeforeQueuing) {
  Device& d = device();
  Buffer x = d.alloc(DType::F32, {2, 3, 8});
  Buffer out = d.alloc(DType::F32, {2, 3, 8});
  Buffer pos = d.alloc(DType::I32, {2});
  Buffer pos_f = d.alloc(DType::F32, {2});
  Buffer pos3 = d.alloc(DType::I32, {3});
  Buffer freq = d.alloc(DType::F32, {4});
  Buffer freq5 = d.alloc(DType::F32, {5});
  Buffer freq16 = d.alloc(DType::F16, {4});
  Buffer big = d.alloc(DType::F32, {96});
  CommandEncoder enc = d.command_encoder();
  const auto neox = RopeLayout::Neox;
  MLXN_EXPECT_ERROR(ops::rope(enc, x, pos_f, freq, out, neox), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::rope(enc, x, pos3, freq, out, neox), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::rope(enc, x, pos, freq5, out, neox), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::rope(enc, x, pos, freq16, out, neox), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::rope(enc, x.reshape({6, 8}), pos, freq, out, neox),
                    ErrorKind::InvalidArgument);
  Buffer a = big.slice(0, 48).reshape({2, 3, 8}), b = big.slice(8, 48).reshape({2, 3, 8});
  MLXN_EXPECT_ERROR(ops::rope(enc, a, pos, freq, b, neox), ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(RopeTest);

// CUDA vs CPU at Llama-3-8B prefill/decode shapes (Q: 32 heads, K: 8 heads, head_dim 128).
class RopeCudaTest : public test::CudaVsCpuTest {};

TEST_F(RopeCudaTest, LlamaShapesMatchCpu) {
  auto rng = test::seeded_rng();
  constexpr RopeShape kBig[] = {{512, 32, 128, 128},
                                {512, 8, 128, 128},
                                {1, 32, 128, 128},
                                {64, 16, 256, 64},
                                {3000, 2, 64, 64}};
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Neox}) {
    for (DType dt : kFloatTypes) {
      for (RopeShape s : kBig) {
        for (bool in_place : {false, true}) {
          SCOPED_TRACE(describe(dt, s, layout, in_place));
          const RopeCase c = make_case(rng, dt, s, 1.0f);
          const auto want = rope_on(cpu_, dt, s, c, layout, in_place);
          const auto got = rope_on(*cuda_, dt, s, c, layout, in_place);
          EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                    test::dtype_tolerance(dt, 1e-5));
          EXPECT_LE(test::rel_l2(got, rope_ref(c, s, layout)), test::dtype_tolerance(dt, 1e-5));
        }
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
