// Buffer and Device::alloc: zero-filled allocation, size checks, views, refcounting, host access.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class BufferTest : public BackendTest {};

std::vector<float> iota_floats(std::size_t n, float start = 1.0f) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST_P(BufferTest, AllocationIsZeroFilledEvenWhenMemoryIsReused) {
  // Small sizes come back from allocator free lists; the large one tests a big fresh block.
  for (std::size_t bytes : {std::size_t{4096}, std::size_t{65536}, std::size_t{64} << 20}) {
    for (int round = 0; round < 3; ++round) {
      Buffer b = device().alloc_buffer(bytes, DType::U8, {static_cast<std::int64_t>(bytes)});
      const auto data = b.to_vector<std::uint8_t>();
      ASSERT_EQ(data.size(), bytes);
      std::size_t nonzero = 0;
      for (auto v : data) nonzero += v != 0;
      ASSERT_EQ(nonzero, 0u) << bytes << " bytes, round " << round;
      // Dirty the memory before freeing it so a reusing, non-zeroing allocator is caught.
      b.write(std::vector<std::uint8_t>(bytes, 0xAB));
    }
  }
}

TEST_P(BufferTest, MetadataMatchesTheRequest) {
  Buffer b = device().alloc(DType::BF16, {3, 5});
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(b.shape(), (Shape{3, 5}));
  EXPECT_EQ(b.size_bytes(), 30u);
  EXPECT_EQ(b.numel(), 15);
  EXPECT_EQ(b.offset(), 0u);
  EXPECT_EQ(b.backend(), GetParam());
  EXPECT_FALSE(Buffer().valid());

  Buffer big = device().alloc_buffer(100, DType::F32, {4});
  EXPECT_EQ(big.size_bytes(), 100u);
  EXPECT_EQ(big.shape(), (Shape{4}));
}

