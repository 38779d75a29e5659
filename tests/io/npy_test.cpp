// .npy reader and writer: round trips of every dtype, files laid out byte for byte as NumPy
// writes them (built here from the documented format), other legal headers, and a corpus of
// malformed files that must be rejected with an error naming the file.
#include "mlxn/io/npy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "io/io_test_util.h"

namespace mlxn::io {
namespace {

using test::append;
using test::append_le;
using test::expect_error;
using test::TempDir;

// A .npy file from its parts: magic, version, header length (2 bytes for 1.0, else 4), header
// text and data, exactly as given (no padding is added here).
std::vector<std::byte> npy_file(int major, const std::string& header,
                                const std::vector<std::byte>& data, int minor = 0) {
  std::vector<std::byte> out;
  append(out, std::string_view("\x93NUMPY", 6));
  out.push_back(static_cast<std::byte>(major));
  out.push_back(static_cast<std::byte>(minor));
  append_le(out, header.size(), major == 1 ? 2 : 4);
  append(out, header);
  append(out, std::span<const std::byte>(data));
  return out;
}

std::vector<std::byte> f32_bytes(const std::vector<float>& v) {
  return test::to_bytes(v);
}

// The header np.save (NumPy >= 1.23, format 1.0) writes for a float32 array of shape (2, 3):
// the dict repr with keys in sorted order, 21 - len("2") = 20 spaces of room for the first axis
// to grow, then spaces up to 10 + len + 1 = 128 (a multiple of 64), then '\n'.
std::string numpy_header_f32_2x3() {
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(h.size(), 59u);
  h += std::string(20, ' ');                 // growth room
  h += std::string(128 - 10 - 79 - 1, ' ');  // alignment
  h += '\n';
  EXPECT_EQ(h.size(), 118u);
  return h;
}

TEST(NpyTest, ReadsTheBytesNumpyWrites) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.125f, -7.0f, 1e-3f};
  std::vector<std::byte> file = npy_file(1, numpy_header_f32_2x3(), f32_bytes(values));
  ASSERT_EQ(file.size(), 128u + 24u);
  // The prefix as documented: magic, 1.0, header length 118 little-endian.
  EXPECT_EQ(static_cast<int>(file[8]), 118);
  EXPECT_EQ(static_cast<int>(file[9]), 0);
  const NpyArray a = parse_npy(file, "x.npy");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (Shape{2, 3}));
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(a.to_vector<float>(), values);
}

TEST(NpyTest, WritesTheBytesNumpyWrites) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.125f, -7.0f, 1e-3f};
  const std::vector<std::byte> expected = npy_file(1, numpy_header_f32_2x3(), f32_bytes(values));
  EXPECT_EQ(npy_bytes(DType::F32, {2, 3}, test::to_bytes(values)), expected);
}

TEST(NpyTest, WritesOneDimensionalAndScalarHeadersAsNumpy) {
  // (5,) int64: 57-byte dict + 20 growth spaces; 10 + 77 + 1 = 88 -> padded to 128.
  std::vector<std::int64_t> v = {1, -2, 3, -4, 1ll << 40};
  std::string h = "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }";
  h += std::string(20, ' ') + std::string(128 - 88, ' ') + "\n";
  EXPECT_EQ(npy_bytes(DType::I64, {5}, test::to_bytes(v)), npy_file(1, h, test::to_bytes(v)));

  // A 0-d uint8 has no axis to grow: 55-byte dict; 10 + 55 + 1 = 66 -> padded to 128.
  std::vector<std::uint8_t> s = {200};
  std::string hs = "{'descr': '|u1', 'fortran_order': False, 'shape': (), }";
  hs += std::string(128 - 66, ' ') + "\n";
  EXPECT_EQ(npy_bytes(DType::U8, {}, test::to_bytes(s)), npy_file(1, hs, test::to_bytes(s)));
}

// The growth room counts toward the alignment: here the dict alone (98 bytes; 10 + 98 + 1 = 109)
// would fit a 128-byte prefix, but with its 21 - len("0") = 20 spaces of growth room it needs
// 129 bytes and is padded to 192.
TEST(NpyTest, GrowthRoomCountsTowardTheAlignment) {
  const Shape shape = {0, 1000000000, 1000000000, 1000000000, 1000};
  std::string h =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000000, 1000000000, "
      "1000000000, 1000), }";
  ASSERT_EQ(h.size(), 98u);
  h += std::string(20, ' ') + std::string(192 - 129, ' ') + "\n";
  EXPECT_EQ(npy_bytes(DType::F32, shape, {}), npy_file(1, h, {}));
}

