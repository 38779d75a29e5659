// Tests of GGML dequantization against independent, element-by-element unpacking of the block
// layouts (random blocks) and against hand-built blocks with known values.
#include "mlxn/io/ggml_dequant.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"

namespace mlxn::io {
namespace {

using Bytes = std::vector<std::uint8_t>;

float h(const Bytes& b, std::size_t at) {
  return f16_bits_to_f32(static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8)));
}
void set_h(Bytes& b, std::size_t at, float v) {
  std::uint16_t x = f32_to_f16_bits(v);
  b[at] = static_cast<std::uint8_t>(x & 0xFF);
  b[at + 1] = static_cast<std::uint8_t>(x >> 8);
}
int nib(std::uint8_t byte, bool high) {
  return high ? byte >> 4 : byte & 0x0F;
}
int bit(const Bytes& b, std::size_t byte_index, int bit_index) {
  return (b[byte_index] >> bit_index) & 1;
}

std::vector<float> dequant(GgmlType type, const Bytes& b, std::size_t n) {
  std::vector<float> out(n, std::numeric_limits<float>::quiet_NaN());
  ggml_dequantize(type, std::as_bytes(std::span(b)), out);
  return out;
}

// Random block bytes with well-behaved f16 scale fields at the given offsets.
Bytes random_block(std::size_t size, const std::vector<std::size_t>& f16_fields,
                   std::mt19937& rng) {
  Bytes b(size);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  std::uniform_real_distribution<float> scale(0.01f, 2.0f);
  for (std::size_t at : f16_fields) set_h(b, at, scale(rng) * (rng() % 2 ? 1.0f : -1.0f));
  return b;
}

// 6-bit scale/min of sub-block j in the 12-byte Q4_K/Q5_K field `s`, read bit by bit: the low
// four sub-blocks keep 6 bits in bytes 0-3 (scale) and 4-7 (min); the upper four keep their low
// 4 bits in the nibbles of bytes 8-11 and their top 2 bits in bits 6-7 of bytes 0-7.
std::pair<int, int> k4_scale_min(const Bytes& b, std::size_t s, int j) {
  if (j < 4) return {b[s + j] & 63, b[s + 4 + j] & 63};
  int sc =
      nib(b[s + 8 + (j - 4)], false) | (bit(b, s + j - 4, 6) << 4) | (bit(b, s + j - 4, 7) << 5);
  int m = nib(b[s + 8 + (j - 4)], true) | (bit(b, s + j, 6) << 4) | (bit(b, s + j, 7) << 5);
  return {sc, m};
}

