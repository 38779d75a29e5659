// BufferPool: power-of-two buckets, reuse after release and reset, registered buffers, accounting.
#include "mlxn/core/buffer_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class BufferPoolTest : public BackendTest {};

bool is_power_of_two(std::size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

TEST(BufferPoolBuckets, RoundUpToPowersOfTwo) {
  EXPECT_EQ(BufferPool::bucket_size(1000), 1024u);
  EXPECT_EQ(BufferPool::bucket_size(1024), 1024u);
  EXPECT_EQ(BufferPool::bucket_size(1025), 2048u);
  EXPECT_EQ(BufferPool::bucket_size((1u << 20) + 1), 2u << 20);
  for (std::size_t bytes : {1ul, 3ul, 17ul, 255ul, 4097ul, 123456789ul}) {
    const std::size_t b = BufferPool::bucket_size(bytes);
    EXPECT_TRUE(is_power_of_two(b)) << bytes << " -> " << b;
    EXPECT_GE(b, bytes);
    EXPECT_LT(b / 2, std::max<std::size_t>(bytes, 1024)) << "no more than one doubling";
  }
}

TEST_P(BufferPoolTest, AllocRoundsAndAccounts) {
  BufferPool pool(device());
  Buffer b = pool.alloc(1000, DType::F32, {250});
  EXPECT_GE(b.size_bytes(), 1000u);
  EXPECT_EQ(b.dtype(), DType::F32);
  EXPECT_EQ(b.shape(), (Shape{250}));
  EXPECT_EQ(b.to_vector<float>().front(), 0.0f) << "fresh allocations are zero-filled";
  EXPECT_EQ(pool.in_use_count(), 1u);
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_EQ(pool.pooled_bytes(), 1024u);
  EXPECT_EQ(pool.in_use_bytes(), 1024u);

  Buffer c = pool.alloc(DType::F16, {3, 7});
  EXPECT_EQ(c.size_bytes(), 42u) << "alloc(dtype, shape) gives exactly shape x dtype bytes";
  EXPECT_EQ(pool.in_use_count(), 2u);
  EXPECT_EQ(pool.pooled_bytes(), 1024u + BufferPool::bucket_size(42));
  MLXN_EXPECT_ERROR(pool.alloc(0, DType::F32, {0}), ErrorKind::InvalidArgument);
}

TEST_P(BufferPoolTest, ReleaseThenAllocReusesTheSameStorage) {
  BufferPool pool(device());
  Buffer b = pool.alloc(1000, DType::F32, {250});
  const void* id = b.storage_id();
  pool.release(b);
  EXPECT_EQ(pool.in_use_count(), 0u);
  EXPECT_EQ(pool.free_count(), 1u);
  EXPECT_EQ(pool.in_use_bytes(), 0u);
  EXPECT_EQ(pool.pooled_bytes(), 1024u);

  Buffer other_bucket = pool.alloc(3000, DType::U8, {3000});
  EXPECT_NE(other_bucket.storage_id(), id) << "a 4096-byte bucket must not reuse 1024 bytes";
  Buffer again = pool.alloc(900, DType::U8, {900});
  EXPECT_EQ(again.storage_id(), id) << "same bucket reuses the released storage";
  EXPECT_EQ(again.dtype(), DType::U8);
  EXPECT_EQ(again.shape(), (Shape{900}));
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_EQ(pool.in_use_count(), 2u);
}

TEST_P(BufferPoolTest, ReleasingWhatThePoolDidNotHandOutThrows) {
  BufferPool pool(device());
  Buffer foreign = device().alloc(DType::F32, {16});
  MLXN_EXPECT_ERROR(pool.release(foreign), ErrorKind::InvalidArgument);
  Buffer b = pool.alloc(64, DType::F32, {16});
  pool.release(b);
  MLXN_EXPECT_ERROR(pool.release(b), ErrorKind::InvalidArgument);  // double release
  EXPECT_EQ(pool.free_count(), 1u);
  MLXN_EXPECT_ERROR(pool.release(Buffer()), ErrorKind::InvalidArgument);
}

TEST_P(BufferPoolTest, ResetReturnsEverything) {
  BufferPool pool(device());
  std::set<const void*> ids;
  for (std::size_t bytes : {100u, 5000u, 70000u}) {
    ids.insert(pool.alloc(bytes, DType::U8, {static_cast<std::int64_t>(bytes)}).storage_id());
  }
  const std::size_t pooled = pool.pooled_bytes();
  EXPECT_EQ(pool.in_use_count(), 3u);
  pool.reset();
  EXPECT_EQ(pool.in_use_count(), 0u);
  EXPECT_EQ(pool.free_count(), 3u);
  EXPECT_EQ(pool.in_use_bytes(), 0u);
  EXPECT_EQ(pool.pooled_bytes(), pooled);

  std::set<const void*> again;
  for (std::size_t bytes : {70000u, 100u, 5000u}) {
    again.insert(pool.alloc(bytes, DType::U8, {static_cast<std::int64_t>(bytes)}).storage_id());
  }
  EXPECT_EQ(again, ids) << "after reset the same storages come back";
  EXPECT_EQ(pool.pooled_bytes(), pooled) << "nothing new allocated";
}

TEST_P(BufferPoolTest, RegisteredBuffersAreCountedButNeverReused) {
  BufferPool pool(device());
  Buffer weights = device().alloc_buffer(1000, DType::U8, {1000});
  pool.register_existing(weights);
  EXPECT_EQ(pool.registered_count(), 1u);
  EXPECT_EQ(pool.registered_bytes(), 1000u) << "registered buffers are not rounded";
  EXPECT_EQ(pool.in_use_count(), 0u);
  EXPECT_EQ(pool.free_count(), 0u);
  pool.reset();
  EXPECT_EQ(pool.registered_count(), 1u) << "reset keeps registered buffers";
  for (int i = 0; i < 4; ++i) {
    Buffer b = pool.alloc(1000, DType::U8, {1000});
    EXPECT_NE(b.storage_id(), weights.storage_id());
    pool.release(b);
  }
  MLXN_EXPECT_ERROR(pool.release(weights), ErrorKind::InvalidArgument);
}

TEST_P(BufferPoolTest, AllocBatchAndTrim) {
  BufferPool pool(device());
  auto bufs = pool.alloc_batch(
      {{DType::F32, {10}}, {DType::BF16, {4, 4}}, {DType::U8, {3000}}, {DType::F32, {10}}});
  ASSERT_EQ(bufs.size(), 4u);
  EXPECT_EQ(bufs[1].dtype(), DType::BF16);
  EXPECT_EQ(bufs[1].shape(), (Shape{4, 4}));
  EXPECT_EQ(bufs[2].size_bytes(), 3000u);
  std::set<const void*> ids;
  for (const auto& b : bufs) ids.insert(b.storage_id());
  EXPECT_EQ(ids.size(), 4u) << "every buffer of a batch has its own storage";
  EXPECT_EQ(pool.in_use_count(), 4u);

  pool.release(bufs[0]);
  pool.release(bufs[2]);
  pool.trim();
  EXPECT_EQ(pool.free_count(), 0u);
  EXPECT_EQ(pool.in_use_count(), 2u);
  EXPECT_EQ(pool.pooled_bytes(), pool.in_use_bytes());
  EXPECT_EQ(pool.in_use_bytes(), BufferPool::bucket_size(40) + BufferPool::bucket_size(32));
}

TEST_P(BufferPoolTest, PooledBuffersWorkInKernels) {
  BufferPool pool(device());
  auto rng = test::seeded_rng();
  pool.release(pool.alloc(DType::F32, {300}));  // leaves a dirty-able free block behind
  Buffer a = pool.alloc(DType::F32, {300});
  Buffer b = pool.alloc(DType::F32, {300});
  Buffer out = pool.alloc(DType::F32, {300});
  test::poison(out);
  const auto av = test::random_floats(rng, 300), bv = test::random_floats(rng, 300);
  test::upload_to(a, av);
  test::upload_to(b, bv);
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, a, b, out);
  enc.commit_and_wait();
  const auto got = out.to_vector<float>();
  for (int i = 0; i < 300; ++i) EXPECT_EQ(got[i], av[i] + bv[i]) << i;
}

MLXN_INSTANTIATE_BACKENDS(BufferPoolTest);

}  // namespace
}  // namespace mlxn
