// ops::apply_penalties for f32/f16/bf16: each backend vs a float64 reference written here (with
// padding pairs, pairs past n_valid and foreign ids that must be ignored), neutral settings that
// dispatch nothing, argument checks, and CUDA vs CPU element for element.
#include "mlxn/ops/penalties.h"

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

struct Penalties {
  float repetition, presence, frequency;
};
// Each penalty alone, all together, and a repetition penalty below 1 (which boosts).
constexpr Penalties kSettings[] = {{1.3f, 0.0f, 0.0f},
                                   {1.0f, 0.7f, 0.0f},
                                   {1.0f, 0.0f, 0.25f},
                                   {1.15f, 0.4f, 0.3f},
                                   {0.8f, -0.5f, 0.1f}};

struct Case {
  std::int64_t rows, vocab, n, n_valid;
};
constexpr Case kCases[] = {{1, 10, 3, 3}, {3, 1000, 64, 50}, {5, 4099, 300, 257}, {2, 32, 32, 32}};

// Pairs for every row: n_valid entries of which most are distinct valid ids with counts 1..6 and
// a few are to be ignored (id -1, id = vocab, count 0, count < 0); entries past n_valid are valid
// pairs that must be ignored too.
std::vector<std::int32_t> make_pairs(std::mt19937& rng, const Case& c) {
  std::vector<std::int32_t> pairs(static_cast<std::size_t>(c.rows * c.n * 2));
  std::uniform_int_distribution<int> count(1, 6);
  std::uniform_int_distribution<int> kind(0, 9);
  for (std::int64_t r = 0; r < c.rows; ++r) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(c.vocab));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (std::int64_t j = 0; j < c.n; ++j) {
      std::int32_t id = ids[static_cast<std::size_t>(j % c.vocab)];
      std::int32_t cnt = count(rng);
      if (j < c.n_valid && c.vocab > 10) {
        switch (kind(rng)) {
          case 0:
            id = -1;
            break;
          case 1:
            id = static_cast<std::int32_t>(c.vocab);
            break;
          case 2:
            cnt = 0;
            break;
          case 3:
            cnt = -3;
            break;
          default:
            break;
        }
      }
      pairs[static_cast<std::size_t>((r * c.n + j) * 2)] = id;
      pairs[static_cast<std::size_t>((r * c.n + j) * 2 + 1)] = cnt;
    }
  }
  return pairs;
}

std::vector<double> reference(const std::vector<float>& logits,
                              const std::vector<std::int32_t>& pairs, const Case& c,
                              const Penalties& p) {
  std::vector<double> out(logits.begin(), logits.end());
  for (std::int64_t r = 0; r < c.rows; ++r) {
    for (std::int64_t j = 0; j < c.n_valid; ++j) {
      const std::int32_t id = pairs[static_cast<std::size_t>((r * c.n + j) * 2)];
      const std::int32_t cnt = pairs[static_cast<std::size_t>((r * c.n + j) * 2 + 1)];
      if (id < 0 || id >= c.vocab || cnt <= 0) continue;
      double& x = out[static_cast<std::size_t>(r * c.vocab + id)];
      x = x > 0 ? x / p.repetition : x * p.repetition;
      x -= double(cnt) * p.frequency + double(p.presence);
    }
  }
  return out;
}

std::vector<float> run(Device& d, DType dt, const Case& c, const std::vector<float>& logits,
                       const std::vector<std::int32_t>& pairs, const Penalties& p) {
  Buffer lg = test::upload(d, logits, dt, {c.rows, c.vocab});
  Buffer pb = d.alloc(DType::I32, {c.rows, c.n, 2});
  pb.write(pairs);
  CommandEncoder enc = d.command_encoder();
  ops::apply_penalties(enc, lg, pb, c.n_valid, p.repetition, p.presence, p.frequency);
  enc.commit_and_wait();
  return test::download(lg);
}

std::string describe(DType dt, const Case& c, const Penalties& p) {
  return std::string(dtype_name(dt)) + " rows=" + std::to_string(c.rows) +
         " vocab=" + std::to_string(c.vocab) + " n=" + std::to_string(c.n) +
         " n_valid=" + std::to_string(c.n_valid) + " rep=" + std::to_string(p.repetition) +
         " pres=" + std::to_string(p.presence) + " freq=" + std::to_string(p.frequency);
}

class PenaltiesTest : public BackendTest {};

