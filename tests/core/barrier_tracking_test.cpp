// Range-based hazard tracking: barrier_between, dispatch_tracked, auto barriers, and op argument
// validation that throws before anything is queued.
#include <gtest/gtest.h>

#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/counters.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/norm.h"
#include "ops/op_params.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class BarrierTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    a_ = test::upload(device(), {1, 2, 3, 4}, DType::F32);
    b_ = test::upload(device(), {10, 20, 30, 40}, DType::F32);
    out_ = device().alloc(DType::F32, {4});
    other_ = device().alloc(DType::F32, {4});
    other2_ = device().alloc(DType::F32, {4});
  }
  // A fresh encoder holding one dispatch: reads a_, b_; writes out_.
  CommandEncoder encoder_after_add() {
    CommandEncoder enc = device().command_encoder();
    ops::add(enc, a_, b_, out_);
    return enc;
  }
  bool between(std::vector<Buffer> reads, std::vector<Buffer> writes) {
    CommandEncoder enc = encoder_after_add();
    const std::uint64_t before = counters::read().barriers;
    const bool emitted = enc.barrier_between(reads, writes);
    EXPECT_EQ(counters::read().barriers - before, emitted ? 1u : 0u)
        << "a barrier is counted exactly when one is emitted";
    enc.discard();
    return emitted;
  }
  Buffer a_, b_, out_, other_, other2_;
};

TEST_P(BarrierTest, BarrierBetweenFiresExactlyOnHazards) {
  EXPECT_TRUE(between({out_}, {other_})) << "read after write";
  EXPECT_TRUE(between({other_}, {a_})) << "write after read";
  EXPECT_TRUE(between({}, {out_})) << "write after write";
  EXPECT_FALSE(between({a_, b_}, {other_})) << "read after read";
  EXPECT_FALSE(between({other_}, {other2_})) << "different buffers";
  EXPECT_FALSE(between({}, {})) << "nothing";
}

TEST_P(BarrierTest, RangesOfOneStorageConflictOnlyWhenTheyOverlap) {
  Buffer big = device().alloc(DType::F32, {200});
  // Each query on a fresh encoder whose only dispatch writes big[96, 100).
  auto query = [&](std::vector<Buffer> reads, std::vector<Buffer> writes) {
    CommandEncoder enc = device().command_encoder();
    ops::add(enc, a_, b_, big.slice(96, 4));
    const bool emitted = enc.barrier_between(reads, writes);
    enc.discard();
    return emitted;
  };
  EXPECT_FALSE(query({big.slice(100, 100)}, {big.slice(100, 100)})) << "adjacent, disjoint";
  EXPECT_FALSE(query({big.slice(0, 96)}, {big.slice(0, 96)})) << "disjoint below";
  EXPECT_TRUE(query({big.slice(99, 2)}, {})) << "element 99 was written";
  EXPECT_TRUE(query({}, {big.slice(90, 7)})) << "element 96 was written";
  EXPECT_TRUE(query({big}, {})) << "the whole storage overlaps";
  EXPECT_TRUE(query({big.view(390, 8, DType::U8, {8})}, {})) << "bytes 390..398 overlap";
  EXPECT_FALSE(query({big.view(400, 8, DType::U8, {8})}, {})) << "bytes 400..408 do not";
}

TEST_P(BarrierTest, ABarrierClearsTheTrackedRanges) {
  CommandEncoder enc = encoder_after_add();
  enc.barrier();
  EXPECT_FALSE(enc.barrier_between(std::vector<Buffer>{out_}, std::vector<Buffer>{a_}))
      << "nothing has been used since the barrier";
  enc.discard();
  CommandEncoder enc2 = encoder_after_add();
  EXPECT_TRUE(enc2.barrier_between(std::vector<Buffer>{out_}, {}));
  EXPECT_FALSE(enc2.barrier_between(std::vector<Buffer>{out_}, {}))
      << "the emitted barrier already ordered the write";
  enc2.discard();
}

TEST_P(BarrierTest, DispatchTrackedInsertsBarriersOnlyOnConflicts) {
  const Kernel& add = device().kernels().get("add", Specialization().set("dtype", DType::F32));
  const ops::BinaryParams p{4};
  Buffer c = device().alloc(DType::F32, {4}), d = device().alloc(DType::F32, {4});
  Buffer e = device().alloc(DType::F32, {4});
  const std::vector<Arg> first{Arg::in(a_), Arg::in(b_), Arg::out(c)};
  const std::vector<Arg> dependent{Arg::in(c), Arg::in(b_), Arg::out(d)};
  const std::vector<Arg> independent{Arg::in(a_), Arg::in(b_), Arg::out(e)};

  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  enc.dispatch_tracked(add, first, &p, sizeof(p), "add");
  enc.dispatch_tracked(add, dependent, &p, sizeof(p), "add");    // RAW on c: barrier
  enc.dispatch_tracked(add, independent, &p, sizeof(p), "add");  // no conflict
  enc.commit_and_wait();
  const CounterSnapshot after = counters::read();
  EXPECT_EQ(after.barriers - before.barriers, 1u);
  EXPECT_EQ(after.auto_barriers - before.auto_barriers, 1u);
  EXPECT_EQ(d.to_vector<float>(), (std::vector<float>{21, 42, 63, 84}));
  EXPECT_EQ(e.to_vector<float>(), (std::vector<float>{11, 22, 33, 44}));
}

