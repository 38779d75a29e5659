// EncoderSession: lifecycle, chained stages, command-buffer savings, drop safety, device errors
// and cross-queue ordering through the session timeline.
#include "mlxn/core/encoder_session.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mlxn/core/counters.h"
#include "mlxn/ops/debug.h"
#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class SessionTest : public BackendTest {
 protected:
  // Checks `out` == a + b elementwise (exact in f32) on a freshly encoded add: proves the device
  // still works after whatever the test did before.
  void expect_device_usable() {
    auto rng = test::seeded_rng();
    const auto av = test::random_floats(rng, 1000);
    const auto bv = test::random_floats(rng, 1000);
    Buffer a = test::upload(device(), av, DType::F32);
    Buffer b = test::upload(device(), bv, DType::F32);
    Buffer out = test::poisoned(device(), DType::F32, {1000});
    CommandEncoder enc = device().command_encoder();
    ops::add(enc, a, b, out);
    enc.commit_and_wait();
    const auto got = out.to_vector<float>();
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], av[i] + bv[i]) << "device unusable: element " << i;
    }
  }
};

TEST_P(SessionTest, Lifecycle) {
  Buffer a = test::upload(device(), {1, 2, 3, 4}, DType::F32);
  Buffer b = test::upload(device(), {10, 20, 30, 40}, DType::F32);
  Buffer out = device().alloc(DType::F32, {4});
  EncoderSession s = device().encoder_session();
  EXPECT_EQ(s.fence_value(), 0u);
  EXPECT_EQ(s.wait_value(), 0u);
  EXPECT_EQ(s.wait_count(), 0u);
  EXPECT_FALSE(s.has_event());
  EXPECT_FALSE(s.is_fence_pending());
  EXPECT_FALSE(s.is_drained());

  // Not drained: reset is a no-op (no command buffer, no wait).
  auto cb = counters::read().command_buffers;
  s.reset_for_next_stage();
  EXPECT_EQ(counters::read().command_buffers, cb);
  EXPECT_EQ(s.wait_count(), 0u);
  EXPECT_FALSE(s.is_drained());

  s.begin_stage("stage.a");
  EXPECT_EQ(s.label(), "stage.a");
  ops::add(s.encoder(), a, b, out);
  s.fence_stage();
  EXPECT_EQ(s.fence_value(), 1u);
  EXPECT_TRUE(s.has_event());
  EXPECT_TRUE(s.is_drained());
  EXPECT_TRUE(s.is_fence_pending());

  // Already drained: a second fence and a commit_stage are no-ops.
  s.fence_stage("again");
  EXPECT_EQ(s.fence_value(), 1u);
  s.commit_stage();
  EXPECT_EQ(s.fence_value(), 1u);
  EXPECT_TRUE(s.is_fence_pending());

  cb = counters::read().command_buffers;
  s.reset_for_next_stage();
  EXPECT_EQ(counters::read().command_buffers, cb + 1) << "reset opens one command buffer";
  EXPECT_EQ(s.wait_count(), 1u);
  EXPECT_EQ(s.wait_value(), 1u);
  EXPECT_TRUE(s.label().empty()) << "reset clears the label";
  // Not drained any more: a second reset does nothing.
  s.reset_for_next_stage();
  EXPECT_EQ(counters::read().command_buffers, cb + 1);
  EXPECT_EQ(s.wait_count(), 1u);

  // A stage committed without a fence: drained, no fence pending, so the next reset emits no wait.
  ops::add(s.encoder(), out, b, out);
  s.commit_stage();
  EXPECT_TRUE(s.is_drained());
  EXPECT_FALSE(s.is_fence_pending());
  EXPECT_EQ(s.fence_value(), 1u);
  s.reset_for_next_stage();
  EXPECT_EQ(s.wait_count(), 1u);
  EXPECT_FALSE(s.is_drained());
  ops::add(s.encoder(), out, b, out);
  s.commit_and_wait();
  EXPECT_EQ(s.timeline().completed_value(), 1u);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{31, 62, 93, 124}));
}

