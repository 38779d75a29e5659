// kv_cache_append for every f32/f16/bf16 source and cache dtype pair: rows land at their slots
// converted exactly, other slots stay untouched (poisoned), ring wrap with "greatest position
// wins", bad positions fail the command buffer, argument checks, and CUDA vs CPU.
#include "mlxn/ops/kv_cache.h"

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

struct CacheShape {
  std::int64_t n_tokens, n_kv_heads, head_dim, capacity;
};

std::string describe(DType src, DType dst, const CacheShape& s) {
  return std::string(dtype_name(src)) + "->" + std::string(dtype_name(dst)) +
         " tokens=" + std::to_string(s.n_tokens) + " heads=" + std::to_string(s.n_kv_heads) +
         " d=" + std::to_string(s.head_dim) + " cap=" + std::to_string(s.capacity);
}

struct CacheState {
  std::vector<float> k, v;  // [n_kv_heads, capacity, head_dim] as f32 (NaN = never written)
};

// Appends k/v [n_tokens, n_kv_heads, head_dim] at `positions` into the given caches.
void append_on(Device& device, const CacheShape& s, DType src, const std::vector<float>& k,
               const std::vector<float>& v, const std::vector<std::int32_t>& positions,
               Buffer& k_cache, Buffer& v_cache, bool ring) {
  const Shape shape{static_cast<std::int64_t>(positions.size()), s.n_kv_heads, s.head_dim};
  Buffer kb = test::upload(device, k, src, shape), vb = test::upload(device, v, src, shape);
  Buffer pb = device.alloc(DType::I32, {static_cast<std::int64_t>(positions.size())});
  pb.write(positions);
  CommandEncoder enc = device.command_encoder();
  ops::kv_cache_append(enc, kb, vb, pb, k_cache, v_cache, ring);
  enc.commit_and_wait();
}

// Where the reference puts token t: expected[h, slot, d] = round(dst, k[t, h, d]).
void expect_rows(const CacheShape& s, DType dst, const std::vector<float>& x,
                 const std::vector<std::int32_t>& positions, std::vector<float>& expected,
                 bool ring) {
  for (std::size_t t = 0; t < positions.size(); ++t) {
    const std::int64_t slot = ring ? positions[t] % s.capacity : positions[t];
    for (std::int64_t h = 0; h < s.n_kv_heads; ++h) {
      for (std::int64_t d = 0; d < s.head_dim; ++d) {
        expected[(h * s.capacity + slot) * s.head_dim + d] =
            test::round_to(dst, x[(t * s.n_kv_heads + h) * s.head_dim + d]);
      }
    }
  }
}

