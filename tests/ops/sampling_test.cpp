// argmax, top-k and sample: exact results against references written here (ties by lower index),
// CUDA vs CPU token for token, planted values in vocab-sized rows, and the sampling edge cases.
#include "mlxn/ops/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr std::int64_t kVocab = 128256;

struct Shape2 {
  std::int64_t rows, cols;
};

Buffer upload_i32(Device& d, const std::vector<std::int32_t>& v) {
  Buffer b = d.alloc(DType::I32, {static_cast<std::int64_t>(v.size())});
  b.write(v);
  return b;
}

// Indices of a row in descending value order, ties by lower index (values already as stored).
std::vector<std::int32_t> ranked(const float* row, std::int64_t cols) {
  std::vector<std::int32_t> idx(cols);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t a, std::int32_t b) {
    return row[a] > row[b];  // stable: equal values keep index order
  });
  return idx;
}

// Logits that look like a model's: a few strong candidates over a long noisy tail, with exact
// duplicates of the top values planted (ties) and some -inf entries.
std::vector<float> logits_like(std::mt19937& rng, DType dt, Shape2 s) {
  std::vector<float> x = test::random_floats(rng, s.rows * s.cols, -6.f, 6.f);
  std::uniform_int_distribution<std::int64_t> col(0, s.cols - 1);
  for (std::int64_t r = 0; r < s.rows; ++r) {
    float* row = x.data() + r * s.cols;
    for (int i = 0; i < 8 && s.cols > 16; ++i) row[col(rng)] = 9.0f + 0.37f * i;
    if (s.cols > 16) row[col(rng)] = row[col(rng)];  // a tie somewhere
    if (s.cols > 16) row[col(rng)] = -kInf;
  }
  return test::round_to(dt, x);
}

// ---------------------------------------------------------------------------------------------
// argmax / top-k.

struct ArgmaxOut {
  std::vector<std::int32_t> idx;
  std::vector<float> val;
};

ArgmaxOut argmax_on(Device& d, DType dt, Shape2 s, const std::vector<float>& x) {
  Buffer xb = test::upload(d, x, dt, {s.rows, s.cols});
  Buffer idx = test::poisoned(d, DType::I32, {s.rows});
  Buffer val = test::poisoned(d, DType::F32, {s.rows});
  CommandEncoder enc = d.command_encoder();
  ops::argmax(enc, xb, idx, val);
  enc.commit_and_wait();
  return {idx.to_vector<std::int32_t>(), val.to_vector<float>()};
}

struct TopKOut {
  std::vector<float> values;
  std::vector<std::int32_t> indices;
};

TopKOut top_k_on(Device& d, DType dt, Shape2 s, std::int64_t k, const std::vector<float>& x) {
  Buffer xb = test::upload(d, x, dt, {s.rows, s.cols});
  Buffer values = test::poisoned(d, DType::F32, {s.rows, k});
  Buffer indices = test::poisoned(d, DType::I32, {s.rows, k});
  CommandEncoder enc = d.command_encoder();
  ops::top_k(enc, xb, k, values, indices);
  enc.commit_and_wait();
  return {values.to_vector<float>(), indices.to_vector<std::int32_t>()};
}

void expect_top_k_exact(const TopKOut& got, const std::vector<float>& x, Shape2 s, std::int64_t k) {
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const auto order = ranked(x.data() + r * s.cols, s.cols);
    for (std::int64_t j = 0; j < k; ++j) {
      ASSERT_EQ(got.indices[r * k + j], order[j]) << "row " << r << " rank " << j;
      ASSERT_EQ(got.values[r * k + j], x[r * s.cols + order[j]]) << "row " << r << " rank " << j;
    }
  }
}

class ArgmaxTopKTest : public BackendTest {};