struct Case {
  GgmlType type;
  std::size_t block_bytes, block_elems;
  std::vector<std::size_t> f16_fields;
  std::function<float(const Bytes&, int)> element;  // independent formula for element e
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {GgmlType::Q4_0,
       18,
       32,
       {0},
       [](const Bytes& b, int e) {
         return static_cast<float>(nib(b[2 + e % 16], e >= 16) - 8) * h(b, 0);
       }},
      {GgmlType::Q4_1,
       20,
       32,
       {0, 2},
       [](const Bytes& b, int e) {
         return static_cast<float>(nib(b[4 + e % 16], e >= 16)) * h(b, 0) + h(b, 2);
       }},
      {GgmlType::Q5_0,
       22,
       32,
       {0},
       [](const Bytes& b, int e) {
         int q = nib(b[6 + e % 16], e >= 16) | (bit(b, 2 + e / 8, e % 8) << 4);
         return static_cast<float>(q - 16) * h(b, 0);
       }},
      {GgmlType::Q5_1,
       24,
       32,
       {0, 2},
       [](const Bytes& b, int e) {
         int q = nib(b[8 + e % 16], e >= 16) | (bit(b, 4 + e / 8, e % 8) << 4);
         return static_cast<float>(q) * h(b, 0) + h(b, 2);
       }},
      {GgmlType::Q8_0,
       34,
       32,
       {0},
       [](const Bytes& b, int e) {
         return static_cast<float>(static_cast<std::int8_t>(b[2 + e])) * h(b, 0);
       }},
      {GgmlType::IQ4_NL,
       18,
       32,
       {0},
       [](const Bytes& b, int e) {
         static const int kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};
         return h(b, 0) * static_cast<float>(kv[nib(b[2 + e % 16], e >= 16)]);
       }},
      // Q2_K: scales[16] @0, qs[64] @16, d @80, dmin @82. Element e: 128-half n, 2-bit plane
      // j (shift 2j) over 32 bytes, sub-block of 16 = 8n + 2j + (r%32)/16.
      {GgmlType::Q2_K,
       84,
       256,
       {80, 82},
       [](const Bytes& b, int e) {
         int n = e / 128, r = e % 128, j = r / 32, l = r % 32;
         int q = (b[16 + 32 * n + l] >> (2 * j)) & 3;
         std::uint8_t sc = b[8 * n + 2 * j + l / 16];
         return (h(b, 80) * static_cast<float>(sc & 15)) * static_cast<float>(q) -
                h(b, 82) * static_cast<float>(sc >> 4);
       }},
      // Q3_K: hmask[32] @0, qs[64] @32, scales[12] @96, d @108. High bit of element e is bit
      // (4n + j) of hmask[l]; a clear bit subtracts 4. Scale k: low nibble from byte k%8
      // (k<8 low, else high), top 2 bits from byte 8 + k%4 at bit 2*(k/4); minus 32.
      {GgmlType::Q3_K,
       110,
       256,
       {108},
       [](const Bytes& b, int e) {
         int n = e / 128, r = e % 128, j = r / 32, l = r % 32;
         int k = 8 * n + 2 * j + l / 16;
         int sc = nib(b[96 + k % 8], k >= 8) | (((b[96 + 8 + k % 4] >> (2 * (k / 4))) & 3) << 4);
         int q = ((b[32 + 32 * n + l] >> (2 * j)) & 3) - (bit(b, l, 4 * n + j) ? 0 : 4);
         return (h(b, 108) * static_cast<float>(sc - 32)) * static_cast<float>(q);
       }},
      // Q4_K: d @0, dmin @2, scales @4, qs[128] @16; 64-element groups: low nibbles then high.
      {GgmlType::Q4_K,
       144,
       256,
       {0, 2},
       [](const Bytes& b, int e) {
         int g = e / 64, r = e % 64;
         auto [sc, m] = k4_scale_min(b, 4, 2 * g + r / 32);
         int q = nib(b[16 + 32 * g + r % 32], r >= 32);
         return (h(b, 0) * static_cast<float>(sc)) * static_cast<float>(q) -
                h(b, 2) * static_cast<float>(m);
       }},
      // Q5_K: d @0, dmin @2, scales @4, qh[32] @16, qs[128] @48; 5th bit at bit 2g + r/32.
      {GgmlType::Q5_K,
       176,
       256,
       {0, 2},
       [](const Bytes& b, int e) {
         int g = e / 64, r = e % 64;
         auto [sc, m] = k4_scale_min(b, 4, 2 * g + r / 32);
         int q = nib(b[48 + 32 * g + r % 32], r >= 32) + 16 * bit(b, 16 + r % 32, 2 * g + r / 32);
         return (h(b, 0) * static_cast<float>(sc)) * static_cast<float>(q) -
                h(b, 2) * static_cast<float>(m);
       }},
      // Q6_K: ql[128] @0, qh[64] @128, int8 scales[16] @192, d @208. Element e: 128-half n,
      // quarter k, lane l: low 4 bits from ql[64n + l + 32(k%2)] (k<2 low nibble), high 2 bits
      // from qh[32n + l] at bit 2k; scale index 8n + 2k + l/16; code minus 32.
      {GgmlType::Q6_K,
       210,
       256,
       {208},
       [](const Bytes& b, int e) {
         int n = e / 128, r = e % 128, k = r / 32, l = r % 32;
         int lo = nib(b[64 * n + l + 32 * (k % 2)], k >= 2);
         int hi = (b[128 + 32 * n + l] >> (2 * k)) & 3;
         auto sc = static_cast<std::int8_t>(b[192 + 8 * n + 2 * k + l / 16]);
         return (h(b, 208) * static_cast<float>(sc)) * static_cast<float>((lo | (hi << 4)) - 32);
       }},
  };
  return all;
}

