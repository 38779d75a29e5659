// Tests for safetensors reading and writing: every dtype round trip, zero-copy views, f32
// conversion, explicit uploads, the writer's checks, and FileMapping.
#include "mlxn/io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "io_test_util.h"
#include "mlxn/core/device.h"
#include "mlxn/core/half.h"
#include "mlxn/io/file_mapping.h"
#include "mlxn/io/safetensors_writer.h"

namespace mlxn::io {
namespace {

using test::expect_error;
using test::TempDir;

// Test values that every dtype represents exactly (unsigned ones use the second set).
const std::vector<double> kSignedValues = {0, 1, -1, 2, 1.5, -0.5};
const std::vector<double> kIntValues = {0, 1, -1, 2, 100, -100};
const std::vector<double> kUnsignedValues = {0, 1, 2, 3, 100, 255};
const std::vector<double> kBoolValues = {0, 1, 1, 0, 1, 0};

// F8 encodings of kSignedValues, from the format definitions (E4M3: bias 7; E5M2: bias 15).
const std::vector<std::uint8_t> kE4M3Bytes = {0x00, 0x38, 0xB8, 0x40, 0x3C, 0xB0};
const std::vector<std::uint8_t> kE5M2Bytes = {0x00, 0x3C, 0xBC, 0x40, 0x3E, 0xB8};

const std::vector<double>& values_for(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::I64:
    case TensorDType::I32:
    case TensorDType::I16:
    case TensorDType::I8:
      return kIntValues;
    case TensorDType::U64:
    case TensorDType::U32:
    case TensorDType::U16:
    case TensorDType::U8:
      return kUnsignedValues;
    case TensorDType::Bool:
      return kBoolValues;
    default:
      return kSignedValues;
  }
}

template <class T>
void put(std::vector<std::byte>& out, T value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

// Encodes values (exactly representable ones) in `dtype`, little-endian.
std::vector<std::byte> encode(TensorDType dtype, const std::vector<double>& values) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    switch (dtype) {
      case TensorDType::F64:
        put(out, v);
        break;
      case TensorDType::F32:
        put(out, static_cast<float>(v));
        break;
      case TensorDType::F16:
        put(out, f32_to_f16_bits(static_cast<float>(v)));
        break;
      case TensorDType::BF16:
        put(out, f32_to_bf16_bits(static_cast<float>(v)));
        break;
      case TensorDType::F8E4M3:
        put(out, kE4M3Bytes[i]);
        break;
      case TensorDType::F8E5M2:
        put(out, kE5M2Bytes[i]);
        break;
      case TensorDType::I64:
        put(out, static_cast<std::int64_t>(v));
        break;
      case TensorDType::I32:
        put(out, static_cast<std::int32_t>(v));
        break;
      case TensorDType::I16:
        put(out, static_cast<std::int16_t>(v));
        break;
      case TensorDType::I8:
        put(out, static_cast<std::int8_t>(v));
        break;
      case TensorDType::U64:
        put(out, static_cast<std::uint64_t>(v));
        break;
      case TensorDType::U32:
        put(out, static_cast<std::uint32_t>(v));
        break;
      case TensorDType::U16:
        put(out, static_cast<std::uint16_t>(v));
        break;
      case TensorDType::U8:
      case TensorDType::Bool:
        put(out, static_cast<std::uint8_t>(v));
        break;
    }
  }
  return out;
}

std::vector<TensorDType> all_dtypes() {
  std::vector<TensorDType> out;
  for (int i = 0; i < kTensorDTypeCount; ++i) out.push_back(static_cast<TensorDType>(i));
  return out;
}

std::string tensor_name(TensorDType dtype) {
  return "t." + std::string(tensor_dtype_name(dtype));
}

TEST(SafetensorsDTypeTest, NamesSizesAndMapping) {
  EXPECT_EQ(all_dtypes().size(), 15u);
  for (TensorDType dtype : all_dtypes()) {
    EXPECT_EQ(tensor_dtype_from_name(tensor_dtype_name(dtype)), dtype);
    const std::optional<DType> mapped = to_dtype(dtype);
    if (dtype == TensorDType::F8E4M3 || dtype == TensorDType::F8E5M2) {
      EXPECT_FALSE(mapped.has_value());
      EXPECT_EQ(tensor_dtype_size(dtype), 1u);
    } else {
      ASSERT_TRUE(mapped.has_value()) << tensor_dtype_name(dtype);
      EXPECT_EQ(dtype_size(*mapped), tensor_dtype_size(dtype));
      EXPECT_EQ(tensor_dtype_from(*mapped), dtype);
    }
  }
  EXPECT_EQ(tensor_dtype_name(TensorDType::F8E4M3), "F8_E4M3");
  EXPECT_EQ(tensor_dtype_name(TensorDType::Bool), "BOOL");
  EXPECT_FALSE(tensor_dtype_from_name("f32").has_value());
  EXPECT_FALSE(tensor_dtype_from_name("F4").has_value());
  EXPECT_TRUE(tensor_dtype_is_float(TensorDType::F8E5M2));
  EXPECT_FALSE(tensor_dtype_is_float(TensorDType::U8));
}