// Exact comparison where NaN in `expected` means "still poisoned" (must still be NaN).
::testing::AssertionResult same_cache(const std::vector<float>& got,
                                      const std::vector<float>& expected) {
  if (got.size() != expected.size()) return ::testing::AssertionFailure() << "size differs";
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isnan(expected[i]) ? std::isnan(got[i]) : got[i] == expected[i];
    if (!ok) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

const CacheShape kShapes[] = {
    {1, 1, 64, 8}, {7, 3, 33, 20}, {33, 8, 128, 40}, {5, 2, 80, 5}, {100, 2, 256, 130}};

class KvCacheTest : public BackendTest {};

TEST_P(KvCacheTest, AppendWritesConvertedRowsAtTheirSlotsOnly) {
  auto rng = test::seeded_rng();
  for (DType src : kFloatTypes) {
    for (DType dst : kFloatTypes) {
      for (const CacheShape& s : kShapes) {
        SCOPED_TRACE(describe(src, dst, s));
        // Distinct positions in random order, not contiguous.
        std::vector<std::int32_t> all(s.capacity);
        std::iota(all.begin(), all.end(), 0);
        std::shuffle(all.begin(), all.end(), rng);
        const std::vector<std::int32_t> pos(all.begin(), all.begin() + s.n_tokens);
        const std::int64_t n = s.n_tokens * s.n_kv_heads * s.head_dim;
        const auto k = test::round_to(src, test::random_floats(rng, n));
        const auto v = test::round_to(src, test::random_floats(rng, n));
        Buffer kc = test::poisoned(device(), dst, {s.n_kv_heads, s.capacity, s.head_dim});
        Buffer vc = test::poisoned(device(), dst, {s.n_kv_heads, s.capacity, s.head_dim});
        append_on(device(), s, src, k, v, pos, kc, vc, false);
        std::vector<float> ek(kc.numel(), NAN), ev(vc.numel(), NAN);
        expect_rows(s, dst, k, pos, ek, false);
        expect_rows(s, dst, v, pos, ev, false);
        EXPECT_TRUE(same_cache(test::download(kc), ek));
        EXPECT_TRUE(same_cache(test::download(vc), ev));
      }
    }
  }
}

TEST_P(KvCacheTest, RingWrapsAndTheGreatestPositionWins) {
  auto rng = test::seeded_rng();
  const CacheShape s{21, 2, 64, 8};
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    Buffer kc = test::poisoned(device(), dt, {s.n_kv_heads, s.capacity, s.head_dim});
    Buffer vc = test::poisoned(device(), dt, {s.n_kv_heads, s.capacity, s.head_dim});
    std::vector<float> ek(kc.numel(), NAN), ev(vc.numel(), NAN);
    // One call with positions 0..20 in random order: slots hold positions 13..20.
    std::vector<std::int32_t> pos(21);
    std::iota(pos.begin(), pos.end(), 0);
    std::shuffle(pos.begin(), pos.end(), rng);
    const std::int64_t n = s.n_tokens * s.n_kv_heads * s.head_dim;
    const auto k = test::round_to(dt, test::random_floats(rng, n));
    const auto v = test::round_to(dt, test::random_floats(rng, n));
    append_on(device(), s, dt, k, v, pos, kc, vc, true);
    std::vector<std::int32_t> order(21);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return pos[a] < pos[b]; });
    for (int t : order) {  // the reference writes in position order: the greatest lands last
      const std::vector<std::int32_t> one{pos[t]};
      const std::int64_t row = s.n_kv_heads * s.head_dim;
      expect_rows(s, dt, std::vector<float>(k.begin() + t * row, k.begin() + (t + 1) * row), one,
                  ek, true);
      expect_rows(s, dt, std::vector<float>(v.begin() + t * row, v.begin() + (t + 1) * row), one,
                  ev, true);
    }
    EXPECT_TRUE(same_cache(test::download(kc), ek));
    EXPECT_TRUE(same_cache(test::download(vc), ev));
    // A later call with positions 21..23 overwrites slots 5..7 and leaves the rest.
    const CacheShape s3{3, 2, 64, 8};
    const std::vector<std::int32_t> next{22, 21, 23};
    const auto k3 = test::round_to(dt, test::random_floats(rng, 3 * 2 * 64));
    const auto v3 = test::round_to(dt, test::random_floats(rng, 3 * 2 * 64));
    append_on(device(), s3, dt, k3, v3, next, kc, vc, true);
    expect_rows(s3, dt, k3, next, ek, true);
    expect_rows(s3, dt, v3, next, ev, true);
    EXPECT_TRUE(same_cache(test::download(kc), ek));
    EXPECT_TRUE(same_cache(test::download(vc), ev));
  }
}

TEST_P(KvCacheTest, PositionOutsideTheCacheFailsTheCommandBuffer) {
  const CacheShape s{2, 1, 64, 8};
  const std::vector<float> k(2 * 64, 1.0f), v(2 * 64, 2.0f);
  for (const auto& [pos, ring] : {std::pair{std::vector<std::int32_t>{3, 8}, false},
                                  std::pair{std::vector<std::int32_t>{-1, 2}, false},
                                  std::pair{std::vector<std::int32_t>{5, -3}, true}}) {
    SCOPED_TRACE(std::to_string(pos[0]) + "," + std::to_string(pos[1]) + (ring ? " ring" : ""));
    Buffer kc = device().alloc(DType::F32, {1, 8, 64}), vc = device().alloc(DType::F32, {1, 8, 64});
    MLXN_EXPECT_ERROR(append_on(device(), s, DType::F32, k, v, pos, kc, vc, ring),
                      ErrorKind::CommandBuffer);
  }
}