TEST_P(ArgmaxTopKTest, ArgmaxIsTheLowestIndexOfTheMaximum) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Shape2 s : {Shape2{1, 1}, Shape2{5, 33}, Shape2{3, 1000}, Shape2{2, 30001}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.rows) + "x" +
                   std::to_string(s.cols));
      auto x = logits_like(rng, dt, s);
      // Plant the maximum twice in row 0: the lower index must win.
      if (s.cols > 4) x[s.cols - 1] = x[2] = 100.0f;
      const auto got = argmax_on(device(), dt, s, x);
      for (std::int64_t r = 0; r < s.rows; ++r) {
        const std::int32_t want = ranked(x.data() + r * s.cols, s.cols)[0];
        EXPECT_EQ(got.idx[r], want) << "row " << r;
        EXPECT_EQ(got.val[r], x[r * s.cols + want]) << "row " << r;
      }
    }
  }
}

TEST_P(ArgmaxTopKTest, ArgmaxEdgeCases) {
  const Shape2 s{4, 70};
  std::vector<float> x(s.rows * s.cols, 0.25f);                     // row 0: all equal -> 0
  for (std::int64_t c = 0; c < s.cols; ++c) x[s.cols + c] = -kInf;  // row 1: all -inf -> 0
  x[2 * s.cols + 69] = kInf;                                        // row 2: +inf wins
  x[3 * s.cols + 5] = -0.0f;                                        // row 3: -0 == +0
  for (std::int64_t c = 0; c < s.cols; ++c) x[3 * s.cols + c] = c == 5 ? -0.0f : -1.0f;
  x[3 * s.cols + 9] = 0.0f;
  const auto got = argmax_on(device(), DType::F32, s, x);
  EXPECT_EQ(got.idx, (std::vector<std::int32_t>{0, 0, 69, 5}));
  EXPECT_EQ(got.val[1], -kInf);
  EXPECT_EQ(got.val[2], kInf);
}

TEST_P(ArgmaxTopKTest, TopKMatchesSortedReferenceExactly) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (auto [s, k] : {std::pair{Shape2{1, 1}, 1}, std::pair{Shape2{3, 100}, 100},
                        std::pair{Shape2{4, 1000}, 40}, std::pair{Shape2{2, 5003}, 1024},
                        std::pair{Shape2{2, 20000}, 1}, std::pair{Shape2{1, 20000}, 777}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.rows) + "x" +
                   std::to_string(s.cols) + " k=" + std::to_string(k));
      const auto x = logits_like(rng, dt, s);
      expect_top_k_exact(top_k_on(device(), dt, s, k, x), x, s, k);
    }
  }
}

TEST_P(ArgmaxTopKTest, TopKTiesTakeLowerIndicesFirst) {
  // Every value equal: the top-k are indices 0..k-1. Then a plateau split by k.
  const Shape2 s{2, 3000};
  std::vector<float> x(s.rows * s.cols, 1.5f);
  for (std::int64_t c = 0; c < s.cols; ++c) x[s.cols + c] = (c % 3 == 0) ? 2.0f : -kInf;
  const std::int64_t k = 1024;
  expect_top_k_exact(top_k_on(device(), DType::F32, s, k, x), x, s, k);
  expect_top_k_exact(top_k_on(device(), DType::BF16, s, k, x), x, s, k);
}

TEST_P(ArgmaxTopKTest, RejectsBadArguments) {
  Buffer x = device().alloc(DType::F32, {2, 10});
  Buffer v = device().alloc(DType::F32, {2, 11});
  Buffer i = device().alloc(DType::I32, {2, 11});
  Buffer idx = device().alloc(DType::I32, {2});
  Buffer val = device().alloc(DType::F32, {2});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::top_k(enc, x, 11, v, i), ErrorKind::InvalidArgument);  // k > cols
  MLXN_EXPECT_ERROR(ops::top_k(enc, x, 0, v, i), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::top_k(enc, x, 3, v, i), ErrorKind::InvalidArgument);    // sizes
  MLXN_EXPECT_ERROR(ops::argmax(enc, x, val, idx), ErrorKind::InvalidArgument);  // dtypes
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(ArgmaxTopKTest);

// ---------------------------------------------------------------------------------------------
// sample.

