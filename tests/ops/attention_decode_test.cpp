// Decode attention over the KV cache for f32/f16/bf16 caches: each backend vs a float64 reference
// (head dims, GQA/MQA, window, softcap, scale, forced chunk splits through the log-sum-exp merge),
// consistency with the last row of prefill, ring-buffer wrap, and CUDA vs CPU at long contexts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention_test_util.h"
#include "mlxn/ops/attention.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::AttnInputs;
using test::AttnShape;
using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

ops::DecodeOptions dopts(std::int64_t window = 0, float softcap = 0, float scale = 0,
                         int n_chunks = 0) {
  ops::DecodeOptions o;
  o.window = window;
  o.softcap = softcap;
  o.scale = scale;
  o.n_chunks = n_chunks;
  return o;
}

std::string describe(const AttnShape& s, const ops::DecodeOptions& o) {
  return test::describe(s, o) + " chunks=" + std::to_string(o.n_chunks);
}

// The reference for the decode query: the last position (kv_len - 1) of a one-query problem.
std::vector<double> decode_ref(const AttnInputs& in, AttnShape s, const ops::AttentionOptions& o) {
  s.n_q = 1;
  return test::attention_ref(in, s, s.n_kv - 1, o);
}

struct DecodeCase {
  AttnShape shape;  // n_q = 1; n_kv = kv_len
  std::int64_t capacity;
  bool ring;
  ops::DecodeOptions options;
};

const DecodeCase kDecodeCases[] = {
    {{1, 1, 4, 4, 64}, 4, false, dopts()},
    {{1, 7, 8, 2, 128}, 7, false, dopts()},
    {{1, 33, 8, 1, 80}, 40, false, dopts(0, 0, 0, 3)},          // MQA, 3 chunks
    {{1, 100, 16, 2, 96}, 128, false, dopts(0, 0, 0, 7)},       // GQA 8, 7 chunks
    {{1, 257, 4, 4, 256}, 300, false, dopts(0, 0, 0, 257)},     // one slot per chunk
    {{1, 257, 8, 2, 128}, 257, false, dopts(50, 0, 0, 4)},      // window: chunks fully masked
    {{1, 100, 4, 2, 64}, 100, false, dopts(0, 1.0f, 0.5f, 2)},  // softcap that bites
    {{1, 64, 4, 4, 128}, 64, false, dopts(0, 0, 0.3f)},         // custom scale
    {{1, 100, 12, 1, 64}, 100, false, dopts(0, 0, 0, 5)},       // MQA group 12 > 8 heads per block
    {{1, 100, 8, 4, 64}, 16, true, dopts(16, 0, 0, 3)},         // wrapped ring, capacity = window
    {{1, 75, 8, 8, 80}, 24, true, dopts(20, 30.0f)},            // ring with capacity > window
};

class AttentionDecodeTest : public BackendTest {};

TEST_P(AttentionDecodeTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (const DecodeCase& c : kDecodeCases) {
    for (DType kv : kFloatTypes) {
      for (DType io : {DType::F32, kv}) {
        SCOPED_TRACE(std::string(dtype_name(io)) + " q, " + std::string(dtype_name(kv)) +
                     " cache cap=" + std::to_string(c.capacity) + (c.ring ? " ring " : " ") +
                     describe(c.shape, c.options));
        AttnShape s = c.shape;
        s.n_q = 1;
        const AttnInputs in = test::make_attn_inputs(rng, s, io, kv);
        const auto cache = test::build_cache(device(), in, s, io, kv, c.capacity, c.ring, 13);
        const auto out = test::run_decode(device(), cache, in.q, s, s.n_kv, io, c.options);
        EXPECT_LE(test::rel_l2(out, decode_ref(in, s, c.options)), test::attn_tolerance(io));
        if (io == kv) break;
      }
    }
  }
}