TEST_P(SessionTest, MultistageRoundTripFeedsEachStageIntoTheNext) {
  constexpr int kStages = 6;
  const std::int64_t n = is_cuda() ? (1 << 20) + 3 : (1 << 16) + 3;
  auto rng = test::seeded_rng();
  const auto x0 = test::random_floats(rng, n);
  const auto bv = test::random_floats(rng, n);
  std::vector<Buffer> bufs{test::upload(device(), x0, DType::F32)};
  for (int i = 1; i <= kStages; ++i) bufs.push_back(test::poisoned(device(), DType::F32, {n}));
  Buffer b = test::upload(device(), bv, DType::F32);

  EncoderSession s = device().encoder_session();
  for (int i = 1; i <= kStages; ++i) {
    ops::add(s.encoder(), bufs[i - 1], b, bufs[i]);
    s.fence_stage("roundtrip.stage" + std::to_string(i));
    if (i < kStages) s.reset_for_next_stage();
  }
  s.wait_until_completed();
  EXPECT_EQ(s.fence_value(), static_cast<std::uint64_t>(kStages));
  EXPECT_EQ(s.wait_count(), static_cast<std::uint64_t>(kStages - 1));

  std::vector<float> expected = x0;
  for (int i = 1; i <= kStages; ++i) {
    for (std::int64_t j = 0; j < n; ++j) expected[j] = expected[j] + bv[j];
    const auto got = bufs[i].to_vector<float>();
    for (std::int64_t j = 0; j < n; ++j) {
      ASSERT_EQ(got[j], expected[j]) << "stage " << i << " element " << j;
    }
  }
}

TEST_P(SessionTest, ChainWithResetAfterEveryStageCountsNWaits) {
  constexpr std::uint64_t kStages = 12;
  auto rng = test::seeded_rng();
  const auto x0 = test::random_floats(rng, 4096);
  const auto bv = test::random_floats(rng, 4096);
  Buffer acc = test::upload(device(), x0, DType::F32);
  Buffer b = test::upload(device(), bv, DType::F32);

  EncoderSession s = device().encoder_session();
  for (std::uint64_t i = 0; i < kStages; ++i) {
    ops::add(s.encoder(), acc, b, acc);
    s.fence_stage();
    s.reset_for_next_stage();
    ASSERT_EQ(s.wait_count(), i + 1);
    ASSERT_EQ(s.wait_value(), i + 1);
  }
  s.commit_and_wait();
  EXPECT_EQ(s.fence_value(), kStages);
  EXPECT_EQ(s.wait_count(), kStages);
  EXPECT_EQ(s.wait_value(), kStages);

  std::vector<float> expected = x0;
  for (std::uint64_t i = 0; i < kStages; ++i) {
    for (std::size_t j = 0; j < expected.size(); ++j) expected[j] = expected[j] + bv[j];
  }
  EXPECT_EQ(acc.to_vector<float>(), expected);
}

TEST_P(SessionTest, SessionUsesHalfTheCommandBuffersOfOnePerSubStage) {
  constexpr int kStages = 8;
  Buffer a = test::upload(device(), std::vector<float>(256, 1.5f), DType::F32);
  Buffer b = test::upload(device(), std::vector<float>(256, 2.0f), DType::F32);
  Buffer sum = device().alloc(DType::F32, {256});
  Buffer prod = device().alloc(DType::F32, {256});

  counters::reset();
  {
    CommandEncoder enc = device().command_encoder();
    for (int j = 0; j < 2 * kStages; ++j) {
      if (j % 2 == 0)
        ops::add(enc, a, b, sum);
      else
        ops::mul(enc, a, b, prod);
      enc.commit();
    }
    enc.wait();
  }
  const CounterSnapshot separate = counters::read();

  counters::reset();
  {
    EncoderSession s = device().encoder_session();
    for (int k = 0; k < kStages; ++k) {
      ops::add(s.encoder(), a, b, sum);
      ops::mul(s.encoder(), a, b, prod);
      s.fence_stage();
      if (k + 1 < kStages) s.reset_for_next_stage();
    }
    s.wait_until_completed();
  }
  const CounterSnapshot session = counters::read();

  EXPECT_EQ(separate.dispatches, 2u * kStages);
  EXPECT_EQ(session.dispatches, 2u * kStages);
  EXPECT_EQ(separate.command_buffers, 2u * kStages);
  EXPECT_EQ(session.command_buffers, static_cast<std::uint64_t>(kStages));
  EXPECT_EQ(2 * session.command_buffers, separate.command_buffers);
  EXPECT_EQ(sum.to_vector<float>(), std::vector<float>(256, 3.5f));
  EXPECT_EQ(prod.to_vector<float>(), std::vector<float>(256, 3.0f));
}