TEST(GgmlDequant, RandomBlocksMatchIndependentUnpacking) {
  std::mt19937 rng(1234);
  for (const Case& c : cases()) {
    SCOPED_TRACE(ggml_type_name(c.type));
    for (int trial = 0; trial < 20; ++trial) {
      Bytes b0 = random_block(c.block_bytes, c.f16_fields, rng);
      Bytes b1 = random_block(c.block_bytes, c.f16_fields, rng);
      Bytes two = b0;
      two.insert(two.end(), b1.begin(), b1.end());
      std::vector<float> out = dequant(c.type, two, 2 * c.block_elems);
      for (std::size_t e = 0; e < c.block_elems; ++e) {
        ASSERT_EQ(out[e], c.element(b0, static_cast<int>(e))) << "element " << e;
        ASSERT_EQ(out[c.block_elems + e], c.element(b1, static_cast<int>(e))) << "element " << e;
      }
    }
  }
}

TEST(GgmlDequant, HandBuiltQ4_0Block) {
  Bytes b(18);
  set_h(b, 0, 0.5f);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  std::vector<float> y = dequant(GgmlType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8)) << j;       // low nibbles: 0..15
    EXPECT_EQ(y[16 + j], 0.5f * static_cast<float>(7 - j)) << j;  // high nibbles: 15..0
  }
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[16], 3.5f);
}

TEST(GgmlDequant, HandBuiltQ8_0AndIq4NlBlocks) {
  Bytes q8(34);
  set_h(q8, 0, 0.25f);
  for (int j = 0; j < 32; ++j)
    q8[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(j - 16));
  std::vector<float> y = dequant(GgmlType::Q8_0, q8, 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[31], 3.75f);
  Bytes nl(18);
  set_h(nl, 0, 2.0f);
  nl[2] = 0xF0;  // element 0 -> code 0 (-127), element 16 -> code 15 (113)
  y = dequant(GgmlType::IQ4_NL, nl, 32);
  EXPECT_EQ(y[0], -254.0f);
  EXPECT_EQ(y[16], 226.0f);
}

TEST(GgmlDequant, HandBuiltQ4_KBlock) {
  // d = 1, dmin = 0.5; sub-block j has scale 7+8j and min 60-7j (6-bit packing by hand, so
  // the upper sub-blocks use the split high bits); codes:
  // element e of group g is (e % 16) for the low-nibble half and 15 - (e % 16) for the high.
  Bytes b(144, 0);
  set_h(b, 0, 1.0f);
  set_h(b, 2, 0.5f);
  for (int j = 0; j < 8; ++j) {
    int sc = 7 + 8 * j, m = 60 - 7 * j;
    if (j < 4) {
      b[4 + j] = static_cast<std::uint8_t>(sc);
      b[4 + 4 + j] = static_cast<std::uint8_t>(m);
    } else {
      b[4 + 8 + j - 4] = static_cast<std::uint8_t>((sc & 15) | ((m & 15) << 4));
      b[4 + j - 4] |= static_cast<std::uint8_t>((sc >> 4) << 6);
      b[4 + j] |= static_cast<std::uint8_t>((m >> 4) << 6);
    }
  }
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l)
      b[16 + 32 * g + l] = static_cast<std::uint8_t>((l % 16) | ((15 - l % 16) << 4));
  }
  std::vector<float> y = dequant(GgmlType::Q4_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    int j = e / 32, l = e % 32;
    int q = (e % 64) < 32 ? l % 16 : 15 - l % 16;
    EXPECT_EQ(y[e], static_cast<float>((7 + 8 * j) * q) - 0.5f * static_cast<float>(60 - 7 * j))
        << e;
  }
}

