// rope_kv_append against the three ops it fuses (rope(q), rope(k), kv_cache_append) on the same
// backend, byte for byte: q, k and v as views of one buffer (as a fused QKV projection writes
// them), both layouts, partial rotary dims, every f32/f16/bf16 q/k/v and cache dtype pair, ring
// mode with positions past the capacity; bad positions and bad arguments; CUDA vs CPU.
#include "mlxn/ops/rope_kv_append.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "mlxn/ops/kv_cache.h"
#include "mlxn/ops/rope.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using ops::RopeLayout;
using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

struct Case {
  std::int64_t n_tokens, n_heads, n_kv_heads, head_dim, rotary_dim, capacity;
};

struct Inputs {
  std::vector<float> q, k, v;  // [n, heads, head_dim], already rounded to the q/k/v dtype
  std::vector<std::int32_t> pos;
  std::vector<float> inv_freq;
  float scale = 1.0f;
  std::vector<float> k_cache, v_cache;  // initial contents; empty = poisoned
};

struct Outputs {
  std::vector<unsigned char> q, k, v, k_cache, v_cache;  // raw bytes
};

std::string describe(const Case& c, DType src, DType dst, RopeLayout layout, bool ring) {
  return std::string(dtype_name(src)) + "->" + std::string(dtype_name(dst)) + " " +
         std::to_string(c.n_tokens) + "x(" + std::to_string(c.n_heads) + "+" +
         std::to_string(c.n_kv_heads) + ")x" + std::to_string(c.head_dim) + " rot " +
         std::to_string(c.rotary_dim) + " cap " + std::to_string(c.capacity) +
         (layout == RopeLayout::Neox ? " neox" : " interleaved") + (ring ? " ring" : "");
}

// Distinct positions in random order: within [0, capacity), or with `ring` a run starting far
// past it (near the end of a 128k context, where the f32 angle needs its error compensation).
Inputs make_inputs(std::mt19937& rng, const Case& c, DType src, bool ring, float scale) {
  Inputs in;
  in.q = test::round_to(src, test::random_floats(rng, c.n_tokens * c.n_heads * c.head_dim));
  in.k = test::round_to(src, test::random_floats(rng, c.n_tokens * c.n_kv_heads * c.head_dim));
  in.v = test::round_to(src, test::random_floats(rng, c.n_tokens * c.n_kv_heads * c.head_dim));
  if (ring) {
    in.pos.resize(c.n_tokens);
    std::iota(in.pos.begin(), in.pos.end(), 131072 - 3 - static_cast<std::int32_t>(c.n_tokens));
  } else {
    std::vector<std::int32_t> all(c.capacity);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    in.pos.assign(all.begin(), all.begin() + c.n_tokens);
  }
  std::shuffle(in.pos.begin(), in.pos.end(), rng);
  ops::RopeConfig cfg;
  cfg.theta = 10000.0;
  cfg.rotary_dim = c.rotary_dim;
  in.inv_freq = ops::rope_inv_freq(cfg, 1).inv_freq;
  in.scale = scale;
  return in;
}

std::vector<float> concat(const Inputs& in) {
  std::vector<float> all(in.q);
  all.insert(all.end(), in.k.begin(), in.k.end());
  all.insert(all.end(), in.v.begin(), in.v.end());
  return all;
}

// Runs the fused op, or the three ops it replaces, on `device`. q, k and v are views of one
// buffer [q | k | v]: for one token exactly the row of a fused QKV projection.
Outputs run(Device& device, const Case& c, DType src, DType dst, RopeLayout layout, bool ring,
            const Inputs& in, bool fused) {
  const std::size_t es = dtype_size(src);
  const std::size_t q_bytes = in.q.size() * es, kv_bytes = in.k.size() * es;
  const Buffer qkv = test::upload(device, concat(in), src);
  const Buffer q = qkv.view(0, q_bytes, src, {c.n_tokens, c.n_heads, c.head_dim});
  const Buffer k = qkv.view(q_bytes, kv_bytes, src, {c.n_tokens, c.n_kv_heads, c.head_dim});
  const Buffer v =
      qkv.view(q_bytes + kv_bytes, kv_bytes, src, {c.n_tokens, c.n_kv_heads, c.head_dim});
  Buffer pos = device.alloc(DType::I32, {c.n_tokens});
  pos.write(in.pos);
  const Buffer freq = test::upload(device, in.inv_freq, DType::F32);
  const Shape cache_shape{c.n_kv_heads, c.capacity, c.head_dim};
  Buffer kc = test::poisoned(device, dst, cache_shape);
  Buffer vc = test::poisoned(device, dst, cache_shape);
  if (!in.k_cache.empty()) test::upload_to(kc, in.k_cache);
  if (!in.v_cache.empty()) test::upload_to(vc, in.v_cache);
  CommandEncoder enc = device.command_encoder();
  if (fused) {
    ops::rope_kv_append(enc, q, k, v, pos, freq, layout, in.scale, kc, vc, ring);
  } else {
    ops::rope(enc, q, pos, freq, q, layout, in.scale);
    ops::rope(enc, k, pos, freq, k, layout, in.scale);
    ops::kv_cache_append(enc, k, v, pos, kc, vc, ring);
  }
  enc.commit_and_wait();
  return {q.to_vector<unsigned char>(), k.to_vector<unsigned char>(), v.to_vector<unsigned char>(),
          kc.to_vector<unsigned char>(), vc.to_vector<unsigned char>()};
}