TEST_P(BufferTest, BadAllocationsThrowInvalidArgument) {
  MLXN_EXPECT_ERROR(device().alloc_buffer(0, DType::F32, {0}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(device().alloc(DType::F32, {0}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(device().alloc_buffer(16, DType::F32, {5}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(device().alloc(DType::F32, {-1, 4}), ErrorKind::InvalidArgument);

  const std::size_t total = device().memory_info().total;
  ASSERT_GT(total, 0u);
  auto err =
      test::capture_error([&] { device().alloc_buffer(total + (1u << 20), DType::U8, {1}); });
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind(), ErrorKind::InvalidArgument);
  EXPECT_NE(std::string(err->what()).find(std::to_string(total + (1u << 20))), std::string::npos)
      << "the message should give the requested size: " << err->what();
  // Still usable afterwards.
  Buffer ok = device().alloc(DType::F32, {8});
  EXPECT_EQ(ok.to_vector<float>(), std::vector<float>(8, 0.0f));
}

TEST_P(BufferTest, WriteAndReadRoundTripWithOffsets) {
  Buffer b = device().alloc(DType::F32, {16});
  const auto v = iota_floats(16);
  b.write(v);
  EXPECT_EQ(b.to_vector<float>(), v);
  const float two[2] = {-7.0f, -8.0f};
  b.write(two, sizeof(two), 8);
  float back[3] = {};
  b.read(back, sizeof(back), 4);
  EXPECT_EQ(back[0], 2.0f);
  EXPECT_EQ(back[1], -7.0f);
  EXPECT_EQ(back[2], -8.0f);
  MLXN_EXPECT_ERROR(b.write(two, sizeof(two), 60), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(b.read(back, sizeof(back), 56), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(b.write(std::vector<float>(15)), ErrorKind::InvalidArgument);
}

TEST_P(BufferTest, ViewsShareStorageAndCheckBounds) {
  Buffer parent = device().alloc(DType::F32, {100});
  parent.write(iota_floats(100));

  Buffer s = parent.slice(10, 20);
  EXPECT_EQ(s.offset(), 40u);
  EXPECT_EQ(s.size_bytes(), 80u);
  EXPECT_EQ(s.shape(), (Shape{20}));
  EXPECT_TRUE(s.same_storage(parent));
  EXPECT_EQ(s.storage_id(), parent.storage_id());
  EXPECT_EQ(s.to_vector<float>(), iota_floats(20, 11.0f));

  Buffer ss = s.slice(5, 3);  // view of a view: offsets add up
  EXPECT_EQ(ss.offset(), 60u);
  EXPECT_EQ(ss.to_vector<float>(), (std::vector<float>{16, 17, 18}));

  ss.write(std::vector<float>{-1, -2, -3});
  const auto all = parent.to_vector<float>();
  EXPECT_EQ(all[14], 15.0f);
  EXPECT_EQ(all[15], -1.0f);
  EXPECT_EQ(all[17], -3.0f);
  EXPECT_EQ(all[18], 19.0f);

  Buffer v = parent.view(8, 16, DType::F16, {2, 4});
  EXPECT_EQ(v.dtype(), DType::F16);
  EXPECT_EQ(v.offset(), 8u);
  EXPECT_EQ(v.numel(), 8);

  MLXN_EXPECT_ERROR(parent.slice(90, 11), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(parent.slice(-1, 2), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(s.slice(15, 6), ErrorKind::InvalidArgument);  // inside parent, not s
  MLXN_EXPECT_ERROR(parent.view(392, 16, DType::F32, {4}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(parent.view(0, 8, DType::F32, {3}), ErrorKind::InvalidArgument);

  Buffer r = parent.reshape({10, 10});
  EXPECT_EQ(r.shape(), (Shape{10, 10}));
  EXPECT_TRUE(r.same_storage(parent));
  MLXN_EXPECT_ERROR(parent.reshape({3, 33}), ErrorKind::InvalidArgument);
}

TEST_P(BufferTest, KernelsReadAndWriteThroughViews) {
  Buffer big = device().alloc(DType::F32, {12});
  big.write(iota_floats(12));  // 1..12
  CommandEncoder enc = device().command_encoder();
  // big[8..12) = big[0..4) + big[4..8)
  ops::add(enc, big.slice(0, 4), big.slice(4, 4), big.slice(8, 4));
  enc.commit_and_wait();
  EXPECT_EQ(big.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 6, 8, 10, 12}));
}

TEST_P(BufferTest, StorageLivesWhileAnyViewDoes) {
  Buffer parent = device().alloc(DType::F32, {1024});
  parent.write(iota_floats(1024));
  EXPECT_EQ(parent.use_count(), 1);
  Buffer v = parent.slice(512, 512);
  EXPECT_EQ(parent.use_count(), 2);
  {
    Buffer copy = parent;
    EXPECT_EQ(parent.use_count(), 3);
  }
  EXPECT_EQ(parent.use_count(), 2);
  parent = Buffer();
  EXPECT_EQ(v.use_count(), 1);
  // Allocate more to give a freed storage every chance to be reused.
  Buffer other = device().alloc(DType::F32, {1024});
  other.write(std::vector<float>(1024, -5.0f));
  EXPECT_EQ(v.to_vector<float>(), iota_floats(512, 513.0f));
}

TEST_P(BufferTest, InFlightWorkKeepsInputsAlive) {
  constexpr std::int64_t n = 1 << 20;
  auto rng = test::seeded_rng();
  const auto av = test::random_floats(rng, n), bv = test::random_floats(rng, n);
  Buffer out = test::poisoned(device(), DType::F32, {n});
  CommandEncoder enc = device().command_encoder();
  {
    Buffer a = test::upload(device(), av, DType::F32);
    Buffer b = test::upload(device(), bv, DType::F32);
    ops::add(enc, a, b, out);
    EXPECT_GE(a.use_count(), 2) << "encoded work must hold its inputs";
    enc.commit();
  }
  // Reuse memory while the work may still run.
  Buffer junk = device().alloc(DType::F32, {n});
  junk.write(std::vector<float>(n, 1e30f));
  enc.wait();
  const auto got = out.to_vector<float>();
  for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], av[i] + bv[i]) << i;
}

TEST_P(BufferTest, HostVisibleMemoryIsCoherent) {
  Buffer h = device().alloc(DType::F32, {64}, MemoryKind::HostVisible);
  ASSERT_TRUE(h.is_host_visible());
  ASSERT_NE(h.host_ptr(), nullptr);
  auto* p = static_cast<float*>(h.host_ptr());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(p[i], 0.0f) << "zero-filled";
  for (int i = 0; i < 64; ++i) p[i] = static_cast<float>(i);
  EXPECT_EQ(h.to_vector<float>(), iota_floats(64, 0.0f));
  h.write(iota_floats(64, 100.0f));
  EXPECT_EQ(p[3], 103.0f);
  Buffer v = h.slice(8, 8);
  EXPECT_EQ(v.host_ptr(), static_cast<void*>(p + 8));

  // Kernel output lands in host-visible memory.
  Buffer src = test::upload(device(), iota_floats(64), DType::F32);
  CommandEncoder enc = device().command_encoder();
  ops::add(enc, src, src, h);
  enc.commit_and_wait();
  for (int i = 0; i < 64; ++i) EXPECT_EQ(p[i], 2.0f * (i + 1)) << i;

  Buffer d = device().alloc(DType::F32, {64});
  if (is_cuda()) {
    EXPECT_EQ(d.host_ptr(), nullptr) << "plain CUDA device memory is not host-visible";
    EXPECT_FALSE(d.is_host_visible());
  } else {
    EXPECT_NE(d.host_ptr(), nullptr) << "CPU memory is always host-visible";
    EXPECT_TRUE(d.is_host_visible());
  }
}

MLXN_INSTANTIATE_BACKENDS(BufferTest);

}  // namespace
}  // namespace mlxn