TEST(GgmlDequant, HandBuiltQ6_KBlock) {
  // d = 0.5, scales[k] = k - 8, every code = 33 (value 1) except element 0 = 0 (value -32).
  Bytes b(210, 0);
  set_h(b, 208, 0.5f);
  for (int k = 0; k < 16; ++k)
    b[192 + k] = static_cast<std::uint8_t>(static_cast<std::int8_t>(k - 8));
  // Code 33 = 0b100001: low nibble 1, high bits 2.
  for (int i = 0; i < 128; ++i) b[i] = 0x11;
  for (int i = 0; i < 64; ++i) b[128 + i] = 0xAA;  // 2 in each 2-bit field
  b[0] = 0x10;                                     // element 0 low nibble 0 (element 64 keeps 1)
  b[128] = 0xA8;                                   // element 0 high bits 0
  std::vector<float> y = dequant(GgmlType::Q6_K, b, 256);
  EXPECT_EQ(y[0], 0.5f * -8.0f * -32.0f);
  for (int e = 1; e < 256; ++e) {
    int n = e / 128, r = e % 128, k = r / 32, l = r % 32;
    int scale = 8 * n + 2 * k + l / 16 - 8;
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(scale)) << e;
  }
}

TEST(GgmlDequant, PlainTypes) {
  std::vector<std::uint16_t> f16 = {f32_to_f16_bits(1.5f), f32_to_f16_bits(-2.0f)};
  std::vector<float> y(2);
  ggml_dequantize(GgmlType::F16, std::as_bytes(std::span(f16)), y);
  EXPECT_EQ(y, (std::vector<float>{1.5f, -2.0f}));
  std::vector<std::uint16_t> bf = {f32_to_bf16_bits(3.0f), f32_to_bf16_bits(-0.5f)};
  ggml_dequantize(GgmlType::BF16, std::as_bytes(std::span(bf)), y);
  EXPECT_EQ(y, (std::vector<float>{3.0f, -0.5f}));
  std::vector<std::int8_t> i8 = {-128, 127};
  ggml_dequantize(GgmlType::I8, std::as_bytes(std::span(i8)), y);
  EXPECT_EQ(y, (std::vector<float>{-128.0f, 127.0f}));
  std::vector<std::int16_t> i16 = {-30000, 5};
  ggml_dequantize(GgmlType::I16, std::as_bytes(std::span(i16)), y);
  EXPECT_EQ(y, (std::vector<float>{-30000.0f, 5.0f}));
  std::vector<std::int32_t> i32 = {-7, 1 << 20};
  ggml_dequantize(GgmlType::I32, std::as_bytes(std::span(i32)), y);
  EXPECT_EQ(y, (std::vector<float>{-7.0f, 1048576.0f}));
  std::vector<float> f32 = {0.25f, 9.0f};
  ggml_dequantize(GgmlType::F32, std::as_bytes(std::span(f32)), y);
  EXPECT_EQ(y, f32);
}

TEST(GgmlDequant, UnsupportedTypesAndBadSizes) {
  std::vector<std::byte> b(66);
  std::vector<float> y(256);
  try {
    ggml_dequantize(GgmlType::IQ2_XXS, b, y);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("iq2_xxs"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(ggml_can_dequantize(GgmlType::MXFP4));
  EXPECT_TRUE(ggml_can_dequantize(GgmlType::Q5_K));
  std::vector<std::byte> q(18);
  std::vector<float> y31(31), y64(64);
  EXPECT_THROW(ggml_dequantize(GgmlType::Q4_0, q, y31), Error);
  EXPECT_THROW(ggml_dequantize(GgmlType::Q4_0, q, y64), Error);
}

}  // namespace
}  // namespace mlxn::io