// Byte equality, naming the first element that differs.
::testing::AssertionResult same_bytes(const char* what, const std::vector<unsigned char>& got,
                                      const std::vector<unsigned char>& want, DType dtype) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << what << ": " << got.size() << " bytes vs " << want.size();
  }
  const std::size_t es = dtype_size(dtype);
  for (std::size_t i = 0; i < got.size(); i += es) {
    if (std::memcmp(&got[i], &want[i], es) != 0) {
      const std::vector<unsigned char> g(got.begin() + i, got.begin() + i + es);
      const std::vector<unsigned char> w(want.begin() + i, want.begin() + i + es);
      return ::testing::AssertionFailure()
             << what << " element " << i / es << ": fused " << test::decode(dtype, g)[0]
             << ", three ops " << test::decode(dtype, w)[0];
    }
  }
  return ::testing::AssertionSuccess();
}

void expect_same(const Outputs& fused, const Outputs& seq, DType src, DType dst) {
  EXPECT_TRUE(same_bytes("q", fused.q, seq.q, src));
  EXPECT_TRUE(same_bytes("k", fused.k, seq.k, src));
  EXPECT_TRUE(same_bytes("v", fused.v, seq.v, src));
  EXPECT_TRUE(same_bytes("k_cache", fused.k_cache, seq.k_cache, dst));
  EXPECT_TRUE(same_bytes("v_cache", fused.v_cache, seq.v_cache, dst));
}

class RopeKvAppendTest : public BackendTest {};

TEST_P(RopeKvAppendTest, MatchesRopeRopeAppendBitExactly) {
  auto rng = test::seeded_rng();
  // Decode and a short prefill, each with full and partial rotary dims. The last ring capacity is
  // below n, so that tokens of one call collide on a slot (the greatest position must win);
  // without ring it grows to n.
  const Case cases[] = {
      {1, 8, 2, 64, 64, 16}, {1, 4, 1, 80, 32, 9}, {7, 4, 2, 64, 64, 20}, {7, 3, 1, 96, 48, 5}};
  int k = 0;
  for (DType src : kFloatTypes) {
    for (DType dst : kFloatTypes) {
      for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Neox}) {
        for (const Case& ring_case : cases) {
          for (bool ring : {false, true}) {
            Case c = ring_case;
            if (!ring) c.capacity = std::max(c.capacity, c.n_tokens);
            SCOPED_TRACE(describe(c, src, dst, layout, ring));
            const Inputs in = make_inputs(rng, c, src, ring, ++k % 2 ? 1.0f : 0.8f);
            const Outputs seq = run(device(), c, src, dst, layout, ring, in, false);
            const Outputs fused = run(device(), c, src, dst, layout, ring, in, true);
            expect_same(fused, seq, src, dst);
          }
        }
      }
    }
  }
}

TEST_P(RopeKvAppendTest, LlamaDecodeStepIntoAFilledCache) {
  // Llama-3-8B attention (32 q heads, 8 kv heads, head_dim 128) at one token, appending to a
  // cache whose other rows hold earlier tokens: those must stay as they are.
  auto rng = test::seeded_rng();
  const Case c{1, 32, 8, 128, 128, 64};
  for (const auto& [src, dst] :
       {std::pair{DType::BF16, DType::BF16}, std::pair{DType::F32, DType::F32},
        std::pair{DType::F16, DType::F32}}) {
    for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Neox}) {
      SCOPED_TRACE(describe(c, src, dst, layout, false));
      Inputs in = make_inputs(rng, c, src, false, 1.0f);
      in.pos = {static_cast<std::int32_t>(c.capacity - 1)};
      const std::int64_t cache_n = c.n_kv_heads * c.capacity * c.head_dim;
      in.k_cache = test::round_to(dst, test::random_floats(rng, cache_n));
      in.v_cache = test::round_to(dst, test::random_floats(rng, cache_n));
      const Outputs seq = run(device(), c, src, dst, layout, false, in, false);
      const Outputs fused = run(device(), c, src, dst, layout, false, in, true);
      expect_same(fused, seq, src, dst);
      // The fused op did write something: the appended row is not the one that was there.
      EXPECT_NE(fused.v_cache, test::encode(dst, in.v_cache));
    }
  }
}