TEST_P(SessionTest, DroppingSessionsWithOpenWorkIsSafe) {
  Buffer a = test::upload(device(), {1, 2, 3, 4}, DType::F32);
  Buffer b = test::upload(device(), {10, 20, 30, 40}, DType::F32);
  Buffer uncommitted = device().alloc(DType::F32, {4});
  Buffer fenced = device().alloc(DType::F32, {4});
  Buffer next_stage = device().alloc(DType::F32, {4});
  const std::vector<float> zeros(4, 0.0f), sum{11, 22, 33, 44};
  {
    EncoderSession s = device().encoder_session();
    ops::add(s.encoder(), a, b, uncommitted);
  }
  {
    EncoderSession s = device().encoder_session();
    ops::add(s.encoder(), a, b, fenced);
    s.fence_stage("drop.fenced");
  }
  device().synchronize();
  EXPECT_EQ(uncommitted.to_vector<float>(), zeros) << "uncommitted work must be dropped";
  EXPECT_EQ(fenced.to_vector<float>(), sum) << "fenced work must complete";

  fenced.write(zeros);
  {
    EncoderSession s = device().encoder_session();
    ops::add(s.encoder(), a, b, fenced);
    s.fence_stage("drop.fenced_then_reset");
    s.reset_for_next_stage();
    ops::add(s.encoder(), a, b, next_stage);
  }
  device().synchronize();
  EXPECT_EQ(fenced.to_vector<float>(), sum);
  EXPECT_EQ(next_stage.to_vector<float>(), zeros) << "the open stage after the reset is dropped";
  expect_device_usable();
}

TEST_P(SessionTest, AssertFinitePassesOnFiniteData) {
  auto rng = test::seeded_rng();
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    Buffer x = test::upload(device(), test::random_floats(rng, 3001), dt);
    EncoderSession s = device().encoder_session();
    ops::assert_finite(s.encoder(), x);
    EXPECT_NO_THROW(s.commit_and_wait()) << dtype_name(dt);
  }
}

TEST_P(SessionTest, DeviceErrorOfTheLastStageSurfacesFromCommitAndWait) {
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<float> xv(3001, 0.5f);
    xv[1777] = std::numeric_limits<float>::quiet_NaN();
    Buffer x = test::upload(device(), xv, dt);
    Buffer out = device().alloc(dt, {3001});
    EncoderSession s = device().encoder_session();
    ops::add(s.encoder(), x, x, out);
    s.fence_stage("error.stage0");
    s.reset_for_next_stage();
    ops::assert_finite(s.encoder(), x);
    auto err = test::capture_error([&] { s.commit_and_wait(); });
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind(), ErrorKind::CommandBuffer) << err->what();
    EXPECT_NE(std::string(err->what()).find("assert_finite"), std::string::npos) << err->what();
  }
  expect_device_usable();
}

TEST_P(SessionTest, DeviceErrorOfAnEarlierFencedStageSurfaces) {
  std::vector<float> xv(1000, 1.0f);
  xv[3] = std::numeric_limits<float>::infinity();
  Buffer x = test::upload(device(), xv, DType::F32);
  Buffer out = device().alloc(DType::F32, {1000});
  {
    EncoderSession s = device().encoder_session();
    ops::assert_finite(s.encoder(), x);
    s.fence_stage("error.early");
    s.reset_for_next_stage();
    ops::add(s.encoder(), x, x, out);
    auto err = test::capture_error([&] { s.commit_and_wait(); });
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->kind(), ErrorKind::CommandBuffer) << err->what();
    EXPECT_NE(std::string(err->what()).find("assert_finite"), std::string::npos) << err->what();
  }
  expect_device_usable();
}