struct RowSettings {
  float temperature = 1.0f;
  std::int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float u = 0.5f;
};

// The reference sampler: the header's algorithm in double, plus how close its decisions came to
// a boundary (relative), so tests can avoid cases where float rounding may legitimately differ.
struct RefDraw {
  std::int32_t token;
  double margin;
};

RefDraw sample_ref(const float* row, std::int64_t vocab, const RowSettings& s) {
  const auto order = ranked(row, vocab);
  const float x_max = row[order[0]];
  if (!(s.temperature > 0.0f) || !std::isfinite(x_max)) return {order[0], 1.0};
  std::vector<double> w(vocab), cum(vocab + 1, 0.0);
  const double l_max = double(x_max) / s.temperature;
  for (std::int64_t j = 0; j < vocab; ++j) {
    w[j] = std::exp(double(row[order[j]]) / s.temperature - l_max);
    cum[j + 1] = cum[j] + w[j];
  }
  double margin = 1.0;
  std::int64_t n = (s.top_k > 0 && s.top_k < vocab) ? s.top_k : vocab;
  if (s.top_p > 0.0f && s.top_p < 1.0f) {
    const double t = double(s.top_p) * cum[n];
    std::int64_t m = 1;
    while (m < n && cum[m] < t) ++m;
    margin = std::min({margin, std::abs(cum[m] - t) / cum[n], std::abs(cum[m - 1] - t) / cum[n]});
    n = m;
  }
  if (s.min_p > 0.0f) {
    const double thr = std::min(s.min_p, 1.0f);
    std::int64_t m = 0;
    while (m < n && w[m] >= thr) ++m;
    for (std::int64_t j = std::max<std::int64_t>(0, m - 1); j < std::min(n, m + 1); ++j) {
      if (w[j] > 0) margin = std::min(margin, std::abs(w[j] - thr) / thr);
    }
    n = std::max<std::int64_t>(m, 1);
  }
  const double t = double(s.u) * cum[n];
  std::int64_t r = 0;
  while (r < n - 1 && cum[r + 1] <= t) ++r;
  margin = std::min(margin, std::abs(t - cum[r]) / cum[n]);
  if (r + 1 <= n) margin = std::min(margin, std::abs(cum[r + 1] - t) / cum[n]);
  return {order[r], margin};
}

std::vector<std::int32_t> sample_on(Device& d, DType dt, Shape2 s, const std::vector<float>& x,
                                    const std::vector<RowSettings>& rs) {
  std::vector<float> temp, top_p, min_p, u;
  std::vector<std::int32_t> top_k;
  for (const auto& r : rs) {
    temp.push_back(r.temperature);
    top_k.push_back(r.top_k);
    top_p.push_back(r.top_p);
    min_p.push_back(r.min_p);
    u.push_back(r.u);
  }
  Buffer logits = test::upload(d, x, dt, {s.rows, s.cols});
  ops::SamplingRowParams p{test::upload(d, temp, DType::F32), upload_i32(d, top_k),
                           test::upload(d, top_p, DType::F32), test::upload(d, min_p, DType::F32)};
  Buffer ub = test::upload(d, u, DType::F32);
  Buffer tokens = test::poisoned(d, DType::I32, {s.rows});
  CommandEncoder enc = d.command_encoder();
  ops::sample(enc, logits, p, ub, tokens);
  enc.commit_and_wait();
  return tokens.to_vector<std::int32_t>();
}