TEST_P(RopeKvAppendTest, BadPositionFailsTheCommandBuffer) {
  auto rng = test::seeded_rng();
  const Case c{2, 2, 1, 64, 64, 8};
  for (const auto& [pos, ring] : {std::pair{std::vector<std::int32_t>{3, 8}, false},
                                  std::pair{std::vector<std::int32_t>{-1, 2}, false},
                                  std::pair{std::vector<std::int32_t>{9, -3}, true}}) {
    SCOPED_TRACE(std::to_string(pos[0]) + "," + std::to_string(pos[1]) + (ring ? " ring" : ""));
    Inputs in = make_inputs(rng, c, DType::F32, false, 1.0f);
    in.pos = pos;
    const auto err = test::capture_error(
        [&] { run(device(), c, DType::F32, DType::F32, RopeLayout::Neox, ring, in, true); });
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind(), ErrorKind::CommandBuffer) << err->what();
    const std::string msg = err->what();
    EXPECT_NE(msg.find("rope_kv_append"), std::string::npos) << msg;
    EXPECT_NE(msg.find("position"), std::string::npos) << msg;
  }
  // The device is usable again after the failed command buffer.
  const Inputs in = make_inputs(rng, c, DType::F32, false, 1.0f);
  const Outputs seq = run(device(), c, DType::F32, DType::F32, RopeLayout::Neox, false, in, false);
  const Outputs fused = run(device(), c, DType::F32, DType::F32, RopeLayout::Neox, false, in, true);
  expect_same(fused, seq, DType::F32, DType::F32);
}

TEST_P(RopeKvAppendTest, InvalidArgumentsThrowBeforeQueuing) {
  Device& d = device();
  CommandEncoder enc = d.command_encoder();
  const Buffer qkv = d.alloc(DType::F16, {4 * (6 + 2 + 2) * 64});
  const auto part = [&](std::int64_t first, std::int64_t heads) {
    return qkv.slice(first * 64, 4 * heads * 64).reshape({4, heads, 64});
  };
  const Buffer q = part(0, 6), k = part(4 * 6, 2), v = part(4 * 8, 2);
  const Buffer pos = d.alloc(DType::I32, {4});
  const Buffer freq = d.alloc(DType::F32, {32});
  const Buffer kc = d.alloc(DType::BF16, {2, 16, 64}), vc = d.alloc(DType::BF16, {2, 16, 64});
  const auto neox = RopeLayout::Neox;
  const auto expect_invalid = [&](const char* what, const Buffer& q_, const Buffer& k_,
                                  const Buffer& v_, const Buffer& pos_, const Buffer& freq_,
                                  float scale, const Buffer& kc_, const Buffer& vc_,
                                  ErrorKind kind) {
    SCOPED_TRACE(what);
    MLXN_EXPECT_ERROR(ops::rope_kv_append(enc, q_, k_, v_, pos_, freq_, neox, scale, kc_, vc_),
                      kind);
  };
  constexpr auto kInvalid = ErrorKind::InvalidArgument;
  expect_invalid("k head_dim", q, d.alloc(DType::F16, {4, 2, 32}), v, pos, freq, 1.0f, kc, vc,
                 kInvalid);
  expect_invalid("k n_tokens", q, d.alloc(DType::F16, {3, 2, 64}), v, pos, freq, 1.0f, kc, vc,
                 kInvalid);
  expect_invalid("v unlike k", q, k, d.alloc(DType::F16, {4, 1, 64}), pos, freq, 1.0f, kc, vc,
                 kInvalid);
  expect_invalid("q rank 2", q.reshape({4, 6 * 64}), k, v, pos, freq, 1.0f, kc, vc, kInvalid);
  expect_invalid("cache heads", q, k, v, pos, freq, 1.0f, d.alloc(DType::BF16, {3, 16, 64}),
                 d.alloc(DType::BF16, {3, 16, 64}), kInvalid);
  expect_invalid("v_cache shape", q, k, v, pos, freq, 1.0f, kc, d.alloc(DType::BF16, {2, 8, 64}),
                 kInvalid);
  expect_invalid("k dtype", q, d.alloc(DType::F32, {4, 2, 64}), v, pos, freq, 1.0f, kc, vc,
                 kInvalid);
  expect_invalid("v_cache dtype", q, k, v, pos, freq, 1.0f, kc, d.alloc(DType::F16, {2, 16, 64}),
                 kInvalid);
  expect_invalid("q not float", d.alloc(DType::I32, {4, 6, 64}), k, v, pos, freq, 1.0f, kc, vc,
                 ErrorKind::UnsupportedDType);
  expect_invalid("positions i64", q, k, v, d.alloc(DType::I64, {4}), freq, 1.0f, kc, vc, kInvalid);
  expect_invalid("positions count", q, k, v, d.alloc(DType::I32, {3}), freq, 1.0f, kc, vc,
                 kInvalid);
  expect_invalid("rotary_dim > head_dim", q, k, v, pos, d.alloc(DType::F32, {33}), 1.0f, kc, vc,
                 kInvalid);
  expect_invalid("inv_freq f16", q, k, v, pos, d.alloc(DType::F16, {32}), 1.0f, kc, vc, kInvalid);
  expect_invalid("scale NaN", q, k, v, pos, freq, NAN, kc, vc, kInvalid);
  expect_invalid("k overlaps v", q, k, part(4 * 6 + 4, 2), pos, freq, 1.0f, kc, vc, kInvalid);
  expect_invalid("caches one view", q, k, v, pos, freq, 1.0f, kc, kc, kInvalid);
  const Buffer shared = d.alloc(DType::BF16, {4 * 10 * 64 + 2 * 16 * 64});
  const auto shared_part = [&](std::int64_t first, std::int64_t n, Shape shape) {
    return shared.slice(first * 64, n * 64).reshape(std::move(shape));
  };
  expect_invalid("cache shares the qkv buffer", shared_part(0, 24, {4, 6, 64}),
                 shared_part(24, 8, {4, 2, 64}), shared_part(32, 8, {4, 2, 64}), pos, freq, 1.0f,
                 shared_part(40, 32, {2, 16, 64}), vc, kInvalid);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
  ops::rope_kv_append(enc, q, k, v, pos, freq, neox, 1.0f, kc, vc);
  EXPECT_EQ(enc.pending_dispatches(), 1u);
  enc.discard();
}

