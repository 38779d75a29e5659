// Prefill attention (fresh K/V and through the KV cache) for f32/f16/bf16: each backend vs a
// float64 reference over every variant (causal, GQA 1/4/8, MQA, sliding window, softcap, custom
// scale, non-causal, each head dim, odd lengths), CUDA vs CPU at larger shapes, argument checks.
#include "mlxn/ops/attention.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention_test_util.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::AttnInputs;
using test::AttnShape;
using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

ops::AttentionOptions opts(std::int64_t window = 0, float softcap = 0, float scale = 0,
                           bool causal = true) {
  ops::AttentionOptions o;
  o.window = window;
  o.softcap = softcap;
  o.scale = scale;
  o.causal = causal;
  return o;
}

struct PrefillCase {
  AttnShape shape;
  ops::AttentionOptions options;
};

// Moderate sizes: the CPU part of the suite must stay within seconds.
const PrefillCase kPrefillCases[] = {
    {{1, 1, 4, 4, 64}, opts()},                      // single token
    {{7, 7, 8, 2, 128}, opts()},                     // GQA 4
    {{33, 33, 8, 1, 80}, opts()},                    // MQA
    {{100, 100, 16, 2, 64}, opts()},                 // GQA 8
    {{257, 257, 2, 2, 96}, opts()},                  // long, ratio 1
    {{33, 100, 4, 2, 256}, opts()},                  // queries after a prefix
    {{100, 100, 4, 2, 64}, opts(17)},                // sliding window << sequence
    {{33, 33, 4, 4, 128}, opts(0, 1.0f, 0.5f)},      // softcap that bites
    {{7, 20, 4, 4, 64}, opts(0, 0, 0.3f)},           // custom scale
    {{33, 33, 4, 1, 64}, opts(0, 0, 0, false)},      // non-causal
    {{130, 130, 4, 1, 128}, opts(40, 20.0f, 0.1f)},  // window + softcap + scale, MQA
};

class AttentionPrefillTest : public BackendTest {};

TEST_P(AttentionPrefillTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (const PrefillCase& c : kPrefillCases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + test::describe(c.shape, c.options));
      const AttnInputs in = test::make_attn_inputs(rng, c.shape, dt, dt);
      const auto out = test::run_prefill(device(), in, c.shape, dt, dt, c.options);
      const auto ref = test::attention_ref(in, c.shape, c.shape.n_kv - c.shape.n_q, c.options);
      EXPECT_LE(test::rel_l2(out, ref), test::attn_tolerance(dt));
    }
  }
}

TEST_P(AttentionPrefillTest, MixedQueryAndKvDtypes) {
  auto rng = test::seeded_rng();
  const AttnShape s{33, 40, 4, 2, 128};
  const auto o = opts(16);
  for (DType io : kFloatTypes) {
    for (DType kv : kFloatTypes) {
      if (io == kv) continue;
      SCOPED_TRACE(std::string(dtype_name(io)) + " q with " + std::string(dtype_name(kv)) + " kv");
      const AttnInputs in = test::make_attn_inputs(rng, s, io, kv);
      const auto out = test::run_prefill(device(), in, s, io, kv, o);
      EXPECT_LE(test::rel_l2(out, test::attention_ref(in, s, s.n_kv - s.n_q, o)),
                test::attn_tolerance(io));
    }
  }
}

TEST_P(AttentionPrefillTest, EveryHeadDim) {
  auto rng = test::seeded_rng();
  for (std::int64_t d : {64, 80, 96, 128, 256}) {
    for (DType dt : {DType::F32, DType::BF16}) {
      const AttnShape s{37, 37, 4, 2, d};
      const auto o = opts(0, 0, 0);
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + test::describe(s, o));
      const AttnInputs in = test::make_attn_inputs(rng, s, dt, dt);
      const auto out = test::run_prefill(device(), in, s, dt, dt, o);
      EXPECT_LE(test::rel_l2(out, test::attention_ref(in, s, 0, o)), test::attn_tolerance(dt));
    }
  }
}