TEST(NpyTest, DescrNames) {
  EXPECT_EQ(npy_descr(DType::F32), "<f4");
  EXPECT_EQ(npy_descr(DType::F64), "<f8");
  EXPECT_EQ(npy_descr(DType::F16), "<f2");
  EXPECT_EQ(npy_descr(DType::I32), "<i4");
  EXPECT_EQ(npy_descr(DType::I64), "<i8");
  EXPECT_EQ(npy_descr(DType::I8), "|i1");
  EXPECT_EQ(npy_descr(DType::U8), "|u1");
  EXPECT_EQ(npy_descr(DType::U16), "<u2");
  EXPECT_EQ(npy_descr(DType::Bool), "|b1");
  expect_error([] { npy_descr(DType::BF16); }, ErrorKind::UnsupportedDType, {"bf16"});
}

// Every dtype and a range of shapes (0-d, empty, 1-d, 3-d) survive write_npy + read_npy; the
// data starts 64-byte aligned and the header length field is consistent.
TEST(NpyTest, RoundTripsEveryDtypeAndShape) {
  TempDir dir;
  std::mt19937 rng(1234);
  const DType dtypes[] = {DType::F16, DType::F32, DType::F64, DType::I8,  DType::I16, DType::I32,
                          DType::I64, DType::U8,  DType::U16, DType::U32, DType::U64, DType::Bool};
  const Shape shapes[] = {{}, {0}, {7}, {2, 3}, {3, 0, 2}, {2, 3, 5}, {1, 1, 1, 4}, {1000}};
  int i = 0;
  for (DType dtype : dtypes) {
    for (const Shape& shape : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_to_string(shape));
      std::vector<std::byte> data(shape_numel(shape) * dtype_size(dtype));
      for (auto& b : data) b = static_cast<std::byte>(rng() & 0xFF);
      if (dtype == DType::Bool) {
        for (auto& b : data) b = static_cast<std::byte>(static_cast<int>(b) & 1);
      }
      const auto path = dir / ("a" + std::to_string(i++) + ".npy");
      write_npy(path, dtype, shape, data);
      const std::vector<std::byte> file = test::read_file(path);
      ASSERT_GE(file.size(), 10u);
      const std::size_t header_len =
          static_cast<std::size_t>(file[8]) | (static_cast<std::size_t>(file[9]) << 8);
      EXPECT_EQ(static_cast<int>(file[6]), 1);
      EXPECT_EQ((10 + header_len) % 64, 0u);
      EXPECT_EQ(file.size(), 10 + header_len + data.size());
      EXPECT_EQ(static_cast<char>(file[10 + header_len - 1]), '\n');
      const NpyArray a = read_npy(path);
      EXPECT_EQ(a.dtype, dtype);
      EXPECT_EQ(a.shape, shape);
      EXPECT_EQ(a.data, data);
    }
  }
  // Only the final files remain: no temporaries left behind.
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, i);
}

TEST(NpyTest, WriteReplacesAnExistingFile) {
  TempDir dir;
  const auto path = dir / "x.npy";
  const std::vector<float> a = {1, 2, 3, 4}, b = {5, 6};
  write_npy(path, Shape{4}, a);
  write_npy(path, Shape{1, 2}, b);
  const NpyArray r = read_npy(path);
  EXPECT_EQ(r.shape, (Shape{1, 2}));
  EXPECT_EQ(r.to_vector<float>(), b);
}

TEST(NpyTest, ReadsVersions2And3) {
  const std::vector<float> values = {4.0f, 5.0f};
  const std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }   \n";
  for (int major : {2, 3}) {
    SCOPED_TRACE(major);
    const NpyArray a = parse_npy(npy_file(major, h, f32_bytes(values)), "v.npy");
    EXPECT_EQ(a.shape, (Shape{2}));
    EXPECT_EQ(a.to_vector<float>(), values);
  }
}

