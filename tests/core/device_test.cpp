// Device: opening backends, listing, memory info, queues, sharing, and synchronize.
#include "mlxn/core/device.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/kernel_registry.h"
#include "mlxn/ops/elementwise.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

class DeviceTest : public BackendTest {};

TEST(DeviceOpenTest, BackendNamesRoundTrip) {
  for (Backend b : {Backend::Auto, Backend::Cpu, Backend::Cuda}) {
    EXPECT_EQ(backend_from_name(backend_name(b)), b);
  }
  EXPECT_STREQ(backend_name(Backend::Cpu), "cpu");
  MLXN_EXPECT_ERROR(backend_from_name("gpu"), ErrorKind::InvalidArgument);
}

TEST(DeviceOpenTest, AutoPicksTheGpuWhenThereIsOne) {
  const Device d = Device::open(Backend::Auto);
  EXPECT_EQ(d.backend(), Device::cuda_available() ? Backend::Cuda : Backend::Cpu);
}

TEST(DeviceOpenTest, MissingDevicesThrowDeviceNotFound) {
  MLXN_EXPECT_ERROR(Device::open(Backend::Cpu, 1), ErrorKind::DeviceNotFound);
  MLXN_EXPECT_ERROR(Device::open(Backend::Cpu, -1), ErrorKind::DeviceNotFound);
  if (!Device::cuda_available()) {
    MLXN_EXPECT_ERROR(Device::open(Backend::Cuda), ErrorKind::DeviceNotFound);
  }
  MLXN_EXPECT_ERROR(Device::open(Backend::Cuda, 1000), ErrorKind::DeviceNotFound);
}

TEST(DeviceOpenTest, ListHasTheCpuAndEveryGpu) {
  const auto devices = Device::list();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices[0].backend, Backend::Cpu);
  EXPECT_EQ(devices[0].index, 0);
  EXPECT_FALSE(devices[0].name.empty());
  EXPECT_GT(devices[0].memory.total, 0u);
  std::size_t gpus = 0;
  for (const auto& d : devices) gpus += d.backend == Backend::Cuda;
  EXPECT_EQ(gpus > 0, Device::cuda_available());
}

// No other handle is open here, so the buffer alone must keep the backend alive.
TEST(DeviceOpenTest, BuffersOutliveTheLastDeviceHandle) {
  Buffer b;
  {
    Device d = Device::open(Backend::Cpu);
    b = test::upload(d, {1, 2, 3, 4}, DType::F32);
  }
  b.write(std::vector<float>{5, 6, 7, 8});
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{5, 6, 7, 8}));
  Device again = Device::open(Backend::Cpu);
  Buffer out = again.alloc(DType::F32, {4});
  CommandEncoder enc = again.command_encoder();
  ops::add(enc, b, b, out);
  enc.commit_and_wait();
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{10, 12, 14, 16}));
}

TEST_P(DeviceTest, IdentityAndMemoryInfo) {
  EXPECT_EQ(device().backend(), GetParam());
  EXPECT_FALSE(device().name().empty());
  const MemoryInfo m = device().memory_info();
  EXPECT_GT(m.total, 0u);
  EXPECT_LE(m.free, m.total);
}

TEST_P(DeviceTest, CopiesShareQueueAndKernels) {
  Device copy = device();
  EXPECT_EQ(copy.default_queue().impl(), device().default_queue().impl());
  EXPECT_EQ(&copy.kernels(), &device().kernels());
  EXPECT_EQ(device().kernels().backend(), GetParam());
  Device reopened = Device::open(GetParam());
  EXPECT_EQ(&reopened.kernels(), &device().kernels()) << "an open device is shared";
  Queue q = device().new_queue();
  EXPECT_TRUE(q.valid());
  EXPECT_NE(q.impl(), device().default_queue().impl());
  EXPECT_FALSE(Queue().valid());
}

// Work committed on two queues; synchronize() must wait for both.
TEST_P(DeviceTest, SynchronizeWaitsForEveryQueue) {
  const std::int64_t n = is_cuda() ? (8 << 20) : (1 << 20);
  const int chain = is_cuda() ? 32 : 8;
  Buffer x = test::upload(device(), std::vector<float>(n, 1.0f), DType::F32);
  Buffer y = test::upload(device(), std::vector<float>(n, 3.0f), DType::F32);
  CommandEncoder ea = device().command_encoder();
  CommandEncoder eb = device().command_encoder(device().new_queue());
  for (int k = 0; k < chain; ++k) {
    if (k > 0) {
      ea.barrier();
      eb.barrier();
    }
    ops::add(ea, x, x, x);
    ops::add(eb, y, y, y);
  }
  ea.commit();
  eb.commit();
  device().synchronize();
  const auto xs = x.to_vector<float>(), ys = y.to_vector<float>();
  const float scale = static_cast<float>(1ull << chain);
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(xs[i], scale) << "default queue not finished at " << i;
    ASSERT_EQ(ys[i], 3.0f * scale) << "second queue not finished at " << i;
  }
  ea.wait();
  eb.wait();
}

TEST_P(DeviceTest, QueueSynchronizeWaitsForItsWork) {
  Queue q = device().new_queue();
  Buffer x = test::upload(device(), std::vector<float>(1 << 20, 1.0f), DType::F32);
  CommandEncoder enc = device().command_encoder(q);
  EXPECT_EQ(enc.queue().impl(), q.impl());
  for (int k = 0; k < 8; ++k) {
    if (k > 0) enc.barrier();
    ops::add(enc, x, x, x);
  }
  enc.commit();
  q.synchronize();
  const auto xs = x.to_vector<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(xs[i], 256.0f) << i;
  enc.wait();
}

MLXN_INSTANTIATE_BACKENDS(DeviceTest);

}  // namespace
}  // namespace mlxn