// Random settings for every row, redrawn until the reference's decisions are clear of float
// rounding (margin 1e-4 relative, far above f32 summation error over 2^17 terms).
std::vector<RowSettings> random_settings(std::mt19937& rng, const std::vector<float>& x, Shape2 s,
                                         std::vector<std::int32_t>& want) {
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<RowSettings> rs(s.rows);
  want.assign(s.rows, -1);
  for (std::int64_t r = 0; r < s.rows; ++r) {
    for (int attempt = 0;; ++attempt) {
      RowSettings& o = rs[r];
      const int kind = (r + attempt) % 6;  // cycle through the warpers and their combinations
      o.temperature = 0.3f + 1.5f * uni(rng);
      o.top_k = (kind == 1 || kind == 4) ? 1 + static_cast<std::int32_t>(uni(rng) * 200) : 0;
      if (kind == 5) o.top_k = static_cast<std::int32_t>(s.cols / 2 + 1);
      o.top_p = (kind == 2 || kind == 4 || kind == 5) ? 0.2f + 0.75f * uni(rng) : 1.0f;
      o.min_p = (kind == 3 || kind == 4) ? 0.002f + 0.2f * uni(rng) : 0.0f;
      o.u = uni(rng);
      const RefDraw d = sample_ref(x.data() + r * s.cols, s.cols, o);
      if (d.margin > 1e-4 || attempt > 200) {
        want[r] = d.token;
        break;
      }
    }
  }
  return rs;
}

class SampleTest : public BackendTest {};

TEST_P(SampleTest, MatchesReferenceSamplerExactly) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Shape2 s : {Shape2{64, 100}, Shape2{48, 1001}, Shape2{6, 12345}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.rows) + "x" +
                   std::to_string(s.cols));
      const auto x = logits_like(rng, dt, s);
      std::vector<std::int32_t> want;
      const auto rs = random_settings(rng, x, s, want);
      EXPECT_EQ(sample_on(device(), dt, s, x, rs), want);
    }
  }
}

TEST_P(SampleTest, GreedyAndTopK1AreArgmax) {
  auto rng = test::seeded_rng();
  const Shape2 s{6, 3001};
  auto x = logits_like(rng, DType::BF16, s);
  for (std::int64_t r = 0; r < s.rows; ++r) x[r * s.cols + 100 + r] = 40.0f;  // a unique top
  x[5] = x[7] = 50.0f;  // but a tie at the top of row 0: lower index
  std::vector<RowSettings> rs(s.rows);
  rs[0].temperature = 0.0f;
  rs[1].temperature = -1.0f;
  rs[2].temperature = std::numeric_limits<float>::quiet_NaN();
  rs[3].top_k = 1;
  rs[3].u = 0.999f;
  rs[4].temperature = 0.0f;
  rs[4].top_p = 0.01f;
  rs[5].min_p = 1.0f;  // only tokens as likely as the top one
  rs[5].u = 0.99f;
  const auto got = sample_on(device(), DType::BF16, s, x, rs);
  const auto am = argmax_on(device(), DType::BF16, s, x);
  EXPECT_EQ(got, am.idx);
  EXPECT_EQ(got[0], 5);
}

TEST_P(SampleTest, EdgeCases) {
  // Row 0: all-equal logits, no truncation: inverse CDF in index order -> token floor(u * V).
  // Row 1: -inf everywhere except three tokens: never draws a -inf token, even at u -> 1.
  // Row 2: top_p = 1 and min_p = 0 are no-ops; top_k = vocab is a no-op.
  // Row 3: all -inf: greedy fallback to index 0.
  const Shape2 s{4, 1000};
  std::vector<float> x(s.rows * s.cols, 0.5f);
  for (std::int64_t c = 0; c < s.cols; ++c) x[s.cols + c] = -kInf;
  x[s.cols + 10] = 1.0f;
  x[s.cols + 500] = 1.0f;
  x[s.cols + 999] = 0.0f;
  for (std::int64_t c = 0; c < s.cols; ++c) x[2 * s.cols + c] = float(c % 17) * 0.1f;
  for (std::int64_t c = 0; c < s.cols; ++c) x[3 * s.cols + c] = -kInf;
  std::vector<RowSettings> rs(s.rows);
  rs[0].u = 0.4275f;  // 427.5 / 1000
  rs[1].u = 0.99999f;
  rs[2].u = 0.3f;
  rs[2].top_k = 1000;
  const auto got = sample_on(device(), DType::F32, s, x, rs);
  EXPECT_EQ(got[0], 427);
  EXPECT_EQ(got[1], 999);
  EXPECT_EQ(got[2], sample_ref(x.data() + 2 * s.cols, s.cols, rs[2]).token);
  EXPECT_EQ(got[3], 0);
  // u = 0 picks the top token; among -inf rows nothing else is ever drawn.
  for (float u : {0.0f, 0.25f, 0.5f, 0.75f}) {
    rs[1].u = u;
    const auto t = sample_on(device(), DType::F32, s, x, rs)[1];
    EXPECT_TRUE(t == 10 || t == 500 || t == 999) << u << " -> " << t;
  }
}