// Legal variations other writers (or older NumPy) produce: other key order, double quotes, no
// trailing comma, 16-byte alignment, no padding at all, one-byte types with any byte order.
TEST(NpyTest, AcceptsOtherLegalHeaders) {
  const std::vector<std::int32_t> v = {7, -8, 9};
  const auto data = test::to_bytes(v);
  const std::string headers[] = {
      "{'shape': (3,), 'fortran_order': False, 'descr': '<i4'}\n",
      "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (3,)}\n",
      "{'descr':'<i4','fortran_order':False,'shape':(3 ,),}\n",
      "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }      \n",
  };
  for (const std::string& h : headers) {
    SCOPED_TRACE(h);
    const NpyArray a = parse_npy(npy_file(1, h, data), "h.npy");
    EXPECT_EQ(a.dtype, DType::I32);
    EXPECT_EQ(a.shape, (Shape{3}));
    EXPECT_EQ(a.to_vector<std::int32_t>(), v);
  }
  for (const char* d : {"|u1", "<u1", ">u1"}) {
    const std::string h =
        std::string("{'descr': '") + d + "', 'fortran_order': False, 'shape': (2, 1), }\n";
    const NpyArray a = parse_npy(npy_file(1, h, test::to_bytes(std::string_view("\x01\xff"))), d);
    EXPECT_EQ(a.dtype, DType::U8);
    EXPECT_EQ(a.shape, (Shape{2, 1}));
  }
}

TEST(NpyTest, MissingFileIsAnIoErrorNamingThePath) {
  TempDir dir;
  const auto path = dir / "nope.npy";
  expect_error([&] { read_npy(path); }, ErrorKind::Io, {path.string()});
}

TEST(NpyTest, EveryTruncationIsRejected) {
  TempDir dir;
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const std::vector<std::byte> file = npy_file(1, numpy_header_f32_2x3(), f32_bytes(values));
  const auto path = dir / "trunc.npy";
  for (std::size_t n = 0; n < file.size(); ++n) {
    SCOPED_TRACE(n);
    test::write_file(path, std::span<const std::byte>(file.data(), n));
    expect_error([&] { read_npy(path); }, ErrorKind::Format, {path.string()});
  }
}

struct BadFile {
  const char* what;
  std::vector<std::byte> bytes;
  ErrorKind kind;
  const char* needle;
};