TEST(SafetensorsDTypeTest, F8Decoding) {
  EXPECT_EQ(f8e4m3_to_f32(0x7E), 448.0f);                // largest finite E4M3
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(0x7F)));          // the only NaN pattern (no inf)
  EXPECT_EQ(f8e4m3_to_f32(0x78), 256.0f);                // e=15 is finite in the fn variant
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(f8e5m2_to_f32(0x7B), 57344.0f);              // largest finite E5M2
  EXPECT_TRUE(std::isinf(f8e5m2_to_f32(0x7C)));
  EXPECT_TRUE(std::isnan(f8e5m2_to_f32(0x7D)));
  EXPECT_EQ(f8e5m2_to_f32(0x01), std::ldexp(1.0f, -16));
}

TEST(SafetensorsTest, RoundTripEveryDType) {
  TempDir dir;
  SafetensorsWriter writer;
  for (TensorDType dtype : all_dtypes()) {
    writer.add(tensor_name(dtype), dtype, {2, 3}, encode(dtype, values_for(dtype)));
  }
  writer.add("scalar", TensorDType::F32, {}, std::vector<float>{7.0f});
  writer.add("empty", TensorDType::F16, {0, 4}, std::span<const std::byte>());
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "h\xc3\xa9llo");  // UTF-8 passes through untouched
  writer.write(dir / "all.safetensors");

  const SafetensorsFile file = SafetensorsFile::open(dir / "all.safetensors");
  EXPECT_EQ(file.size(), 17u);
  EXPECT_EQ(file.data_offset() % 8, 0u) << "header padding must align the data area";
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("note"), "h\xc3\xa9llo");
  for (TensorDType dtype : all_dtypes()) {
    SCOPED_TRACE(tensor_dtype_name(dtype));
    const TensorView& t = file.at(tensor_name(dtype));
    EXPECT_EQ(t.dtype, dtype);
    EXPECT_EQ(t.shape, (Shape{2, 3}));
    EXPECT_EQ(t.numel(), 6);
    const std::vector<std::byte> expected = encode(dtype, values_for(dtype));
    ASSERT_EQ(t.bytes.size(), expected.size());
    EXPECT_EQ(std::memcmp(t.bytes.data(), expected.data(), expected.size()), 0);
    const std::vector<float> f32 = tensor_to_f32(t);
    ASSERT_EQ(f32.size(), 6u);
    for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(f32[i], values_for(dtype)[i]) << i;
  }
  EXPECT_EQ(tensor_to_f32(file.at("scalar")), std::vector<float>{7.0f});
  EXPECT_EQ(file.at("scalar").numel(), 1);
  EXPECT_EQ(file.at("empty").numel(), 0);
  EXPECT_TRUE(file.at("empty").bytes.empty());
  // The same bytes come back through from_bytes.
  const SafetensorsFile copy =
      SafetensorsFile::from_bytes("copy", test::read_file(dir / "all.safetensors"));
  EXPECT_EQ(copy.size(), file.size());
  EXPECT_EQ(copy.tensor_bytes(), file.tensor_bytes());
}

TEST(SafetensorsTest, TensorsInFileOrderAndLookup) {
  SafetensorsWriter writer;
  writer.add("z", TensorDType::U8, {1}, std::vector<std::uint8_t>{1});
  writer.add("a", TensorDType::U8, {2}, std::vector<std::uint8_t>{2, 3});
  writer.add("m", TensorDType::U8, {3}, std::vector<std::uint8_t>{4, 5, 6});
  const SafetensorsFile file = SafetensorsFile::from_bytes("order", writer.to_bytes());
  ASSERT_EQ(file.size(), 3u);
  EXPECT_EQ(file.tensors()[0].name, "z");
  EXPECT_EQ(file.tensors()[1].name, "a");
  EXPECT_EQ(file.tensors()[2].name, "m");
  EXPECT_EQ(file.tensor_bytes(), 6u);
  EXPECT_TRUE(file.contains("a"));
  EXPECT_EQ(file.find("nope"), nullptr);
  expect_error([&] { file.at("nope"); }, ErrorKind::InvalidArgument, {"order", "'nope'"});
}