TEST_P(AttentionDecodeTest, ChunkCountDoesNotChangeTheResult) {
  auto rng = test::seeded_rng();
  const AttnShape s{1, 200, 8, 2, 128};
  const AttnInputs in = test::make_attn_inputs(rng, s, DType::F32, DType::F32);
  const auto cache = test::build_cache(device(), in, s, DType::F32, DType::F32, 256, false, 200);
  const auto ref = decode_ref(in, s, dopts(60));
  for (int chunks : {0, 1, 2, 3, 64, 199, 200, 1000}) {
    const auto out =
        test::run_decode(device(), cache, in.q, s, s.n_kv, DType::F32, dopts(60, 0, 0, chunks));
    EXPECT_LE(test::rel_l2(out, ref), 1e-5) << "n_chunks=" << chunks;
  }
  // A caller-provided workspace (bigger than needed) gives the same result.
  ops::DecodeOptions o = dopts(60, 0, 0, 5);
  o.workspace = device().alloc(DType::F32, {ops::attention_decode_workspace_elems(8, 128, 5) + 7});
  EXPECT_LE(test::rel_l2(test::run_decode(device(), cache, in.q, s, s.n_kv, DType::F32, o), ref),
            1e-5);
  // Left to choose (n_chunks 0), the op takes no more chunks than a given workspace holds (CUDA
  // would otherwise pick 13 here and reject the workspace).
  ops::DecodeOptions capped = dopts(60);
  capped.workspace = device().alloc(DType::F32, {ops::attention_decode_workspace_elems(8, 128, 3)});
  EXPECT_LE(
      test::rel_l2(test::run_decode(device(), cache, in.q, s, s.n_kv, DType::F32, capped), ref),
      1e-5);
}

TEST_P(AttentionDecodeTest, EqualsLastRowOfPrefill) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (std::int64_t n : {1, 7, 33, 100}) {
      const AttnShape s{n, n, 8, 2, 64};
      const auto o = dopts(n > 30 ? 20 : 0, 10.0f);
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + describe(s, o));
      const AttnInputs in = test::make_attn_inputs(rng, s, dt, dt);
      const auto prefill = test::run_prefill(device(), in, s, dt, dt, o);
      const auto cache = test::build_cache(device(), in, s, dt, dt, n, false, n);
      const auto last_q = test::rows_of(in.q, s, n - 1, 1);
      const auto decode = test::run_decode(device(), cache, last_q, s, n, dt, o);
      // Both are the same math on the same rounded inputs; only f32 summation order differs.
      const auto last = test::rows_of(prefill, s, n - 1, 1);
      EXPECT_LE(test::rel_l2(decode, last), test::attn_tolerance(dt));
    }
  }
}

TEST_P(AttentionDecodeTest, RingBufferSeesOnlyTheLastWindowPositions) {
  // Decode step by step into a ring of capacity = window = 16 and check every step against the
  // full-history reference with the window; past the wrap, also check that the result differs
  // from attending to the whole history (which the ring no longer holds).
  auto rng = test::seeded_rng();
  const std::int64_t window = 16, total = 50;
  AttnShape s{1, total, 4, 2, 64};
  const AttnInputs all = test::make_attn_inputs(rng, s, DType::F32, DType::F16);
  test::TestCache cache{test::poisoned(device(), DType::F16, {2, window, 64}),
                        test::poisoned(device(), DType::F16, {2, window, 64})};
  const std::int64_t row = s.n_kv_heads * s.head_dim;
  auto token = [&](const std::vector<float>& x, std::int64_t pos) {
    return std::vector<float>(x.begin() + pos * row, x.begin() + (pos + 1) * row);
  };
  for (std::int64_t pos = 0; pos < total; ++pos) {
    CommandEncoder enc = device().command_encoder();
    Buffer k = test::upload(device(), token(all.k, pos), DType::F32, {1, 2, 64});
    Buffer v = test::upload(device(), token(all.v, pos), DType::F32, {1, 2, 64});
    Buffer p = device().alloc(DType::I32, {1});
    p.write(std::vector<std::int32_t>{static_cast<std::int32_t>(pos)});
    ops::kv_cache_append(enc, k, v, p, cache.k, cache.v, /*ring=*/true);
    enc.commit_and_wait();

    AttnShape step = s;
    step.n_kv = pos + 1;
    const ops::DecodeOptions o = dopts(window, 0, 0, pos % 3 + 1);
    const auto out = test::run_decode(device(), cache, all.q, step, pos + 1, DType::F32, o);
    const auto ref = decode_ref(all, step, o);
    EXPECT_LE(test::rel_l2(out, ref), 1e-5) << "after position " << pos;
    if (pos >= 2 * window) {
      EXPECT_GT(test::rel_l2(out, decode_ref(all, step, dopts())), 1e-2) << "position " << pos;
    }
  }
}

