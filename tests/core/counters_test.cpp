// Process-wide counters: dispatches, command buffers, syncs, barriers and auto barriers.
#include "mlxn/core/counters.h"

#include <gtest/gtest.h>

#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class CountersTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    a_ = test::upload(device(), {1, 2, 3}, DType::F32);
    b_ = test::upload(device(), {4, 5, 6}, DType::F32);
    c_ = device().alloc(DType::F32, {3});
    d_ = device().alloc(DType::F32, {3});
    e_ = device().alloc(DType::F32, {3});
  }
  Buffer a_, b_, c_, d_, e_;
};

CounterSnapshot delta(const CounterSnapshot& before) {
  const CounterSnapshot now = counters::read();
  return {now.dispatches - before.dispatches, now.command_buffers - before.command_buffers,
          now.syncs - before.syncs, now.barriers - before.barriers,
          now.auto_barriers - before.auto_barriers};
}

TEST(CountersResetTest, ResetZeroesEveryCounter) {
  counters::add_dispatch();
  counters::add_command_buffer();
  counters::add_sync();
  counters::add_barrier(true);
  const CounterSnapshot s = counters::read();
  EXPECT_GE(s.dispatches, 1u);
  EXPECT_GE(s.command_buffers, 1u);
  EXPECT_GE(s.syncs, 1u);
  EXPECT_GE(s.barriers, 1u);
  EXPECT_GE(s.auto_barriers, 1u);
  counters::reset();
  const CounterSnapshot z = counters::read();
  EXPECT_EQ(z.dispatches, 0u);
  EXPECT_EQ(z.command_buffers, 0u);
  EXPECT_EQ(z.syncs, 0u);
  EXPECT_EQ(z.barriers, 0u);
  EXPECT_EQ(z.auto_barriers, 0u);
}

TEST(CountersResetTest, ManualBarrierIsNotAutomatic) {
  const CounterSnapshot before = counters::read();
  counters::add_barrier(false);
  const CounterSnapshot d = delta(before);
  EXPECT_EQ(d.barriers, 1u);
  EXPECT_EQ(d.auto_barriers, 0u);
}

TEST_P(CountersTest, OneCommandBufferWithThreeDispatchesAndOneSync) {
  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, a_, b_, c_);
  ops::mul(enc, a_, b_, d_);
  ops::add(enc, b_, b_, e_);
  enc.commit_and_wait();
  const CounterSnapshot d = delta(before);
  EXPECT_EQ(d.dispatches, 3u);
  EXPECT_EQ(d.command_buffers, 1u);
  EXPECT_EQ(d.syncs, 1u);
  EXPECT_EQ(d.barriers, 0u);
  EXPECT_EQ(d.auto_barriers, 0u);
}

TEST_P(CountersTest, EachCommitOpensACommandBuffer) {
  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  for (int i = 0; i < 5; ++i) {
    ops::add(enc, a_, b_, c_);
    enc.commit();
  }
  enc.wait();
  const CounterSnapshot d = delta(before);
  EXPECT_EQ(d.dispatches, 5u);
  EXPECT_EQ(d.command_buffers, 5u);
  EXPECT_GE(d.syncs, 1u);
  EXPECT_EQ(c_.to_vector<float>(), (std::vector<float>{5, 7, 9}));
}

TEST_P(CountersTest, ExplicitAndAutomaticBarriers) {
  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, a_, b_, c_);
  enc.barrier();
  ops::mul(enc, c_, b_, d_);
  CounterSnapshot d = delta(before);
  EXPECT_EQ(d.barriers, 1u);
  EXPECT_EQ(d.auto_barriers, 0u);

  enc.set_auto_barriers(true);
  ops::add(enc, d_, a_, c_);  // reads d_ (RAW) and writes c_ (WAR): one barrier
  ops::add(enc, a_, b_, d_);  // writes d_ after the read above: WAR, one barrier
  ops::mul(enc, a_, b_, b_);  // writes b_ after the read above: WAR, one barrier
  enc.commit_and_wait();
  d = delta(before);
  EXPECT_EQ(d.barriers, 4u);
  EXPECT_EQ(d.auto_barriers, 3u);
  EXPECT_EQ(d.dispatches, 5u);
  EXPECT_EQ(c_.to_vector<float>(), (std::vector<float>{21, 37, 57}));  // (1+4)*4+1, ...
  EXPECT_EQ(d_.to_vector<float>(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(b_.to_vector<float>(), (std::vector<float>{4, 10, 18}));
}

TEST_P(CountersTest, IndependentTrackedDispatchesNeedNoBarrier) {
  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  enc.set_auto_barriers(true);
  ops::add(enc, a_, b_, c_);
  ops::mul(enc, a_, b_, d_);  // reads a_, b_ again (read after read) and writes elsewhere
  enc.commit_and_wait();
  const CounterSnapshot d = delta(before);
  EXPECT_EQ(d.barriers, 0u);
  EXPECT_EQ(d.auto_barriers, 0u);
}

MLXN_INSTANTIATE_BACKENDS(CountersTest);

}  // namespace
}  // namespace mlxn