TEST(SafetensorsTest, ViewsAreZeroCopyIntoTheMapping) {
  TempDir dir;
  SafetensorsWriter writer;
  std::vector<float> values(1000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.25f;
  writer.add("w", TensorDType::F32, {10, 100}, values);
  writer.add("b", TensorDType::F32, {10}, std::vector<float>(10, 1.0f));
  writer.write(dir / "w.safetensors");
  const auto file_size = std::filesystem::file_size(dir / "w.safetensors");

  SafetensorsFile file = SafetensorsFile::open(dir / "w.safetensors");
  const std::span<const std::byte> all = file.bytes();
  ASSERT_EQ(all.size(), file_size);
  for (const TensorView& t : file.tensors()) {
    EXPECT_GE(t.bytes.data(), all.data() + file.data_offset()) << t.name;
    EXPECT_LE(t.bytes.data() + t.bytes.size(), all.data() + all.size()) << t.name;
  }
  const std::byte* w = file.at("w").bytes.data();
  EXPECT_EQ(w, all.data() + file.data_offset());  // "w" was written first
  // Moving the file keeps the views where they were.
  SafetensorsFile moved = std::move(file);
  EXPECT_EQ(moved.at("w").bytes.data(), w);
  EXPECT_EQ(tensor_to_f32(moved.at("w")), values);
  moved.prefetch();  // advice only; must not disturb the views
  EXPECT_EQ(moved.at("w").bytes.data(), w);
}

TEST(SafetensorsTest, UploadKeepsOrConvertsExplicitly) {
  Device device = Device::open(Backend::Cpu);
  SafetensorsWriter writer;
  const std::vector<float> values = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
  writer.add("f32", TensorDType::F32, {2, 3}, values);
  writer.add("f8", TensorDType::F8E4M3, {2, 3}, encode(TensorDType::F8E4M3, kSignedValues));
  writer.add("u32", TensorDType::U32, {3}, std::vector<std::uint32_t>{1, 2, 0xFFFFFFFFu});
  writer.add("empty", TensorDType::F32, {0}, std::span<const std::byte>());
  const SafetensorsFile file = SafetensorsFile::from_bytes("up", writer.to_bytes());

  const Buffer same = upload_tensor(device, file.at("f32"));
  EXPECT_EQ(same.dtype(), DType::F32);
  EXPECT_EQ(same.shape(), (Shape{2, 3}));
  EXPECT_EQ(same.to_vector<float>(), values);

  const Buffer raw = upload_tensor(device, file.at("u32"));
  EXPECT_EQ(raw.dtype(), DType::U32);
  EXPECT_EQ(raw.to_vector<std::uint32_t>(), (std::vector<std::uint32_t>{1, 2, 0xFFFFFFFFu}));

  const Buffer bf16 = upload_tensor_as(device, file.at("f32"), DType::BF16);
  EXPECT_EQ(bf16.dtype(), DType::BF16);
  const auto bits = bf16.to_vector<std::uint16_t>();
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(bits[i], f32_to_bf16_bits(values[i]));

  const Buffer from_f8 = upload_tensor_as(device, file.at("f8"), DType::F32);
  const auto f8_values = from_f8.to_vector<float>();
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(f8_values[i], kSignedValues[i]);

  // No implicit conversions: F8 has no mlxn dtype, integers are not a conversion target.
  expect_error([&] { upload_tensor(device, file.at("f8")); }, ErrorKind::UnsupportedDType,
               {"'f8'", "F8_E4M3"});
  expect_error([&] { upload_tensor_as(device, file.at("f32"), DType::I32); },
               ErrorKind::InvalidArgument, {"'f32'", "i32"});
  expect_error([&] { upload_tensor(device, file.at("empty")); }, ErrorKind::InvalidArgument,
               {"'empty'"});
}

TEST(SafetensorsTest, ChunkedConversionCoversLargeTensors) {
  Device device = Device::open(Backend::Cpu);
  const std::size_t n = (std::size_t{1} << 20) + 37;  // more than one conversion chunk
  std::vector<std::uint16_t> half(n);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  for (auto& h : half) h = f32_to_f16_bits(dist(rng));
  SafetensorsWriter writer;
  writer.add("h", TensorDType::F16, {static_cast<std::int64_t>(n)}, half);
  const SafetensorsFile file = SafetensorsFile::from_bytes("big", writer.to_bytes());
  const auto out = upload_tensor_as(device, file.at("h"), DType::F32).to_vector<float>();
  ASSERT_EQ(out.size(), n);
  for (std::size_t i : {std::size_t{0}, std::size_t{1} << 20, n - 1}) {
    EXPECT_EQ(out[i], f16_bits_to_f32(half[i])) << i;
  }
}

TEST(SafetensorsTest, ConversionRejectsInconsistentViews) {
  const std::vector<std::byte> five(5);
  const TensorView bad{"bad", TensorDType::F32, {2}, five};
  expect_error([&] { tensor_to_f32(bad); }, ErrorKind::InvalidArgument, {"'bad'"});
  std::vector<float> out(3);
  const std::vector<std::byte> eight(8);
  const TensorView ok{"ok", TensorDType::F32, {2}, eight};
  expect_error([&] { tensor_to_f32(ok, out); }, ErrorKind::InvalidArgument, {"'ok'"});
  expect_error([&] { tensor_to_f32(ok, 1, std::span<float>(out.data(), 2)); },
               ErrorKind::InvalidArgument, {"'ok'"});
}

TEST(SafetensorsWriterTest, RejectsBadTensors) {
  SafetensorsWriter writer;
  writer.add("a", TensorDType::F32, {1}, std::vector<float>{1.0f});
  const std::vector<float> one = {1.0f};
  expect_error([&] { writer.add("a", TensorDType::F32, {1}, one); }, ErrorKind::InvalidArgument,
               {"'a'", "twice"});
  expect_error([&] { writer.add("", TensorDType::F32, {1}, one); }, ErrorKind::InvalidArgument);
  expect_error([&] { writer.add("__metadata__", TensorDType::F32, {1}, one); },
               ErrorKind::InvalidArgument, {"reserved"});
  expect_error([&] { writer.add("b", TensorDType::F32, {2}, one); }, ErrorKind::InvalidArgument,
               {"'b'", "[2]"});
  expect_error([&] { writer.add("c", TensorDType::F32, {-1}, one); }, ErrorKind::InvalidArgument);
  writer.add("bad\xff", TensorDType::F32, {1}, one);
  expect_error([&] { writer.to_bytes(); }, ErrorKind::InvalidArgument, {"UTF-8"});
}

TEST(SafetensorsWriterTest, WriteFailureIsIo) {
  TempDir dir;
  SafetensorsWriter writer;
  writer.add("a", TensorDType::U8, {1}, std::vector<std::uint8_t>{1});
  expect_error([&] { writer.write(dir / "no_such_dir" / "x.safetensors"); }, ErrorKind::Io,
               {"no_such_dir"});
  writer.write(dir / "x.safetensors");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
  EXPECT_EQ(SafetensorsFile::open(dir / "x.safetensors").size(), 1u);
}

TEST(SafetensorsFileMappingTest, MapsWholeFilesAndEmptyOnes) {
  TempDir dir;
  test::write_file(dir / "data.bin", "hello mapping");
  const FileMapping mapping = FileMapping::open(dir / "data.bin");
  ASSERT_EQ(mapping.size(), 13u);
  EXPECT_EQ(std::memcmp(mapping.data(), "hello mapping", 13), 0);
  EXPECT_EQ(mapping.path(), dir / "data.bin");

  test::write_file(dir / "empty.bin", "");
  const FileMapping empty = FileMapping::open(dir / "empty.bin");
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(empty.bytes().empty());
  empty.advise_will_need(0, 100);

  FileMapping moved = FileMapping::open(dir / "data.bin");
  const std::byte* p = moved.data();
  FileMapping other = std::move(moved);
  EXPECT_EQ(other.data(), p);
  EXPECT_EQ(moved.data(), nullptr);
}

TEST(SafetensorsFileMappingTest, ErrorsAreIoNamingThePath) {
  TempDir dir;
  expect_error([&] { FileMapping::open(dir / "missing.bin"); }, ErrorKind::Io,
               {"missing.bin", "No such file"});
  expect_error([&] { FileMapping::open(dir.path()); }, ErrorKind::Io, {"not a regular file"});
  expect_error([&] { SafetensorsFile::open(dir / "missing.safetensors"); }, ErrorKind::Io,
               {"missing.safetensors"});
}

}  // namespace
}  // namespace mlxn::io