// With auto barriers, a long in-place chain must see every previous step (on CPU worker threads
// the barrier is what orders the dispatches).
TEST_P(BarrierTest, AutoBarriersOrderADependentChain) {
  const std::int64_t n = (1 << 18) + 5;
  constexpr int kSteps = 40;
  auto rng = test::seeded_rng();
  const auto x0 = test::random_floats(rng, n), dv = test::random_floats(rng, n);
  Buffer x = test::upload(device(), x0, DType::F32);
  Buffer d = test::upload(device(), dv, DType::F32);
  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  enc.set_auto_barriers(true);
  for (int k = 0; k < kSteps; ++k) ops::add(enc, x, d, x);
  enc.commit_and_wait();
  EXPECT_EQ(counters::read().auto_barriers - before.auto_barriers, kSteps - 1u);
  std::vector<float> expected = x0;
  for (int k = 0; k < kSteps; ++k) {
    for (std::int64_t i = 0; i < n; ++i) expected[i] = expected[i] + dv[i];
  }
  const auto got = x.to_vector<float>();
  for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], expected[i]) << i;
}

TEST_P(BarrierTest, MismatchedOpArgumentsThrowBeforeQueueing) {
  Buffer three = device().alloc(DType::F32, {3});
  Buffer half4 = device().alloc(DType::F16, {4});
  Buffer ints = device().alloc(DType::I32, {4});
  Buffer w5 = device().alloc(DType::F32, {5});
  Buffer x24 = device().alloc(DType::F32, {2, 4}), out24 = device().alloc(DType::F32, {2, 4});
  Buffer out23 = device().alloc(DType::F32, {2, 3});

  const CounterSnapshot before = counters::read();
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, a_, b_, out_);  // one valid dispatch already pending
  ASSERT_EQ(enc.pending_dispatches(), 1u);
  auto expect_rejected = [&](auto&& fn, const char* what) {
    auto err = test::capture_error(fn);
    if (err) {
      EXPECT_TRUE(err->kind() == ErrorKind::InvalidArgument ||
                  err->kind() == ErrorKind::UnsupportedDType)
          << what << ": " << err->what();
    }
    EXPECT_EQ(enc.pending_dispatches(), 1u) << what << ": nothing may be queued";
  };
  expect_rejected([&] { ops::add(enc, a_, three, out_); }, "add count b");
  expect_rejected([&] { ops::add(enc, a_, b_, three); }, "add count out");
  expect_rejected([&] { ops::mul(enc, a_, half4, out_); }, "mul dtype b");
  expect_rejected([&] { ops::mul(enc, a_, b_, half4); }, "mul dtype out");
  expect_rejected([&] { ops::add(enc, ints, ints, ints); }, "add i32");
  expect_rejected([&] { ops::add(enc, a_, b_, Buffer()); }, "add empty out");
  expect_rejected([&] { ops::cast(enc, a_, three); }, "cast count");
  expect_rejected([&] { ops::cast(enc, ints, a_); }, "cast from i32");
  expect_rejected([&] { ops::rms_norm(enc, x24, w5, out24, 1e-5f); }, "rms_norm w size");
  expect_rejected([&] { ops::rms_norm(enc, x24, a_, out23, 1e-5f); }, "rms_norm out shape");
  expect_rejected([&] { ops::rms_norm_mul(enc, x24, a_, out23, out24, 1e-5f); }, "g shape");
  EXPECT_EQ(counters::read().dispatches - before.dispatches, 1u);
  enc.commit_and_wait();
  EXPECT_EQ(out_.to_vector<float>(), (std::vector<float>{11, 22, 33, 44}));
}

TEST_P(BarrierTest, RawDispatchValidatesBindingsAndParams) {
  const Kernel& add = device().kernels().get("add", Specialization().set("dtype", DType::F32));
  const ops::BinaryParams p{4};
  CommandEncoder enc = device().command_encoder();
  std::vector<Arg> nine(kMaxBindings + 1, Arg::in(a_));
  MLXN_EXPECT_ERROR(enc.dispatch(add, nine, &p, sizeof(p)), ErrorKind::InvalidArgument);
  std::vector<unsigned char> big(kMaxParamBytes + 1);
  MLXN_EXPECT_ERROR(
      enc.dispatch(add, {Arg::in(a_), Arg::in(b_), Arg::out(out_)}, big.data(), big.size()),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(enc.dispatch(add, {Arg::in(a_), Arg::in(Buffer()), Arg::out(out_)}, p),
                    ErrorKind::InvalidArgument);
  const Kernel foreign{add.key, add.name, is_cuda() ? Backend::Cpu : Backend::Cuda, add.entry};
  MLXN_EXPECT_ERROR(enc.dispatch(foreign, {Arg::in(a_), Arg::in(b_), Arg::out(out_)}, p),
                    ErrorKind::InvalidArgument);
  if (is_cuda()) {
    Buffer host = Device::open(Backend::Cpu).alloc(DType::F32, {4});
    MLXN_EXPECT_ERROR(enc.dispatch(add, {Arg::in(host), Arg::in(b_), Arg::out(out_)}, p),
                      ErrorKind::InvalidArgument);
  }
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(BarrierTest);

}  // namespace
}  // namespace mlxn
