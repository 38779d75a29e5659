// DType sizes and names, Shape element counts, and the host f16/bf16 conversions.
#include "mlxn/core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "mlxn/core/shape.h"
#include "test_backends.h"

namespace mlxn {
namespace {

constexpr DType kAll[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I8,
                          DType::I16, DType::I32, DType::I64,  DType::U8,  DType::U16,
                          DType::U32, DType::U64, DType::Bool};

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(DTypeTest, SizesNamesAndKinds) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::I8), 1u);
  EXPECT_EQ(dtype_size(DType::U16), 2u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::U64), 8u);
  EXPECT_EQ(dtype_size(DType::Bool), 1u);
  EXPECT_EQ(dtype_name(DType::F32), "f32");
  EXPECT_EQ(dtype_name(DType::BF16), "bf16");
  EXPECT_EQ(dtype_name(DType::U8), "u8");
  EXPECT_EQ(dtype_name(DType::Bool), "bool");
  std::set<std::string_view> names;
  for (DType d : kAll) {
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d) << dtype_name(d);
    names.insert(dtype_name(d));
    const bool is_float = d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F64;
    EXPECT_EQ(dtype_is_float(d), is_float) << dtype_name(d);
  }
  EXPECT_EQ(names.size(), std::size(kAll)) << "names are distinct";
  for (const char* bad : {"", "float32", "F32", "f8", "bf16 "}) {
    MLXN_EXPECT_ERROR(dtype_from_name(bad), ErrorKind::InvalidArgument);
  }
}

TEST(ShapeTest, NumelAndFormatting) {
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_numel({5, 0, 7}), 0);
  EXPECT_EQ(shape_to_string({2, 3, 4}), "[2, 3, 4]");
  EXPECT_EQ(shape_to_string({}), "[]");
  MLXN_EXPECT_ERROR(shape_numel({2, -1}), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(shape_numel({1ll << 32, 1ll << 32}), ErrorKind::InvalidArgument);
  EXPECT_EQ(shape_numel({1ll << 31, 1ll << 31}), 1ll << 62);
}

TEST(HalfTest, F16KnownValues) {
  EXPECT_EQ(f32_to_f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16_bits(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16_bits(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16_bits(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16_bits(65519.0f), 0x7bff) << "below the rounding midpoint to inf";
  EXPECT_EQ(f32_to_f16_bits(65520.0f), 0x7c00) << "overflow rounds to inf";
  EXPECT_EQ(f32_to_f16_bits(1e9f), 0x7c00);
  EXPECT_EQ(f32_to_f16_bits(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -24)), 0x0001) << "smallest subnormal";
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -14)), 0x0400) << "smallest normal";
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -26)), 0x0000) << "underflow to zero";
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(3.0f, -26)), 0x0001) << "0.75 ulp rounds up";
  // Ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(f32_to_f16_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(1.0f, -25)), 0x0000) << "subnormal tie to even";
  EXPECT_EQ(f32_to_f16_bits(std::ldexp(3.0f, -25)), 0x0002) << "subnormal tie to even";
  const std::uint16_t nan = f32_to_f16_bits(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0) << "NaN stays NaN";
  EXPECT_TRUE(std::isnan(f16_bits_to_f32(0x7e00)));
  EXPECT_EQ(f16_bits_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_bits_to_f32(0xfbff), -65504.0f);
}

TEST(HalfTest, F16RoundTripsEveryBitPattern) {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float f = f16_bits_to_f32(bits);
    if (std::isnan(f)) {
      ASSERT_EQ(bits & 0x7c00, 0x7c00);
      ASSERT_NE(bits & 0x03ff, 0);
      continue;
    }
    ASSERT_EQ(f32_to_f16_bits(f), bits) << std::hex << b;
  }
}

TEST(HalfTest, BF16RoundingAndRoundTrip) {
  EXPECT_EQ(f32_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_bf16_bits(from_bits(0x3f808000)), 0x3f80) << "tie to even (down)";
  EXPECT_EQ(f32_to_bf16_bits(from_bits(0x3f818000)), 0x3f82) << "tie to even (up)";
  EXPECT_EQ(f32_to_bf16_bits(from_bits(0x3f808001)), 0x3f81) << "above the tie";
  EXPECT_EQ(f32_to_bf16_bits(from_bits(0x7f7fffff)), 0x7f80) << "max f32 rounds to inf";
  const std::uint16_t nan = f32_to_bf16_bits(from_bits(0x7f800001));  // NaN with a low payload
  EXPECT_TRUE(std::isnan(bf16_bits_to_f32(nan))) << "NaN must not become inf";
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_bits_to_f32(static_cast<std::uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16_bits(f), b) << std::hex << b;
  }
}

}  // namespace
}  // namespace mlxn