MLXN_INSTANTIATE_BACKENDS(RopeKvAppendTest);

// CUDA vs CPU at Llama-3-8B decode and prefill shapes, plus a ring prefill longer than the cache
// and a partial-rotary head: the fused CUDA op equals the CUDA three-op sequence bit for bit and
// the CPU within the rope CUDA-vs-CPU tolerance.
class RopeKvAppendCudaTest : public test::CudaVsCpuTest {};

TEST_F(RopeKvAppendCudaTest, LlamaShapesMatchTheSequenceAndCpu) {
  auto rng = test::seeded_rng();
  struct Big {
    Case c;
    bool ring;
  };
  const Big cases[] = {{{1, 32, 8, 128, 128, 4096}, false},
                       {{2048, 32, 8, 128, 128, 2048}, false},
                       {{300, 8, 2, 128, 128, 128}, true},
                       {{64, 16, 4, 256, 64, 64}, false}};
  for (const auto& [src, dst] :
       {std::pair{DType::BF16, DType::BF16}, std::pair{DType::F32, DType::F32},
        std::pair{DType::F16, DType::F32}, std::pair{DType::F32, DType::BF16}}) {
    for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Neox}) {
      for (const Big& b : cases) {
        const Case& c = b.c;
        SCOPED_TRACE(describe(c, src, dst, layout, b.ring));
        Inputs in = make_inputs(rng, c, src, b.ring, 1.0f);
        // Finite initial caches so that every element compares (untouched ones equal exactly).
        const std::int64_t cache_n = c.n_kv_heads * c.capacity * c.head_dim;
        in.k_cache = test::round_to(dst, test::random_floats(rng, cache_n));
        in.v_cache = test::round_to(dst, test::random_floats(rng, cache_n));
        const Outputs seq = run(*cuda_, c, src, dst, layout, b.ring, in, false);
        const Outputs fused = run(*cuda_, c, src, dst, layout, b.ring, in, true);
        expect_same(fused, seq, src, dst);
        const Outputs cpu = run(cpu_, c, src, dst, layout, b.ring, in, true);
        const double tol = test::dtype_tolerance(src, 1e-5);
        const double cache_tol = std::max(tol, test::dtype_tolerance(dst, 1e-5));
        EXPECT_LE(test::rel_l2(test::decode(src, fused.q), test::decode(src, cpu.q)), tol);
        EXPECT_LE(test::rel_l2(test::decode(src, fused.k), test::decode(src, cpu.k)), tol);
        EXPECT_TRUE(same_bytes("v", fused.v, cpu.v, src));
        EXPECT_LE(test::rel_l2(test::decode(dst, fused.k_cache), test::decode(dst, cpu.k_cache)),
                  cache_tol);
        EXPECT_TRUE(same_bytes("v_cache", fused.v_cache, cpu.v_cache, dst));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
