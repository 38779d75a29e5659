// Tests of the GGML type table: ids, names, block geometry, overflow-safe sizes.
#include "mlxn/io/ggml_types.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "mlxn/core/error.h"

namespace mlxn::io {
namespace {

struct Expected {
  std::uint32_t id;
  const char* name;
  std::uint32_t block_size;
  std::uint32_t type_size;
};

TEST(GgmlTypes, IdsNamesAndBlockGeometryMatchGgml) {
  const Expected table[] = {
      {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},
      {3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
      {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},      {10, "q2_K", 256, 84},
      {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
      {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66},
      {17, "iq2_xs", 256, 74},  {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},
      {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},
      {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
      {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},
      {29, "iq1_m", 256, 56},   {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},
      {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
  };
  for (const Expected& e : table) {
    std::optional<GgmlType> t = ggml_type_from_id(e.id);
    ASSERT_TRUE(t) << e.id;
    const GgmlTypeTraits& tr = ggml_type_traits(*t);
    EXPECT_EQ(tr.name, e.name);
    EXPECT_EQ(tr.block_size, e.block_size) << e.name;
    EXPECT_EQ(tr.type_size, e.type_size) << e.name;
    EXPECT_FALSE(tr.removed) << e.name;
    EXPECT_EQ(static_cast<std::uint32_t>(*t), e.id);
  }
  EXPECT_EQ(static_cast<std::uint32_t>(GgmlType::MXFP4), 39u);
  EXPECT_EQ(static_cast<std::uint32_t>(GgmlType::BF16), 30u);
}

TEST(GgmlTypes, RemovedIdsAreRecognisedAndMarked) {
  for (std::uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u}) {
    std::optional<GgmlType> t = ggml_type_from_id(id);
    ASSERT_TRUE(t) << id;
    EXPECT_TRUE(ggml_type_traits(*t).removed) << id;
  }
  EXPECT_EQ(ggml_type_name(GgmlType::Q4_0_4_4), "q4_0_4_4");
}

TEST(GgmlTypes, UnknownIdsAreReportedByNumber) {
  EXPECT_FALSE(ggml_type_from_id(40));
  EXPECT_FALSE(ggml_type_from_id(0xFFFFFFFFu));
  auto bogus = static_cast<GgmlType>(77);
  EXPECT_EQ(ggml_type_name(bogus), "type#77");
  try {
    ggml_type_traits(bogus);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("77"), std::string::npos);
  }
}

TEST(GgmlTypes, RowSizeIsOverflowSafe) {
  EXPECT_EQ(ggml_row_size(GgmlType::Q4_0, 64), 36u);
  EXPECT_EQ(ggml_row_size(GgmlType::Q6_K, 512), 420u);
  EXPECT_EQ(ggml_row_size(GgmlType::F32, 3), 12u);
  EXPECT_EQ(ggml_row_size(GgmlType::Q8_0, 0), 0u);
  EXPECT_FALSE(ggml_try_row_size(GgmlType::Q4_0, 33));
  const auto big = std::numeric_limits<std::uint64_t>::max() / 2;
  EXPECT_FALSE(ggml_try_row_size(GgmlType::F64, big));
  EXPECT_FALSE(ggml_try_row_size(GgmlType::F32, std::numeric_limits<std::uint64_t>::max()));
  try {
    ggml_row_size(GgmlType::Q4_K, 100);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("q4_K"), std::string::npos);
  }
  EXPECT_THROW(ggml_row_size(GgmlType::I64, big), Error);
}

}  // namespace
}  // namespace mlxn::io