TEST_P(AttentionPrefillTest, SoftcapAndWindowChangeTheResult) {
  // Guards the other tests' sensitivity: the reference with the option on differs from the one
  // without by far more than the tolerance, so a kernel ignoring the option cannot pass.
  auto rng = test::seeded_rng();
  const AttnShape s{64, 64, 2, 2, 64};
  const AttnInputs in = test::make_attn_inputs(rng, s, DType::F32, DType::F32);
  const auto base = test::attention_ref(in, s, 0, opts());
  for (const auto& o : {opts(8), opts(0, 1.0f, 0.5f), opts(0, 0, 0.3f), opts(0, 0, 0, false)}) {
    const auto ref = test::attention_ref(in, s, 0, o);
    const std::vector<float> base_f(base.begin(), base.end());
    EXPECT_GT(test::rel_l2(base_f, ref), 0.05) << test::describe(s, o);
    const auto out = test::run_prefill(device(), in, s, DType::F32, DType::F32, o);
    EXPECT_LE(test::rel_l2(out, ref), 1e-5) << test::describe(s, o);
  }
}

struct CachedCase {
  AttnShape shape;  // the last n_q of n_kv positions are the queries
  std::int64_t capacity;
  bool ring;
  std::int64_t step;  // tokens per kv_cache_append call
  ops::AttentionOptions options;
};

const CachedCase kCachedCases[] = {
    {{1, 1, 4, 4, 64}, 8, false, 1, opts()},
    {{33, 100, 8, 2, 128}, 128, false, 33, opts()},      // chunked prefill after a prefix
    {{17, 70, 4, 1, 80}, 70, false, 7, opts(20, 5.0f)},  // capacity == kv_len exactly
    {{9, 100, 4, 2, 96}, 24, true, 9, opts(16)},         // wrapped ring, capacity = window + 8
    {{1, 257, 4, 4, 256}, 16, true, 5, opts(16)},        // ring capacity == window
    {{20, 64, 8, 8, 64}, 40, true, 20, opts(21, 0, 0.2f)},
};

TEST_P(AttentionPrefillTest, ThroughTheCacheMatchesReference) {
  auto rng = test::seeded_rng();
  for (const CachedCase& c : kCachedCases) {
    for (DType kv : kFloatTypes) {
      for (DType io : {DType::F32, kv}) {
        SCOPED_TRACE(std::string(dtype_name(io)) + " q, " + std::string(dtype_name(kv)) +
                     " cache cap=" + std::to_string(c.capacity) + (c.ring ? " ring " : " ") +
                     test::describe(c.shape, c.options));
        const AttnInputs in = test::make_attn_inputs(rng, c.shape, io, kv);
        const auto cache =
            test::build_cache(device(), in, c.shape, io, kv, c.capacity, c.ring, c.step);
        const auto out = test::run_prefill_cached(device(), cache, in, c.shape, io, c.options);
        const auto ref = test::attention_ref(in, c.shape, c.shape.n_kv - c.shape.n_q, c.options);
        EXPECT_LE(test::rel_l2(out, ref), test::attn_tolerance(io));
        if (io == kv) break;
      }
    }
  }
}

