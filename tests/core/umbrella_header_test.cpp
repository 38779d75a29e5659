// The umbrella header compiles on its own and exposes the runtime (a smoke test of the include).
#include "mlxn/mlxn.h"

#include <gtest/gtest.h>

TEST(UmbrellaHeaderTest, ExposesTheRuntime) {
  mlxn::Device device = mlxn::Device::open(mlxn::Backend::Cpu);
  mlxn::Buffer b = device.alloc(mlxn::DType::F32, {3});
  b.write(std::vector<float>{1, 2, 3});
  mlxn::CommandEncoder enc = device.command_encoder();
  mlxn::ops::add(enc, b, b, b);
  enc.commit_and_wait();
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{2, 4, 6}));
}