TEST_P(KvCacheTest, InvalidArgumentsThrowBeforeQueuing) {
  Device& dev = device();
  CommandEncoder enc = dev.command_encoder();
  const Buffer k = dev.alloc(DType::F16, {4, 2, 64}), v = dev.alloc(DType::F16, {4, 2, 64});
  const Buffer pos = dev.alloc(DType::I32, {4});
  const Buffer kc = dev.alloc(DType::BF16, {2, 16, 64}), vc = dev.alloc(DType::BF16, {2, 16, 64});
  MLXN_EXPECT_ERROR(ops::kv_cache_append(enc, k, v, dev.alloc(DType::I64, {4}), kc, vc),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::kv_cache_append(enc, k, v, dev.alloc(DType::I32, {3}), kc, vc),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::kv_cache_append(enc, k, dev.alloc(DType::F32, {4, 2, 64}), pos, kc, vc),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::kv_cache_append(enc, k, v, pos, dev.alloc(DType::BF16, {3, 16, 64}),
                                         dev.alloc(DType::BF16, {3, 16, 64})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::kv_cache_append(enc, k, v, pos, kc, dev.alloc(DType::F16, {2, 16, 64})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::kv_cache_append(enc, dev.alloc(DType::F16, {4, 128}),
                                         dev.alloc(DType::F16, {4, 128}), pos, kc, vc),
                    ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
  ops::kv_cache_append(enc, k, v, pos, kc, vc);
  EXPECT_EQ(enc.pending_dispatches(), 1u);
  enc.discard();
}

MLXN_INSTANTIATE_BACKENDS(KvCacheTest);

class KvCacheCudaTest : public test::CudaVsCpuTest {};

TEST_F(KvCacheCudaTest, LargeAppendsAndRingMatchCpu) {
  auto rng = test::seeded_rng();
  struct Case {
    CacheShape shape;
    bool ring;
  };
  const Case cases[] = {{{4096, 8, 128, 8192}, false},  // a long prefill
                        {{1, 8, 128, 4096}, false},     // a decode step
                        {{3000, 8, 256, 1024}, true},   // prefill longer than a ring
                        {{77, 3, 33, 100}, false}};     // scalar path
  for (DType src : kFloatTypes) {
    for (DType dst : kFloatTypes) {
      for (const Case& c : cases) {
        const CacheShape& s = c.shape;
        SCOPED_TRACE(describe(src, dst, s) + (c.ring ? " ring" : ""));
        std::vector<std::int32_t> pos(s.n_tokens);
        std::iota(pos.begin(), pos.end(), c.ring ? 5 : 0);
        std::shuffle(pos.begin(), pos.end(), rng);
        const std::int64_t n = s.n_tokens * s.n_kv_heads * s.head_dim;
        const auto k = test::round_to(src, test::random_floats(rng, n));
        const auto v = test::round_to(src, test::random_floats(rng, n));
        std::vector<std::vector<float>> results;
        for (Device* dev : {&cpu_, &*cuda_}) {
          Buffer kc = test::poisoned(*dev, dst, {s.n_kv_heads, s.capacity, s.head_dim});
          Buffer vc = test::poisoned(*dev, dst, {s.n_kv_heads, s.capacity, s.head_dim});
          append_on(*dev, s, src, k, v, pos, kc, vc, c.ring);
          results.push_back(test::download(kc));
          results.push_back(test::download(vc));
        }
        EXPECT_TRUE(same_cache(results[2], results[0]));
        EXPECT_TRUE(same_cache(results[3], results[1]));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
