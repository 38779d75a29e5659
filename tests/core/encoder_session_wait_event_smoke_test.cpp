// Seed test (mlx-native encoder_session_wait_event_smoke): a 5-fence chain emits 4 waits.
//
// 5 stages of elementwise add, each fenced; the first 4 are followed by reset_for_next_stage,
// which must encode a wait on the session timeline at the value just signalled. The terminal
// stage is drained by wait_until_completed. Prints fence_value=5, wait_count=4, wait_value=4 to
// stderr. Unlike the seed there is no environment gate: the session path always runs.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "mlxn/core/encoder_session.h"
#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class EncoderSessionWaitEventSmokeTest : public BackendTest {};

TEST_P(EncoderSessionWaitEventSmokeTest, FiveFenceChainEmitsFourWaits) {
  constexpr std::int64_t n = 4;
  Buffer a = device().alloc(DType::F32, {n});
  Buffer b = device().alloc(DType::F32, {n});
  Buffer out = device().alloc(DType::F32, {n});
  a.write(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
  b.write(std::vector<float>{10.0f, 20.0f, 30.0f, 40.0f});
  test::poison(out);

  EncoderSession sess = device().encoder_session();
  ASSERT_EQ(sess.fence_value(), 0u) << "fresh session: fence_value starts at 0";
  ASSERT_EQ(sess.wait_count(), 0u) << "fresh session: wait_count starts at 0";
  ASSERT_EQ(sess.wait_value(), 0u) << "fresh session: wait_value starts at 0 (no wait emitted)";
  ASSERT_FALSE(sess.has_event()) << "fresh session: no timeline until the first fence_stage";

  for (std::uint64_t i = 0; i < 5; ++i) {
    const std::string label = "session.wait_smoke.stage" + std::to_string(i);
    ops::add(sess.encoder(), a, b, out);
    sess.fence_stage(label);

    const std::uint64_t expected_signal = i + 1;
    ASSERT_EQ(sess.fence_value(), expected_signal)
        << "after fence_stage #" << i << ": fence_value must be " << expected_signal;
    ASSERT_TRUE(sess.is_fence_pending()) << "after fence_stage #" << i;
    ASSERT_TRUE(sess.is_drained()) << "after fence_stage #" << i;
    ASSERT_TRUE(sess.has_event()) << "after fence_stage #" << i << " (lazy-alloc on i==0)";

    if (i < 4) {
      sess.reset_for_next_stage();
      const std::uint64_t expected_wait = i + 1;
      ASSERT_EQ(sess.wait_count(), expected_wait)
          << "after reset following fence #" << i << ": wait_count must be " << expected_wait;
      ASSERT_EQ(sess.wait_value(), expected_wait)
          << "after reset following fence #" << i << ": wait_value must be " << expected_wait
          << " (matches the value just signalled)";
      ASSERT_FALSE(sess.is_fence_pending()) << "after reset following fence #" << i;
      ASSERT_FALSE(sess.is_drained()) << "after reset following fence #" << i;
    }
    // Stage 4: no reset; the session stays fenced and drained with fence #5 in flight.
  }

  const std::uint64_t fence_val = sess.fence_value();
  const std::uint64_t wait_count = sess.wait_count();
  const std::uint64_t wait_value = sess.wait_value();

  sess.wait_until_completed();

  EXPECT_EQ(sess.fence_value(), fence_val) << "fence_value must be stable across the wait";
  EXPECT_EQ(sess.wait_count(), wait_count) << "wait_count must be stable across the wait";
  EXPECT_EQ(sess.wait_value(), wait_value) << "wait_value must be stable across the wait";

  std::cerr << "fence_value=" << fence_val << "\n"
            << "wait_count=" << wait_count << "\n"
            << "wait_value=" << wait_value << std::endl;

  EXPECT_EQ(fence_val, 5u) << "5 fence_stage calls must signal up to 5";
  EXPECT_EQ(wait_count, 4u) << "4 non-terminal resets between 5 fences";
  EXPECT_EQ(wait_value, 4u) << "the wait following fence #4 is at value 4";

  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{11.0f, 22.0f, 33.0f, 44.0f}));
}

MLXN_INSTANTIATE_BACKENDS(EncoderSessionWaitEventSmokeTest);

}  // namespace
}  // namespace mlxn