TEST_P(AttentionPrefillTest, InvalidArgumentsThrowBeforeQueuing) {
  Device& dev = device();
  auto buf = [&](DType dt, Shape s) { return dev.alloc(dt, std::move(s)); };
  CommandEncoder enc = dev.command_encoder();
  const Buffer q = buf(DType::F16, {4, 8, 64}), out = buf(DType::F16, {4, 8, 64});
  const Buffer k = buf(DType::F16, {6, 2, 64}), v = buf(DType::F16, {6, 2, 64});
  // head dim 72 is not built; n_heads 8 is not a multiple of 3 KV heads; out dtype differs;
  // more queries than keys; mismatched head dims; K and V of different dtypes.
  MLXN_EXPECT_ERROR(
      ops::attention_prefill(enc, buf(DType::F16, {4, 8, 72}), buf(DType::F16, {6, 2, 72}),
                             buf(DType::F16, {6, 2, 72}), buf(DType::F16, {4, 8, 72})),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(
      ops::attention_prefill(enc, q, buf(DType::F16, {6, 3, 64}), buf(DType::F16, {6, 3, 64}), out),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_prefill(enc, q, k, v, buf(DType::F32, {4, 8, 64})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(
      ops::attention_prefill(enc, buf(DType::F16, {7, 8, 64}), k, v, buf(DType::F16, {7, 8, 64})),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_prefill(enc, q, buf(DType::F16, {6, 2, 128}),
                                           buf(DType::F16, {6, 2, 128}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_prefill(enc, q, k, buf(DType::BF16, {6, 2, 64}), out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_prefill(enc, buf(DType::I32, {4, 8, 64}), k, v, out),
                    ErrorKind::UnsupportedDType);
  // Through the cache [2, 16, 64]: queries past kv_len; keys the ring already overwrote
  // (kv_len 40 keeps positions 24..39, a window of 16 at q_pos0 30 needs 15..).
  const Buffer kc = buf(DType::F16, {2, 16, 64}), vc = buf(DType::F16, {2, 16, 64});
  MLXN_EXPECT_ERROR(ops::attention_prefill_cached(enc, q, kc, vc, 10, 8, out),
                    ErrorKind::InvalidArgument);
  ops::AttentionOptions w16;
  w16.window = 16;
  MLXN_EXPECT_ERROR(ops::attention_prefill_cached(enc, q, kc, vc, 40, 30, out, w16),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_prefill_cached(enc, q, kc, vc, 40, 36, out),  // no window
                    ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
  // Positions 36..39 with a window of 4 need 33.. which the ring keeps: accepted.
  ops::AttentionOptions w4;
  w4.window = 4;
  ops::attention_prefill_cached(enc, q, kc, vc, 40, 36, out, w4);
  EXPECT_EQ(enc.pending_dispatches(), 1u);
  enc.discard();
}

MLXN_INSTANTIATE_BACKENDS(AttentionPrefillTest);

// CUDA vs the CPU kernel at larger shapes than the CPU suite affords against the f64 reference.
class AttentionPrefillCudaTest : public test::CudaVsCpuTest {};

TEST_F(AttentionPrefillCudaTest, MatchesCpu) {
  auto rng = test::seeded_rng();
  const PrefillCase cases[] = {
      {{512, 512, 32, 8, 128}, opts()},                    // Llama-3-8B heads
      {{300, 1000, 8, 1, 64}, opts()},                     // MQA after a long prefix
      {{333, 333, 8, 4, 256}, opts(128, 50.0f, 0.0625f)},  // Gemma-2-like
      {{257, 257, 8, 8, 80}, opts(100)},
      {{200, 200, 12, 4, 96}, opts(0, 0, 0, false)},
      {{1, 1000, 16, 2, 128}, opts(64)},
  };
  for (DType dt : kFloatTypes) {
    for (const PrefillCase& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + test::describe(c.shape, c.options));
      const AttnInputs in = test::make_attn_inputs(rng, c.shape, dt, dt);
      const auto want = test::run_prefill(cpu_, in, c.shape, dt, dt, c.options);
      const auto got = test::run_prefill(*cuda_, in, c.shape, dt, dt, c.options);
      EXPECT_LE(test::rel_l2(got, want), test::attn_tolerance(dt));
    }
  }
}

TEST_F(AttentionPrefillCudaTest, ThroughWrappedRingMatchesCpu) {
  auto rng = test::seeded_rng();
  const AttnShape s{64, 1000, 16, 8, 128};
  const auto o = opts(128, 30.0f);
  for (DType kv : kFloatTypes) {
    SCOPED_TRACE(std::string(dtype_name(kv)) + " cache");
    const AttnInputs in = test::make_attn_inputs(rng, s, DType::BF16, kv);
    const auto cc = test::build_cache(cpu_, in, s, DType::BF16, kv, 192, true, 64);
    const auto gc = test::build_cache(*cuda_, in, s, DType::BF16, kv, 192, true, 64);
    const auto want = test::run_prefill_cached(cpu_, cc, in, s, DType::BF16, o);
    const auto got = test::run_prefill_cached(*cuda_, gc, in, s, DType::BF16, o);
    EXPECT_LE(test::rel_l2(got, want), test::attn_tolerance(DType::BF16));
  }
}

}  // namespace
}  // namespace mlxn
