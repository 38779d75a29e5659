// mlxn::Error: kinds, names, transience, and that library calls throw it with the right kind.
#include "mlxn/core/error.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "mlxn/core/device.h"
#include "mlxn/core/dtype.h"
#include "test_backends.h"

namespace mlxn {
namespace {

constexpr ErrorKind kKinds[] = {ErrorKind::DeviceNotFound,   ErrorKind::CommandBuffer,
                                ErrorKind::Allocation,       ErrorKind::InvalidArgument,
                                ErrorKind::KernelNotFound,   ErrorKind::Io,
                                ErrorKind::Format,           ErrorKind::QuantConfig,
                                ErrorKind::UnsupportedDType, ErrorKind::Unsupported};

TEST(ErrorTest, CarriesKindAndMessage) {
  const Error e(ErrorKind::Format, "model.safetensors: header too short");
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_STREQ(e.what(), "model.safetensors: header too short");
  try {
    throw Error(ErrorKind::Io, "disk on fire");
  } catch (const std::runtime_error& re) {
    EXPECT_STREQ(re.what(), "disk on fire");
    EXPECT_EQ(dynamic_cast<const Error&>(re).kind(), ErrorKind::Io);
  }
}

TEST(ErrorTest, KindNamesAreDistinct) {
  std::set<std::string> names;
  for (ErrorKind k : kKinds) {
    const std::string name = error_kind_name(k);
    EXPECT_FALSE(name.empty());
    names.insert(name);
  }
  EXPECT_EQ(names.size(), std::size(kKinds));
  EXPECT_STREQ(error_kind_name(ErrorKind::InvalidArgument), "invalid argument");
}

TEST(ErrorTest, OnlyResourceErrorsAreTransient) {
  EXPECT_TRUE(Error(ErrorKind::Allocation, "x").is_transient());
  for (ErrorKind k : {ErrorKind::InvalidArgument, ErrorKind::Format, ErrorKind::KernelNotFound,
                      ErrorKind::QuantConfig, ErrorKind::UnsupportedDType, ErrorKind::Unsupported,
                      ErrorKind::DeviceNotFound}) {
    EXPECT_FALSE(Error(k, "x").is_transient()) << error_kind_name(k);
  }
}

TEST(ErrorTest, LibraryCallsThrowTypedErrors) {
  MLXN_EXPECT_ERROR(dtype_from_name("f33"), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(backend_from_name("metal"), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(Device::open(Backend::Cpu, 3), ErrorKind::DeviceNotFound);
  auto err = test::capture_error([] { backend_from_name("metal"); });
  ASSERT_TRUE(err);
  EXPECT_NE(std::string(err->what()).find("metal"), std::string::npos)
      << "messages name the offending value: " << err->what();
}

}  // namespace
}  // namespace mlxn