// Stage 1 (slow, queue A) updates x in place; stage 2 on queue B reads it. Without a real
// device-side wait, stage 2 would read a partially updated x.
TEST_P(SessionTest, FenceOrdersWorkAcrossQueues) {
  const std::int64_t n = is_cuda() ? (16 << 20) : (1 << 20);
  const int chain = is_cuda() ? 64 : 8;
  const int reps = is_cuda() ? 32 : 20;
  Queue queue_b = device().new_queue();
  std::vector<float> dv(n), x0(n);
  for (std::int64_t i = 0; i < n; ++i) dv[i] = static_cast<float>(i % 7 + 1);
  Buffer x = device().alloc(DType::F32, {n});
  Buffer d = test::upload(device(), dv, DType::F32);
  Buffer c = device().alloc(DType::F32, {n});
  Buffer y = device().alloc(DType::F32, {n});
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE("rep " + std::to_string(rep));
    for (std::int64_t i = 0; i < n; ++i) x0[i] = static_cast<float>((i * 31 + rep) % 251);
    const float cv = 1000.0f + static_cast<float>(rep);
    x.write(x0);
    c.write(std::vector<float>(n, cv));
    test::poison(y);

    EncoderSession s = device().encoder_session();
    for (int k = 0; k < chain; ++k) {
      if (k > 0) s.encoder().barrier();
      ops::add(s.encoder(), x, d, x);
    }
    s.fence_stage("cross_queue.slow");
    s.reset_for_next_stage(queue_b);
    ops::add(s.encoder(), x, c, y);
    s.commit_and_wait();

    const auto xs = x.to_vector<float>();
    const auto ys = y.to_vector<float>();
    for (std::int64_t i = 0; i < n; ++i) {
      const float xe = x0[i] + static_cast<float>(chain) * dv[i];
      ASSERT_EQ(xs[i], xe) << "stage 1 result, element " << i;
      ASSERT_EQ(ys[i], xe + cv) << "stage 2 read x before stage 1 finished, element " << i;
    }
  }
}

TEST_P(SessionTest, ResetForNextStageOnAnotherQueueMovesTheWork) {
  const std::int64_t n = is_cuda() ? (8 << 20) : (1 << 20);
  const int chain = is_cuda() ? 32 : 8;
  Queue queue_b = device().new_queue();
  std::vector<float> ones(n, 1.0f);
  Buffer x = test::upload(device(), ones, DType::F32);
  Buffer a = test::upload(device(), {1, 2}, DType::F32);
  Buffer a2 = device().alloc(DType::F32, {2});

  EncoderSession s = device().encoder_session();
  ops::add(s.encoder(), a, a, a2);
  s.fence_stage("move.stage0");
  s.reset_for_next_stage(queue_b);
  EXPECT_EQ(s.encoder().queue().impl(), queue_b.impl()) << "next stage must use queue B";
  EXPECT_EQ(s.wait_count(), 1u);
  for (int k = 0; k < chain; ++k) {
    if (k > 0) s.encoder().barrier();
    ops::add(s.encoder(), x, x, x);  // doubles x
  }
  s.commit_stage();
  queue_b.synchronize();  // must cover the session's second stage
  const auto xs = x.to_vector<float>();
  const float expected = static_cast<float>(1ull << chain);
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(xs[i], expected) << "queue B's synchronize returned before the stage ran, " << i;
  }
  s.wait_until_completed();
  EXPECT_EQ(a2.to_vector<float>(), (std::vector<float>{2, 4}));
}

MLXN_INSTANTIATE_BACKENDS(SessionTest);

}  // namespace
}  // namespace mlxn