TEST_P(SampleTest, RejectsBadArguments) {
  Buffer logits = device().alloc(DType::F32, {2, 10});
  Buffer f2 = device().alloc(DType::F32, {2});
  Buffer i2 = device().alloc(DType::I32, {2});
  Buffer f3 = device().alloc(DType::F32, {3});
  CommandEncoder enc = device().command_encoder();
  MLXN_EXPECT_ERROR(ops::sample(enc, logits, {f2, i2, f2, f2}, f3, i2), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::sample(enc, logits, {f2, f2, f2, f2}, f2, i2), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::sample(enc, logits, {f2, i2, f2, f2}, f2, f2), ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(SampleTest);

// ---------------------------------------------------------------------------------------------
// CUDA vs CPU at vocab size.

class SamplingCudaTest : public test::CudaVsCpuTest {};

TEST_F(SamplingCudaTest, ArgmaxAndTopKAtVocabSizeWithPlantedValues) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Shape2 s : {Shape2{1, kVocab}, Shape2{32, kVocab}, Shape2{3, 256001}, Shape2{9, 77}}) {
      const auto x = logits_like(rng, dt, s);
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.rows) + "x" +
                   std::to_string(s.cols));
      const auto am = argmax_on(*cuda_, dt, s, x);
      for (std::int64_t r = 0; r < s.rows; ++r) {
        EXPECT_EQ(am.idx[r], ranked(x.data() + r * s.cols, s.cols)[0]) << r;
      }
      for (std::int64_t k : {1, 8, 50, 1000, 1024}) {
        if (k > s.cols) continue;
        SCOPED_TRACE("k=" + std::to_string(k));
        expect_top_k_exact(top_k_on(*cuda_, dt, s, k, x), x, s, k);
      }
    }
  }
}

TEST_F(SamplingCudaTest, SampleMatchesCpuTokenForToken) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (Shape2 s : {Shape2{32, kVocab}, Shape2{64, 1001}, Shape2{16, 33}, Shape2{4, 200003}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.rows) + "x" +
                   std::to_string(s.cols));
      const auto x = logits_like(rng, dt, s);
      std::vector<std::int32_t> want;
      const auto rs = random_settings(rng, x, s, want);
      const auto got = sample_on(*cuda_, dt, s, x, rs);
      EXPECT_EQ(got, sample_on(cpu_, dt, s, x, rs));
      EXPECT_EQ(got, want);
    }
  }
}

TEST_F(SamplingCudaTest, MisalignedViewsUseTheScalarPath) {
  auto rng = test::seeded_rng();
  const Shape2 s{3, 4096};
  const auto x = test::random_floats(rng, s.rows * s.cols + 1, -5.f, 5.f);
  std::vector<std::int32_t> got[2];
  int i = 0;
  for (Device* d : {&cpu_, &*cuda_}) {
    Buffer all = test::upload(*d, x, DType::F32);
    Buffer xv = all.view(4, s.rows * s.cols * 4, DType::F32, {s.rows, s.cols});
    Buffer values = test::poisoned(*d, DType::F32, {s.rows, 64});
    Buffer indices = test::poisoned(*d, DType::I32, {s.rows, 64});
    CommandEncoder enc = d->command_encoder();
    ops::top_k(enc, xv, 64, values, indices);
    enc.commit_and_wait();
    got[i++] = indices.to_vector<std::int32_t>();
  }
  EXPECT_EQ(got[0], got[1]);
}

}  // namespace
}  // namespace mlxn
