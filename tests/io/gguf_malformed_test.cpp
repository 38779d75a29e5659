// Malformed-GGUF corpus, built programmatically: every file must fail with a clear Format (or
// Unsupported) error naming the file and the problem, quickly and without large allocations.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/gguf_writer.h"

namespace mlxn::io {
namespace {

constexpr std::uint64_t kHuge = 1ull << 62;

// Raw little-endian GGUF builder: writes exactly what it is told, valid or not.
struct Raw {
  std::vector<std::byte> b;

  Raw& u8(std::uint8_t v) { return put(&v, 1); }
  Raw& u32(std::uint32_t v) { return put(&v, 4); }
  Raw& u64(std::uint64_t v) { return put(&v, 8); }
  Raw& str(const std::string& s) {
    u64(s.size());
    return put(s.data(), s.size());
  }
  Raw& put(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Raw& pad(std::size_t alignment) {
    b.resize((b.size() + alignment - 1) / alignment * alignment, std::byte{0});
    return *this;
  }
  Raw& zeros(std::size_t n) {
    b.resize(b.size() + n, std::byte{0});
    return *this;
  }
  // A key/value pair with a u32 value.
  Raw& kv_u32(const std::string& key, std::uint32_t v) { return str(key).u32(4).u32(v); }
  // A tensor info.
  Raw& tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type,
              std::uint64_t offset) {
    str(name).u32(static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) u64(d);
    return u32(type).u64(offset);
  }
};

Raw header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
  Raw r;
  r.put("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  return r;
}

// Parses and expects an error of `kind` whose message names the file and contains `needle`.
void expect_error(const std::vector<std::byte>& bytes, const std::string& needle,
                  ErrorKind kind = ErrorKind::Format) {
  SCOPED_TRACE(needle);
  auto start = std::chrono::steady_clock::now();
  try {
    GgufFile::from_bytes("bad.gguf", bytes);
    ADD_FAILURE() << "parsed without error; expected: " << needle;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.kind(), kind) << msg;
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

std::vector<std::byte> small_valid_file() {
  GgufWriter w;
  w.add("general.architecture", std::string("llama"));
  w.add("a.u32", std::uint32_t{7});
  w.add("a.strings", std::vector<std::string>{"x", "yy"});
  w.add("a.nested", GgufArray(std::vector<GgufArray>{GgufArray(std::vector<float>{1.0f})}));
  std::vector<std::byte> t1(18 * 2, std::byte{1});
  w.add_tensor("t1", GgmlType::Q4_0, {64}, t1);
  std::vector<std::byte> t2(32, std::byte{2});  // exactly one alignment unit: no end padding
  w.add_tensor("t2", GgmlType::F32, {4, 2}, t2);
  return w.to_bytes();
}

TEST(GgufMalformed, EveryTruncationIsAFormatError) {
  std::vector<std::byte> full = small_valid_file();
  GgufFile ok = GgufFile::from_bytes("ok.gguf", full);
  const GgufTensorInfo& last = ok.tensor("t2");
  const std::size_t needed = ok.data_offset() + last.offset + last.n_bytes;
  ASSERT_EQ(needed, full.size());
  for (std::size_t len = 0; len < full.size(); ++len) {
    std::vector<std::byte> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    try {
      GgufFile::from_bytes("bad.gguf", prefix);
      ADD_FAILURE() << "prefix of " << len << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Format) << len << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(GgufMalformed, MagicAndVersion) {
  expect_error({}, "bad magic");
  Raw r;
  r.put("GGUX", 4).u32(3).u64(0).u64(0);
  expect_error(r.b, "bad magic");
  expect_error(header(0, 0, 1).b, "version 1", ErrorKind::Unsupported);
  expect_error(header(0, 0, 0).b, "unknown GGUF version 0");
  expect_error(header(0, 0, 4).b, "unknown GGUF version 4");
  expect_error(header(0, 0, 0x03000000).b, "big-endian", ErrorKind::Unsupported);
  EXPECT_NO_THROW(GgufFile::from_bytes("v2.gguf", header(0, 0, 2).b));
  EXPECT_NO_THROW(GgufFile::from_bytes("v3.gguf", header(0, 0, 3).b));
}

TEST(GgufMalformed, HugeCountsAndLengths) {
  expect_error(header(kHuge, 0).b, "tensor count");
  expect_error(header(0, kHuge).b, "metadata count");
  expect_error(header(~0ull, ~0ull).b, "cannot fit");
  expect_error(header(0, 1).str("k").u32(8).u64(kHuge).b, "exceeds");  // string value
  Raw key = header(0, 1);
  key.u64(kHuge).zeros(16);
  expect_error(key.b, "metadata key length");
  for (std::uint32_t t = 0; t <= 12; ++t) {  // array length of every element type
    expect_error(header(0, 1).str("k").u32(9).u32(t).u64(kHuge).zeros(8).b, "cannot fit");
  }
  Raw names = header(1, 0);
  names.u64(kHuge).zeros(32);
  expect_error(names.b, "tensor name length");
}

TEST(GgufMalformed, Alignment) {
  expect_error(header(0, 1).kv_u32("general.alignment", 0).b, "not a power of two");
  expect_error(header(0, 1).kv_u32("general.alignment", 48).b, "not a power of two");
  expect_error(header(0, 1).str("general.alignment").u32(10).u64(64).b, "must be u32");
  GgufFile f = GgufFile::from_bytes("a.gguf", header(0, 1).kv_u32("general.alignment", 1).b);
  EXPECT_EQ(f.alignment(), 1u);
}

TEST(GgufMalformed, NestingDepth) {
  auto nested = [](int depth, std::uint64_t inner_len) {
    Raw r = header(0, 1);
    r.str("deep").u32(9);  // value type: array
    for (int i = 1; i < depth; ++i) r.u32(9).u64(1);
    r.u32(0).u64(inner_len).zeros(inner_len);  // innermost: u8 elements
    return r.b;
  };
  EXPECT_NO_THROW(GgufFile::from_bytes("ok.gguf", nested(kGgufMaxArrayDepth, 2)));
  expect_error(nested(kGgufMaxArrayDepth + 1, 2), "nested deeper than 8");
  expect_error(nested(100000, 0), "nested deeper than 8");  // a stack bomb stays shallow
}

TEST(GgufMalformed, UnknownTypes) {
  expect_error(header(0, 1).str("k").u32(13).u32(0).b, "unknown value type id 13");
  expect_error(header(0, 1).str("k").u32(0xFFFFFFFF).b, "unknown value type id 4294967295");
  expect_error(header(0, 1).str("k").u32(9).u32(77).u64(0).b, "unknown value type id 77");
  expect_error(header(0, 1).str("k").u32(7).u8(2).b, "neither 0 nor 1");
  expect_error(header(1, 0).tensor("w", {32}, 99, 0).pad(32).zeros(64).b,
               "unknown GGML type id 99");
  expect_error(header(1, 0).tensor("w", {32}, 40, 0).pad(32).zeros(64).b,
               "unknown GGML type id 40");
  expect_error(header(1, 0).tensor("w", {32}, 31, 0).pad(32).zeros(64).b, "q4_0_4_4",
               ErrorKind::Unsupported);
}

TEST(GgufMalformed, TensorOffsetsAndSizes) {
  // Misaligned offset.
  expect_error(header(1, 0).tensor("w", {4}, 0, 8).pad(32).zeros(64).b, "not a multiple");
  // Data beyond the end of the file.
  expect_error(header(1, 0).tensor("w", {4}, 0, 0).pad(32).zeros(8).b, "outside the file");
  expect_error(header(1, 0).tensor("w", {4}, 0, 1ull << 63).pad(32).zeros(16).b,
               "outside the file");
  expect_error(header(1, 0).tensor("w", {4}, 0, ~0ull << 5).pad(32).zeros(16).b,
               "outside the file");
  // Overlapping tensors.
  expect_error(header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad(32).zeros(128).b,
               "overlap");
  // Adjacent tensors are fine.
  EXPECT_NO_THROW(GgufFile::from_bytes(
      "adj.gguf", header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 32).pad(32).zeros(64).b));
  // Too many dimensions, overflowing dims, dims beyond int64, rows of partial blocks.
  expect_error(header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(32).b, "5 dimensions");
  expect_error(header(1, 0).tensor("w", {1ull << 32, 1ull << 32}, 0, 0).pad(32).b, "overflow");
  expect_error(header(1, 0).tensor("w", {1ull << 63}, 24, 0).pad(32).b, "overflow");
  expect_error(header(1, 0).tensor("w", {1ull << 61}, 28, 0).pad(32).b, "overflow");
  expect_error(header(1, 0).tensor("w", {33, 2}, 2, 0).pad(32).zeros(128).b,
               "not a multiple of q4_0's block size 32");
  expect_error(header(1, 0).tensor("w", {1ull << 62, 2}, 0, 0).pad(32).b, "overflow");
}

TEST(GgufMalformed, Duplicates) {
  expect_error(header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate metadata key 'k'");
  expect_error(header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad(32).zeros(64).b,
               "duplicate tensor 'w'");
}

TEST(GgufMalformed, FlippedBytesNeverCrash) {
  // Every single-byte corruption of a valid file either parses or throws mlxn::Error.
  std::vector<std::byte> full = small_valid_file();
  for (std::size_t i = 0; i < full.size(); ++i) {
    for (std::uint8_t v : {0x00, 0x01, 0x7F, 0x80, 0xFF}) {
      std::vector<std::byte> bytes = full;
      bytes[i] = std::byte{v};
      try {
        GgufFile f = GgufFile::from_bytes("flip.gguf", bytes);
        for (const GgufTensorInfo& t : f.tensors()) (void)f.tensor_data(t);
      } catch (const Error& e) {
        EXPECT_TRUE(e.kind() == ErrorKind::Format || e.kind() == ErrorKind::Unsupported)
            << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace mlxn::io