TEST_P(AttentionDecodeTest, InvalidArgumentsThrowBeforeQueuing) {
  Device& dev = device();
  CommandEncoder enc = dev.command_encoder();
  const Buffer q = dev.alloc(DType::F32, {8, 64}), out = dev.alloc(DType::F32, {8, 64});
  const Buffer kc = dev.alloc(DType::F16, {2, 16, 64}), vc = dev.alloc(DType::F16, {2, 16, 64});
  MLXN_EXPECT_ERROR(ops::attention_decode(enc, q, kc, vc, 0, out), ErrorKind::InvalidArgument);
  // Wrapped ring without a window, or with a window wider than the ring.
  MLXN_EXPECT_ERROR(ops::attention_decode(enc, q, kc, vc, 17, out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_decode(enc, q, kc, vc, 17, out, dopts(17)),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::attention_decode(enc, dev.alloc(DType::F32, {2, 8, 64}), kc, vc, 5,
                                          dev.alloc(DType::F32, {2, 8, 64})),
                    ErrorKind::InvalidArgument);
  ops::DecodeOptions small = dopts(0, 0, 0, 4);
  small.workspace = dev.alloc(DType::F32, {10});
  MLXN_EXPECT_ERROR(ops::attention_decode(enc, q, kc, vc, 16, out, small),
                    ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
  ops::attention_decode(enc, q, kc, vc, 17, out, dopts(16));
  EXPECT_GE(enc.pending_dispatches(), 1u);
  enc.discard();
}

MLXN_INSTANTIATE_BACKENDS(AttentionDecodeTest);

class AttentionDecodeCudaTest : public test::CudaVsCpuTest {};

TEST_F(AttentionDecodeCudaTest, LongContextsMatchCpu) {
  auto rng = test::seeded_rng();
  struct Case {
    AttnShape shape;
    std::int64_t capacity;
    bool ring;
    ops::DecodeOptions options;
  };
  const Case cases[] = {
      {{1, 128, 32, 8, 128}, 128, false, dopts()},
      {{1, 4096, 32, 8, 128}, 4096, false, dopts()},
      {{1, 32768, 32, 8, 128}, 32768, false, dopts()},
      {{1, 5000, 16, 8, 256}, 4096, true, dopts(4096, 50.0f, 0.0625f)},  // Gemma-2-like local
      {{1, 3001, 32, 32, 80}, 3001, false, dopts(0, 0, 0, 1)},           // no split
      {{1, 2049, 28, 4, 96}, 2049, false, dopts(1000)},                  // group 7
      {{1, 1000, 32, 1, 64}, 1000, false, dopts()},                      // MQA, 4 blocks per chunk
  };
  for (const Case& c : cases) {
    for (DType kv : kFloatTypes) {
      for (DType io : {DType::F32, kv}) {
        SCOPED_TRACE(std::string(dtype_name(io)) + " q, " + std::string(dtype_name(kv)) +
                     " cache " + describe(c.shape, c.options));
        const AttnInputs in = test::make_attn_inputs(rng, c.shape, io, kv);
        const auto cc = test::build_cache(cpu_, in, c.shape, io, kv, c.capacity, c.ring, 4096);
        const auto gc = test::build_cache(*cuda_, in, c.shape, io, kv, c.capacity, c.ring, 4096);
        ops::DecodeOptions cpu_o = c.options;
        cpu_o.n_chunks = 1;
        const auto want = test::run_decode(cpu_, cc, in.q, c.shape, c.shape.n_kv, io, cpu_o);
        const auto got = test::run_decode(*cuda_, gc, in.q, c.shape, c.shape.n_kv, io, c.options);
        EXPECT_LE(test::rel_l2(got, want), test::attn_tolerance(io));
        if (io == kv) break;
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
