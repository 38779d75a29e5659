// Malformed-input corpus for safetensors files and sharded models, generated in the test: every
// case must throw mlxn::Error (Format, or Io for missing files) naming the file and the problem.
#include <gtest/gtest.h>

#include <string>

#include "io_test_util.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/io/safetensors_model.h"
#include "mlxn/io/safetensors_writer.h"

namespace mlxn::io {
namespace {

using test::expect_error;
using test::TempDir;

constexpr const char* kName = "corpus.safetensors";

// A file whose header is `header` verbatim (length prefix computed) followed by `data_bytes`
// bytes of data.
std::vector<std::byte> make_file(std::string_view header, std::size_t data_bytes = 16) {
  std::vector<std::byte> out;
  test::append_le(out, header.size(), 8);
  test::append(out, header);
  for (std::size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<std::byte>(i * 7 + 1));
  return out;
}

// A tensor entry as JSON text.
std::string entry(std::string_view dtype, std::string_view shape, std::string_view offsets) {
  return R"({"dtype":")" + std::string(dtype) + R"(","shape":)" + std::string(shape) +
         R"(,"data_offsets":)" + std::string(offsets) + "}";
}

// Expects from_bytes on `bytes` to throw Format naming the file and containing `needles`.
void expect_format(const std::vector<std::byte>& bytes,
                   std::initializer_list<std::string_view> needles) {
  expect_error([&] { SafetensorsFile::from_bytes(kName, bytes); }, ErrorKind::Format, {kName});
  expect_error([&] { SafetensorsFile::from_bytes(kName, bytes); }, ErrorKind::Format, needles);
}

// A header with one tensor "t" and a 16-byte data area.
void expect_entry_format(std::string_view dtype, std::string_view shape, std::string_view offsets,
                         std::initializer_list<std::string_view> needles) {
  SCOPED_TRACE(std::string(dtype) + " " + std::string(shape.substr(0, 80)) + " " +
               std::string(offsets));
  const std::string header = R"({"t":)" + entry(dtype, shape, offsets) + "}";
  expect_format(make_file(header), {"'t'"});
  expect_format(make_file(header), needles);
}

std::vector<std::byte> small_valid_file() {
  SafetensorsWriter writer;
  writer.add("a", TensorDType::F32, {2}, std::vector<float>{1.0f, 2.0f});
  writer.add("b", TensorDType::I8, {3}, std::vector<std::int8_t>{1, -2, 3});
  writer.set_metadata("k", "v");
  return writer.to_bytes();
}

TEST(SafetensorsMalformedTest, ControlCasesParse) {
  // The corpus below is only meaningful if these near-identical inputs are accepted.
  EXPECT_EQ(SafetensorsFile::from_bytes(kName, small_valid_file()).size(), 2u);
  const std::string ok = R"({"t":)" + entry("F32", "[2,2]", "[0,16]") + "}";
  EXPECT_EQ(SafetensorsFile::from_bytes(kName, make_file(ok)).size(), 1u);
  const std::string two = R"({"a":)" + entry("U8", "[8]", "[0,8]") + R"(,"b":)" +
                          entry("U8", "[8]", "[8,16]") + R"(,"__metadata__":{"x":"y"}})";
  EXPECT_EQ(SafetensorsFile::from_bytes(kName, make_file(two)).size(), 2u);
  EXPECT_EQ(SafetensorsFile::from_bytes(kName, make_file("{}", 0)).size(), 0u);
  EXPECT_EQ(SafetensorsFile::from_bytes(kName, make_file("{}   ", 0)).size(), 0u);
}

TEST(SafetensorsMalformedTest, EveryTruncationIsRejected) {
  const std::vector<std::byte> full = small_valid_file();
  ASSERT_NO_THROW(SafetensorsFile::from_bytes(kName, full));
  TempDir dir;
  for (std::size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("prefix " + std::to_string(len) + " of " + std::to_string(full.size()));
    const std::vector<std::byte> prefix(full.begin(), full.begin() + len);
    expect_error([&] { SafetensorsFile::from_bytes(kName, prefix); }, ErrorKind::Format, {kName});
    // The mapped path too (an empty file maps to nothing at all).
    const auto path = dir / ("t" + std::to_string(len) + ".safetensors");
    test::write_file(path, prefix);
    expect_error([&] { SafetensorsFile::open(path); }, ErrorKind::Format, {path.string()});
  }
}

TEST(SafetensorsMalformedTest, HeaderLengthOutOfBounds) {
  std::vector<std::byte> bytes = make_file("{}", 0);
  for (std::uint64_t len :
       {std::uint64_t{3}, std::uint64_t{1} << 40, std::uint64_t{1} << 63, ~std::uint64_t{0}}) {
    SCOPED_TRACE(len);
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((len >> (8 * i)) & 0xFF);
    expect_format(bytes, {"header length", "past the end"});
  }
  expect_format(make_file("", 0), {"header is not a JSON object"});
  expect_format({}, {"too short"});
  expect_format(std::vector<std::byte>(7), {"too short"});
}

TEST(SafetensorsMalformedTest, HeaderLengthOverTheCap) {
  // A sparse file larger than the cap: the length fits the file but is refused before any of
  // the header is read.
  TempDir dir;
  const auto path = dir / "huge.safetensors";
  std::vector<std::byte> prefix;
  test::append_le(prefix, kMaxSafetensorsHeaderBytes + 1, 8);
  test::write_file(path, prefix);
  std::filesystem::resize_file(path, kMaxSafetensorsHeaderBytes + 64);
  expect_error([&] { SafetensorsFile::open(path); }, ErrorKind::Format,
               {"huge.safetensors", "exceeds the limit"});
}

TEST(SafetensorsMalformedTest, HeaderNotAJsonObject) {
  for (const char* header : {"{", R"({"t":)", "{}x", "{} {}", R"({"a" "b"})", "{,}"}) {
    SCOPED_TRACE(header);
    expect_format(make_file(header), {"header", "not valid JSON"});
  }
  for (const char* header : {"[]", "[1,2]", "\"text\"", "\"\"", "42", "null", "nul", "true",
                             "hello", " {}", "\xef\xbb\xbf{}" /* a byte-order mark */}) {
    SCOPED_TRACE(header);
    expect_format(make_file(header), {"header is not a JSON object"});
  }
}

TEST(SafetensorsMalformedTest, BadUtf8) {
  const std::string valid = entry("U8", "[1]", "[0,1]");
  for (const std::string& name :
       {std::string("bad\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
        std::string("\xe2\x82"), std::string("\xf4\x90\x80\x80"), std::string("\x80")}) {
    SCOPED_TRACE(name);
    expect_format(make_file("{\"" + name + "\":" + valid + "}"), {"not valid UTF-8"});
  }
  expect_format(make_file(R"({"__metadata__":{"k":")" + std::string("\xfe") + "\"}}"),
                {"not valid UTF-8"});
}

TEST(SafetensorsMalformedTest, BadDtypes) {
  expect_entry_format("F4", "[1]", "[0,1]", {"unknown dtype 'F4'"});
  expect_entry_format("f32", "[1]", "[0,4]", {"unknown dtype 'f32'"});
  expect_entry_format("", "[1]", "[0,1]", {"unknown dtype ''"});
  expect_entry_format("F8_E4M3FNUZ", "[1]", "[0,1]", {"unknown dtype 'F8_E4M3FNUZ'"});
  const std::string numeric = R"({"t":{"dtype":5,"shape":[1],"data_offsets":[0,1]}})";
  expect_format(make_file(numeric), {"'t'", "\"dtype\" is not a string"});
}

TEST(SafetensorsMalformedTest, BadShapes) {
  expect_entry_format("U8", "[-1]", "[0,1]", {"negative dimension -1"});
  expect_entry_format("U8", "[1.5]", "[0,1]", {"non-integer dimension"});
  expect_entry_format("U8", "[1.0]", "[0,1]", {"non-integer dimension"});
  expect_entry_format("U8", R"(["2"])", "[0,2]", {"non-integer dimension"});
  expect_entry_format("U8", "[true]", "[0,1]", {"non-integer dimension"});
  expect_entry_format("U8", "[1e30]", "[0,1]", {"non-integer dimension"});
  expect_entry_format("U8", "[99999999999999999999999]", "[0,1]", {"non-integer dimension"});
  expect_entry_format("U8", "[9223372036854775808]", "[0,1]", {"too large"});
  expect_entry_format("U8", "4", "[0,4]", {"\"shape\" is not an array"});
  // 2^62 * 2^62 elements: the product overflows 64 bits; a naive product wraps to 0 and would
  // "match" empty offsets.
  expect_entry_format("F32", "[4611686018427387904,4611686018427387904]", "[0,0]", {"overflow"});
  expect_entry_format("U8", "[4294967296,4294967296]", "[0,0]", {"overflow"});
  // Fits in elements but not in bytes.
  expect_entry_format("F64", "[4611686018427387904]", "[0,0]", {"overflow"});
  std::string rank33 = "[";
  for (int i = 0; i < 33; ++i) rank33 += i ? ",1" : "1";
  expect_entry_format("U8", rank33 + "]", "[0,1]", {"33 dimensions"});
}

TEST(SafetensorsMalformedTest, BadOffsets) {
  expect_entry_format("U8", "[4]", "[8,4]", {"[8, 4]", "end before they begin"});
  expect_entry_format("U8", "[4]", "[14,18]", {"[14, 18]", "past the data area (16 bytes)"});
  expect_entry_format("U8", "[0]", "[17,17]", {"past the data area"});
  expect_entry_format("U8", "[1]", "[18446744073709551615,0]", {"end before they begin"});
  expect_entry_format("U8", "[4]", "[0]", {"\"data_offsets\" is not two"});
  expect_entry_format("U8", "[4]", "[0,4,8]", {"\"data_offsets\" is not two"});
  expect_entry_format("U8", "[4]", "[-4,0]", {"\"data_offsets\" is not two"});
  expect_entry_format("U8", "[4]", "[0.0,4.0]", {"\"data_offsets\" is not two"});
  expect_entry_format("U8", "[4]", R"({"begin":0})", {"\"data_offsets\" is not two"});
  // Overlaps, in either header order.
  for (const char* offsets_b : {"[4,12]", "[0,8]", "[2,4]"}) {
    SCOPED_TRACE(offsets_b);
    const std::string header =
        R"({"a":)" + entry("U8", "[8]", "[0,8]") + R"(,"b":)" +
        entry("U8", "[" + std::to_string(8 - (offsets_b[1] == '2') * 6) + "]", offsets_b) + "}";
    expect_format(make_file(header), {"overlap", "'a'", "'b'"});
  }
}

TEST(SafetensorsMalformedTest, SizeMismatch) {
  expect_entry_format("F32", "[2]", "[0,4]", {"needs 8 bytes", "span 4"});
  expect_entry_format("F32", "[2,2]", "[0,12]", {"needs 16 bytes"});
  expect_entry_format("BF16", "[]", "[0,4]", {"needs 2 bytes"});
  expect_entry_format("U8", "[0]", "[0,4]", {"needs 0 bytes"});
}

TEST(SafetensorsMalformedTest, MissingAndUnexpectedFields) {
  expect_format(make_file(R"({"t":{"shape":[1],"data_offsets":[0,1]}})"), {"'t'", "\"dtype\""});
  expect_format(make_file(R"({"t":{"dtype":"U8","data_offsets":[0,1]}})"), {"'t'", "\"shape\""});
  expect_format(make_file(R"({"t":{"dtype":"U8","shape":[1]}})"), {"'t'", "\"data_offsets\""});
  expect_format(make_file(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})"),
                {"'t'", "unexpected field 'x'"});
  expect_format(make_file(R"({"t":[1,2]})"), {"'t'", "not a JSON object"});
  expect_format(make_file(R"({"t":null})"), {"'t'", "not a JSON object"});
}

TEST(SafetensorsMalformedTest, DuplicateNamesAndKeys) {
  const std::string e = entry("U8", "[4]", "[0,4]");
  const std::string e2 = entry("U8", "[4]", "[4,8]");
  expect_format(make_file(R"({"w":)" + e + R"(,"w":)" + e2 + "}"), {"duplicate key 'w'"});
  expect_format(make_file(R"({"w":{"dtype":"U8","dtype":"U8","shape":[4],"data_offsets":[0,4]}})"),
                {"duplicate key 'dtype'"});
  expect_format(make_file(R"({"__metadata__":{"k":"a","k":"b"}})"), {"duplicate key 'k'"});
  expect_format(make_file(R"({"__metadata__":{},"__metadata__":{}})"),
                {"duplicate key '__metadata__'"});
}

TEST(SafetensorsMalformedTest, MetadataMustMapStringsToStrings) {
  for (const char* meta : {R"({"k":1})", R"({"k":null})", R"({"k":{"n":"v"}})", R"({"k":["v"]})",
                           R"({"a":"ok","k":true})"}) {
    SCOPED_TRACE(meta);
    expect_format(make_file(std::string(R"({"__metadata__":)") + meta + "}"),
                  {"__metadata__ value of 'k' is not a string"});
  }
  for (const char* meta : {"[]", "\"s\"", "3", "null"}) {
    SCOPED_TRACE(meta);
    expect_format(make_file(std::string(R"({"__metadata__":)") + meta + "}"),
                  {"__metadata__ is not a JSON object"});
  }
}

TEST(SafetensorsMalformedTest, DeepNestingAndHugeArrays) {
  expect_format(make_file(R"({"t":)" + std::string(100000, '[')), {"nests deeper than"});
  std::string deep_objects;
  for (int i = 0; i < 100000; ++i) deep_objects += R"({"a":)";
  expect_format(make_file(deep_objects), {"nests deeper than"});
  expect_format(make_file(R"({"__metadata__":)" + deep_objects), {"nests deeper than"});
  // Deep nesting where a tensor entry or metadata is expected, closed properly.
  const std::string nested = std::string(1000, '[') + std::string(1000, ']');
  expect_format(make_file(R"({"t":)" + nested + "}"), {"nests deeper than"});
  std::string big_shape = "[";
  for (int i = 0; i < 100000; ++i) big_shape += i ? ",1" : "1";
  expect_format(make_file(R"({"t":)" + entry("U8", big_shape + "]", "[0,1]") + "}"),
                {"header has an array longer than"});
}

TEST(SafetensorsMalformedTest, HostileNamesAreEscapedAndShortened) {
  const std::string name = std::string(10000, 'x') + "\n";
  const std::string header =
      "{\"" + std::string(10000, 'x') + "\\n\":" + entry("F4", "[1]", "[0,1]") + "}";
  const std::string message =
      expect_error([&] { SafetensorsFile::from_bytes(kName, make_file(header)); },
                   ErrorKind::Format, {kName, "unknown dtype 'F4'", "..."});
  EXPECT_LT(message.size(), 1000u);
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

// --- Sharded models ---

void write_shard(const std::filesystem::path& path, const std::vector<std::string>& names) {
  SafetensorsWriter writer;
  for (const std::string& name : names) {
    writer.add(name, TensorDType::U8, {2}, std::vector<std::uint8_t>{1, 2});
  }
  writer.write(path);
}

TEST(SafetensorsMalformedTest, MissingShard) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {"a"});
  test::write_file(dir / "model.safetensors.index.json",
                   R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Io,
               {"model.safetensors.index.json", "'s2.safetensors'", "missing", "'b'"});
}