TEST_P(PenaltiesTest, MatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (const Case& c : kCases) {
      for (const Penalties& p : kSettings) {
        SCOPED_TRACE(describe(dt, c, p));
        const std::vector<float> logits =
            test::round_to(dt, test::random_floats(rng, c.rows * c.vocab, -8.0f, 8.0f));
        const std::vector<std::int32_t> pairs = make_pairs(rng, c);
        const std::vector<double> want = reference(logits, pairs, c, p);
        const std::vector<float> got = run(device(), dt, c, logits, pairs, p);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_LE(test::rel_l2(got, want), test::dtype_tolerance(dt, 1e-6));
        // Element by element: penalized logits within one rounding of the dtype, the rest
        // untouched bit for bit.
        const double ulp = dt == DType::F32 ? 1e-6 : dt == DType::F16 ? 1e-3 : 8e-3;
        std::size_t changed = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
          if (want[i] == double(logits[i])) {
            ASSERT_EQ(got[i], logits[i]) << "untouched logit " << i << " changed";
          } else {
            ++changed;
            ASSERT_LE(std::abs(got[i] - want[i]), ulp * std::max(1.0, std::abs(want[i])))
                << "logit " << i;
          }
        }
        EXPECT_GT(changed, 0u);
      }
    }
  }
}

TEST_P(PenaltiesTest, PositiveLogitsAreDividedNegativeMultiplied) {
  // Small exact cases: rep 2 halves 3 and doubles -3; 0 stays 0; presence 1 and frequency 0.5
  // with count 2 subtract 2.
  const Case c{1, 6, 4, 4};
  const std::vector<float> logits{3.0f, -3.0f, 0.0f, 5.0f, 1.0f, -1.0f};
  const std::vector<std::int32_t> pairs{0, 1, 1, 1, 2, 1, 4, 2};
  EXPECT_EQ(run(device(), DType::F32, c, logits, pairs, {2.0f, 0.0f, 0.0f}),
            (std::vector<float>{1.5f, -6.0f, 0.0f, 5.0f, 0.5f, -1.0f}));
  EXPECT_EQ(run(device(), DType::F32, c, logits, pairs, {1.0f, 1.0f, 0.5f}),
            (std::vector<float>{1.5f, -4.5f, -1.5f, 5.0f, -1.0f, -1.0f}));
}

TEST_P(PenaltiesTest, NeutralSettingsAndNoPairsDispatchNothing) {
  Buffer lg = device().alloc(DType::F32, {2, 10});
  Buffer pb = device().alloc(DType::I32, {2, 4, 2});
  CommandEncoder enc = device().command_encoder();
  ops::apply_penalties(enc, lg, pb, 4, 1.0f, 0.0f, 0.0f);
  ops::apply_penalties(enc, lg, pb, 0, 1.3f, 0.5f, 0.5f);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
  ops::apply_penalties(enc, lg, pb, 4, 1.3f, 0.0f, 0.0f);
  EXPECT_EQ(enc.pending_dispatches(), 1u);
  enc.commit_and_wait();
}

TEST_P(PenaltiesTest, RejectsBadArguments) {
  Buffer lg = device().alloc(DType::F32, {2, 10});
  Buffer pb = device().alloc(DType::I32, {2, 4, 2});
  Buffer wrong_rows = device().alloc(DType::I32, {3, 4, 2});
  Buffer flat = device().alloc(DType::I32, {16});
  Buffer f32_pairs = device().alloc(DType::F32, {2, 4, 2});
  Buffer ints = device().alloc(DType::I32, {2, 10});
  CommandEncoder enc = device().command_encoder();
  const auto kInvalid = ErrorKind::InvalidArgument;
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, wrong_rows, 4, 1.3f, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, flat, 4, 1.3f, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, f32_pairs, 4, 1.3f, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, pb, 5, 1.3f, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, pb, -1, 1.3f, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, pb, 4, 0.0f, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, pb, 4, NAN, 0, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, lg, pb, 4, 1.0f, INFINITY, 0), kInvalid);
  MLXN_EXPECT_ERROR(ops::apply_penalties(enc, ints, pb, 4, 1.3f, 0, 0),
                    ErrorKind::UnsupportedDType);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(PenaltiesTest);

// CUDA vs CPU: both compute in f32 with every operation rounded, so they agree exactly.
TEST(PenaltiesCudaTest, MatchesCpuExactly) {
  std::string reason;
  std::optional<Device> cuda = test::open_cuda_or_reason(reason);
  if (!cuda) GTEST_SKIP() << "no CUDA device: " << reason;
  Device cpu = Device::open(Backend::Cpu);
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (const Case& c : {Case{4, 151936, 2048, 2000}, Case{32, 32000, 64, 64}}) {
      for (const Penalties& p : kSettings) {
        SCOPED_TRACE(describe(dt, c, p));
        const std::vector<float> logits =
            test::round_to(dt, test::random_floats(rng, c.rows * c.vocab, -20.0f, 20.0f));
        const std::vector<std::int32_t> pairs = make_pairs(rng, c);
        EXPECT_EQ(run(*cuda, dt, c, logits, pairs, p), run(cpu, dt, c, logits, pairs, p));
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
