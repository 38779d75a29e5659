// Tests of GgufWriter -> GgufFile round trips: every value type, nested arrays, tensor views.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>

#include "mlxn/core/error.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/gguf_writer.h"

namespace mlxn::io {
namespace {

std::vector<std::byte> float_bytes(const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

GgufWriter writer_with_every_type() {
  GgufWriter w;
  w.add("t.u8", std::uint8_t{200});
  w.add("t.i8", std::int8_t{-100});
  w.add("t.u16", std::uint16_t{60000});
  w.add("t.i16", std::int16_t{-30000});
  w.add("t.u32", std::uint32_t{4000000000u});
  w.add("t.i32", std::int32_t{-2000000000});
  w.add("t.f32", 1.5f);
  w.add("t.bool", true);
  w.add("t.string", std::string("héllo\nworld"));
  w.add("t.empty_string", std::string());
  w.add("t.u64", std::numeric_limits<std::uint64_t>::max());
  w.add("t.i64", std::numeric_limits<std::int64_t>::min());
  w.add("t.f64", 2.25);
  w.add("t.arr_u8", std::vector<std::uint8_t>{1, 2, 255});
  w.add("t.arr_i8", std::vector<std::int8_t>{-1, 2});
  w.add("t.arr_u16", std::vector<std::uint16_t>{65535});
  w.add("t.arr_i16", std::vector<std::int16_t>{-5, 5});
  w.add("t.arr_u32", std::vector<std::uint32_t>{7, 8, 9});
  w.add("t.arr_i32", std::vector<std::int32_t>{-7});
  w.add("t.arr_f32", std::vector<float>{0.5f, -0.25f});
  w.add("t.arr_bool", std::vector<bool>{true, false, true});
  w.add("t.arr_string", std::vector<std::string>{"a", "", "ccc"});
  w.add("t.arr_u64", std::vector<std::uint64_t>{1ull << 40});
  w.add("t.arr_i64", std::vector<std::int64_t>{-(1ll << 40)});
  w.add("t.arr_f64", std::vector<double>{1e300});
  w.add("t.arr_empty", GgufArray::empty_of(GgufType::F32));
  // Arrays of arrays, each inner array with its own element type, nested three deep.
  GgufArray inner_strings(std::vector<std::string>{"x", "y"});
  GgufArray inner_ints(std::vector<std::int32_t>{1, 2, 3});
  GgufArray deeper(std::vector<GgufArray>{GgufArray(std::vector<double>{3.5})});
  w.add("t.nested", GgufArray(std::vector<GgufArray>{inner_strings, inner_ints, deeper}));
  return w;
}

TEST(GgufRoundTrip, EveryMetadataTypeSurvives) {
  GgufWriter w = writer_with_every_type();
  GgufFile f = GgufFile::from_bytes("every.gguf", w.to_bytes());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), 27u);
  EXPECT_EQ(f.get<std::uint8_t>("t.u8"), 200);
  EXPECT_EQ(f.get<std::int8_t>("t.i8"), -100);
  EXPECT_EQ(f.get<std::uint16_t>("t.u16"), 60000);
  EXPECT_EQ(f.get<std::int16_t>("t.i16"), -30000);
  EXPECT_EQ(f.get<std::uint32_t>("t.u32"), 4000000000u);
  EXPECT_EQ(f.get<std::int32_t>("t.i32"), -2000000000);
  EXPECT_EQ(f.get<float>("t.f32"), 1.5f);
  EXPECT_EQ(f.get<bool>("t.bool"), true);
  EXPECT_EQ(f.get<std::string>("t.string"), "héllo\nworld");
  EXPECT_EQ(f.get<std::string>("t.empty_string"), "");
  EXPECT_EQ(f.get<std::uint64_t>("t.u64"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(f.get<std::int64_t>("t.i64"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(f.get<double>("t.f64"), 2.25);
  EXPECT_EQ(f.at("t.arr_u8").array<std::uint8_t>(), (std::vector<std::uint8_t>{1, 2, 255}));
  EXPECT_EQ(f.at("t.arr_i8").array<std::int8_t>(), (std::vector<std::int8_t>{-1, 2}));
  EXPECT_EQ(f.at("t.arr_u16").array<std::uint16_t>(), (std::vector<std::uint16_t>{65535}));
  EXPECT_EQ(f.at("t.arr_i16").array<std::int16_t>(), (std::vector<std::int16_t>{-5, 5}));
  EXPECT_EQ(f.at("t.arr_u32").array<std::uint32_t>(), (std::vector<std::uint32_t>{7, 8, 9}));
  EXPECT_EQ(f.at("t.arr_i32").array<std::int32_t>(), (std::vector<std::int32_t>{-7}));
  EXPECT_EQ(f.at("t.arr_f32").array<float>(), (std::vector<float>{0.5f, -0.25f}));
  EXPECT_EQ(f.at("t.arr_bool").array<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.at("t.arr_string").array<std::string>(), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f.at("t.arr_u64").array<std::uint64_t>(), (std::vector<std::uint64_t>{1ull << 40}));
  EXPECT_EQ(f.at("t.arr_i64").array<std::int64_t>(), (std::vector<std::int64_t>{-(1ll << 40)}));
  EXPECT_EQ(f.at("t.arr_f64").array<double>(), (std::vector<double>{1e300}));
  EXPECT_EQ(f.at("t.arr_empty").as<GgufArray>().element_type(), GgufType::F32);
  EXPECT_EQ(f.at("t.arr_empty").as<GgufArray>().size(), 0u);

  const auto& nested = f.at("t.nested").array<GgufArray>();
  ASSERT_EQ(nested.size(), 3u);
  EXPECT_EQ(nested[0].values<std::string>(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(nested[1].values<std::int32_t>(), (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(nested[2].values<GgufArray>()[0].values<double>(), (std::vector<double>{3.5}));

  // Whole-value equality against what was written, entry by entry, in order.
  GgufFile again = GgufFile::from_bytes("again.gguf", w.to_bytes());
  for (std::size_t i = 0; i < f.metadata().size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, again.metadata()[i].key);
    EXPECT_TRUE(f.metadata()[i].value == again.metadata()[i].value);
  }
}

TEST(GgufRoundTrip, TypeMismatchNamesFileAndKey) {
  GgufFile f = GgufFile::from_bytes("mm.gguf", writer_with_every_type().to_bytes());
  try {
    f.get<std::uint32_t>("t.string");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    std::string msg = e.what();
    EXPECT_NE(msg.find("mm.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("t.string"), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected u32, found string"), std::string::npos) << msg;
  }
  try {
    f.at("t.arr_f32").array<std::int32_t>(f.key_context("t.arr_f32"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("array of f32"), std::string::npos) << e.what();
  }
  try {
    f.at("missing.key");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos);
  }
}

TEST(GgufRoundTrip, TensorsAreAlignedAndViewedInPlace) {
  GgufWriter w;
  w.add("general.alignment", std::uint32_t{64});
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<float> b = {-1.5f};
  w.add_tensor("a", GgmlType::F32, {3, 2}, float_bytes(a));
  w.add_tensor("b", GgmlType::F32, {1}, float_bytes(b));
  std::vector<std::byte> q(18 * 2, std::byte{0x11});
  w.add_tensor("q", GgmlType::Q4_0, {32, 1, 2}, q);
  w.add_tensor("empty", GgmlType::F32, {0, 4}, {});
  std::vector<std::byte> bytes = w.to_bytes();
  EXPECT_EQ(bytes.size() % 64, 0u);

  GgufFile f = GgufFile::from_bytes("t.gguf", bytes);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.tensors().size(), 4u);
  const GgufTensorInfo& ta = f.tensor("a");
  EXPECT_EQ(ta.dims, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(ta.shape(), (Shape{2, 3}));
  EXPECT_EQ(ta.n_elements, 6u);
  EXPECT_EQ(ta.n_bytes, 24u);
  std::span<const std::byte> da = f.tensor_data("a");
  ASSERT_EQ(da.size(), 24u);
  EXPECT_EQ(std::memcmp(da.data(), a.data(), 24), 0);
  EXPECT_EQ(da.data(), f.bytes().data() + f.data_offset() + ta.offset);  // zero-copy
  const GgufTensorInfo& tb = f.tensor("b");
  EXPECT_EQ(tb.offset % 64, 0u);
  EXPECT_EQ(f.tensor_data(tb)[0], float_bytes(b)[0]);
  const GgufTensorInfo& tq = f.tensor("q");
  EXPECT_EQ(tq.type, GgmlType::Q4_0);
  EXPECT_EQ(tq.shape(), (Shape{2, 1, 32}));
  EXPECT_EQ(tq.n_bytes, 36u);
  EXPECT_EQ(f.tensor_data(tq).size(), 36u);
  EXPECT_EQ(f.tensor("empty").n_bytes, 0u);
  EXPECT_TRUE(f.tensor_data("empty").empty());
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  EXPECT_THROW(f.tensor("nope"), Error);

  // An info that does not belong to this file is refused, not read out of bounds.
  GgufTensorInfo forged = ta;
  forged.offset = 1ull << 40;
  EXPECT_THROW(f.tensor_data(forged), Error);
}

TEST(GgufRoundTrip, OpensFromDiskThroughTheMapping) {
  GgufWriter w = writer_with_every_type();
  std::vector<float> a = {1, 2, 3, 4};
  w.add_tensor("w", GgmlType::F32, {4}, float_bytes(a));
  auto path = std::filesystem::temp_directory_path() /
              ("mlxn_gguf_roundtrip_" + std::to_string(::getpid()) + ".gguf");
  w.write(path);
  {
    GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.name(), path.string());
    EXPECT_EQ(f.get<std::uint64_t>("t.u64"), std::numeric_limits<std::uint64_t>::max());
    std::span<const std::byte> d = f.tensor_data("w");
    EXPECT_EQ(std::memcmp(d.data(), a.data(), 16), 0);
    GgufFile moved = std::move(f);  // views stay valid across moves
    EXPECT_EQ(std::memcmp(moved.tensor_data("w").data(), a.data(), 16), 0);
  }
  std::filesystem::remove(path);
  try {
    GgufFile::open(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
  }
}

TEST(GgufRoundTrip, WriterRejectsInvalidInput) {
  GgufWriter w;
  w.add("k", std::uint32_t{1});
  EXPECT_THROW(w.add("k", std::uint32_t{2}), Error);
  EXPECT_THROW(w.add("general.alignment", std::uint32_t{48}), Error);
  EXPECT_THROW(w.add("general.alignment", std::uint64_t{64}), Error);
  std::vector<std::byte> q(18);
  EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {16, 2}, q), Error);  // row not whole blocks
  EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {32, 2}, q), Error);  // too few bytes
  EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {32, 1, 1, 1, 1}, q), Error);
  w.add_tensor("q", GgmlType::Q4_0, {32}, q);
  EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_0, {32}, q), Error);
  EXPECT_THROW(w.add("general.alignment", std::uint32_t{64}), Error);  // after tensors
}

}  // namespace
}  // namespace mlxn::io