TEST(SafetensorsMalformedTest, TensorMissingFromItsShard) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {"a"});
  write_shard(dir / "s2.safetensors", {"b"});
  test::write_file(dir / "model.safetensors.index.json",
                   R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})");
  expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Format,
               {"model.safetensors.index.json", "'b'", "'s1.safetensors'", "does not contain"});
}

TEST(SafetensorsMalformedTest, TensorInTwoShards) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {"a", "shared"});
  write_shard(dir / "s2.safetensors", {"b", "shared"});
  const std::initializer_list<std::string_view> both = {"'shared'", "s1.safetensors",
                                                        "s2.safetensors", "appears in both"};
  expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Format, both);
  test::write_file(dir / "model.safetensors.index.json",
                   R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors",
                       "shared":"s1.safetensors"}})");
  expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Format, both);
}

TEST(SafetensorsMalformedTest, BadIndexes) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {"a"});
  const auto index = dir / "model.safetensors.index.json";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON"},
      {"[]", "index is not a JSON object"},
      {R"({"metadata":{}})", "no \"weight_map\""},
      {R"({"weight_map":[]})", "\"weight_map\" is not a JSON object"},
      {R"({"weight_map":{}})", "lists no tensors"},
      {R"({"weight_map":{"a":1}})", "entry for tensor 'a' is not a string"},
      {R"({"weight_map":{"a":"../s1.safetensors"}})", "not a file name"},
      {R"({"weight_map":{"a":"/etc/passwd"}})", "not a file name"},
      {R"({"weight_map":{"a":".."}})", "not a file name"},
      {R"({"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}})", "duplicate key 'a'"},
      {std::string(100000, '['), "nests deeper than"},
      {"{\"weight_map\":{\"a\xff\":\"s1.safetensors\"}}", "not valid UTF-8"},
  };
  for (const auto& [text, needle] : cases) {
    SCOPED_TRACE(text.substr(0, 80));
    test::write_file(index, text);
    expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Format,
                 {"model.safetensors.index.json", needle});
  }
}

TEST(SafetensorsMalformedTest, MalformedShardIsNamed) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {"a"});
  test::write_file(dir / "s2.safetensors", "garbage!");
  test::write_file(dir / "model.safetensors.index.json",
                   R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Format, {"s2.safetensors"});
}

TEST(SafetensorsMalformedTest, MissingFilesAreIo) {
  TempDir dir;
  expect_error([&] { SafetensorsModel::open(dir / "nothing"); }, ErrorKind::Io, {"nothing"});
  expect_error([&] { SafetensorsModel::open(dir.path()); }, ErrorKind::Io,
               {dir.path().string(), "no .safetensors files"});
  expect_error([&] { SafetensorsModel::open(dir / "x.safetensors.index.json"); }, ErrorKind::Io,
               {"x.safetensors.index.json"});
}

}  // namespace
}  // namespace mlxn::io