std::string header_with(const std::string& descr, const std::string& fortran,
                        const std::string& shape) {
  return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

TEST(NpyTest, MalformedFilesAreRejectedNamingTheFile) {
  TempDir dir;
  const auto six = f32_bytes({1, 2, 3, 4, 5, 6});
  const std::string good = header_with("'<f4'", "False", "(2, 3)");
  std::vector<std::byte> bad_magic = npy_file(1, good, six);
  bad_magic[1] = std::byte{'n'};
  std::vector<std::byte> long_len = npy_file(1, good, six);
  long_len[8] = std::byte{0xff};
  long_len[9] = std::byte{0x7f};
  auto extra = six;
  extra.push_back(std::byte{0});
  const std::vector<std::byte> short_data(six.begin(), six.end() - 4);
  constexpr ErrorKind kFormat = ErrorKind::Format;
  constexpr ErrorKind kDtype = ErrorKind::UnsupportedDType;
  const std::vector<BadFile> cases = {
      {"bad magic", bad_magic, kFormat, "magic"},
      {"version 4.0", npy_file(4, good, six), kFormat, "version 4.0"},
      {"version 1.1", npy_file(1, good, six, 1), kFormat, "version 1.1"},
      {"header longer than the file", long_len, kFormat, "truncated"},
      {"fortran order", npy_file(1, header_with("'<f4'", "True", "(2, 3)"), six),
       ErrorKind::Unsupported, "fortran_order"},
      {"complex", npy_file(1, header_with("'<c8'", "False", "(3,)"), six), kDtype, "'<c8'"},
      {"big-endian", npy_file(1, header_with("'>f4'", "False", "(2, 3)"), six), kDtype,
       "big-endian"},
      {"unicode", npy_file(1, header_with("'<U3'", "False", "(2,)"), six), kDtype, "'<U3'"},
      {"object", npy_file(1, header_with("'|O'", "False", "(3,)"), six), kDtype, "'|O'"},
      {"f3", npy_file(1, header_with("'<f3'", "False", "(8,)"), six), kDtype, "'<f3'"},
      {"no byte order", npy_file(1, header_with("'f4'", "False", "(2, 3)"), six), kDtype, "'f4'"},
      {"'|' on f4", npy_file(1, header_with("'|f4'", "False", "(2, 3)"), six), kDtype, "'|f4'"},
      {"structured", npy_file(1, header_with("[('a', '<f4')]", "False", "(6,)"), six), kDtype,
       "structured"},
      {"data too long", npy_file(1, good, extra), kFormat, "trailing"},
      {"data too short", npy_file(1, good, short_data), kFormat, "truncated"},
      {"shape product mismatch", npy_file(1, header_with("'<f4'", "False", "(2, 2)"), six), kFormat,
       "needs 16"},
      {"shape overflow",
       npy_file(1, header_with("'<f4'", "False", "(4611686018427387904, 4)"), six), kFormat,
       "overflows"},
      {"no newline",
       npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", six), kFormat,
       "newline"},
      {"empty header", npy_file(1, "", six), kFormat, "newline"},
      {"missing shape", npy_file(1, "{'descr': '<f4', 'fortran_order': False}\n", six), kFormat,
       "'shape'"},
      {"missing descr", npy_file(1, "{'fortran_order': False, 'shape': (6,)}\n", six), kFormat,
       "'descr'"},
      {"missing fortran_order", npy_file(1, "{'descr': '<f4', 'shape': (6,)}\n", six), kFormat,
       "'fortran_order'"},
      {"duplicate key",
       npy_file(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
                six),
       kFormat, "twice"},
      {"unknown key",
       npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}\n", six),
       kFormat, "'x'"},
      {"shape not a tuple", npy_file(1, header_with("'<f4'", "False", "(6)"), six), kFormat,
       "(n,)"},
      {"shape a list", npy_file(1, header_with("'<f4'", "False", "[6]"), six), kFormat, "tuple"},
      {"negative dim", npy_file(1, header_with("'<f4'", "False", "(-6,)"), six), kFormat,
       "non-negative"},
      {"non-integer dim", npy_file(1, header_with("'<f4'", "False", "(2, 3.0)"), six), kFormat,
       "shape"},
      {"leading zero", npy_file(1, header_with("'<f4'", "False", "(06,)"), six), kFormat,
       "leading zero"},
      {"missing comma between dims", npy_file(1, header_with("'<f4'", "False", "(2 3)"), six),
       kFormat, "','"},
      {"fortran_order not a bool", npy_file(1, header_with("'<f4'", "0", "(2, 3)"), six), kFormat,
       "True or False"},
      {"fortran_order Trueish", npy_file(1, header_with("'<f4'", "Truex", "(2, 3)"), six), kFormat,
       "True or False"},
      {"unterminated string", npy_file(1, "{'descr: '<f4'}\n", six), kFormat, "expected"},
      {"not a dict", npy_file(1, "['descr', '<f4']\n", six), kFormat, "'{'"},
      {"text after the dict",
       npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x\n", six), kFormat,
       "after the dict"},
      {"tab padding",
       npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\t\n", six), kFormat,
       "after the dict"},
      {"non-ASCII header in 1.0",
       npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} \xc3\xa9\n", six),
       kFormat, "ASCII"},
  };
  for (const BadFile& c : cases) {
    SCOPED_TRACE(c.what);
    const auto path = dir / "bad.npy";
    test::write_file(path, std::span<const std::byte>(c.bytes));
    expect_error([&] { read_npy(path); }, c.kind, {path.string(), c.needle});
  }
}

TEST(NpyTest, WriterRejectsBadArgumentsAndLeavesNothingBehind) {
  TempDir dir;
  const std::vector<float> three = {1, 2, 3};
  expect_error(
      [&] {
        write_npy(dir / "a.npy", Shape{2, 2}, three);
      },
      ErrorKind::InvalidArgument, {"[2, 2]"});
  expect_error([&] { write_npy(dir / "a.npy", DType::F32, Shape{-1}, {}); },
               ErrorKind::InvalidArgument);
  expect_error([&] { write_npy(dir / "a.npy", DType::BF16, Shape{1}, test::to_bytes("ab")); },
               ErrorKind::UnsupportedDType, {"bf16"});
  const auto missing_dir = dir / "no" / "such" / "dir" / "x.npy";
  expect_error([&] { write_npy(missing_dir, Shape{3}, three); }, ErrorKind::Io,
               {missing_dir.string()});
  // The target is a directory: the rename fails and the temporary file is removed.
  std::filesystem::create_directory(dir / "d.npy");
  expect_error([&] { write_npy(dir / "d.npy", Shape{3}, three); }, ErrorKind::Io,
               {(dir / "d.npy").string()});
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1);  // just d.npy/
}

TEST(NpyTest, ToVectorChecksTheElementSize) {
  const NpyArray a = parse_npy(
      npy_file(1, header_with("'<f8'", "False", "(1,)"), test::to_bytes(std::vector<double>{2.5})),
      "d.npy");
  EXPECT_EQ(a.to_vector<double>(), std::vector<double>{2.5});
  expect_error([&] { a.to_vector<float>(); }, ErrorKind::UnsupportedDType, {"f64"});
}

}  // namespace
}  // namespace mlxn::io
