// MLX affine quantization: packing against a bit-by-bit reference and hand-built words,
// quantize/dequantize error bounds, stacked experts and quantized embedding rows.
#include "mlxn/io/mlx_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "io_test_util.h"
#include "mlxn/core/half.h"

namespace mlxn::io {
namespace {

constexpr int kAllBits[] = {2, 3, 4, 5, 6, 8};

// Independent reference: code i of a row sets stream bits [i*bits, (i+1)*bits) one by one,
// stream bit k living in word k / 32 at bit k % 32.
std::vector<std::uint32_t> reference_pack(const std::vector<std::uint8_t>& codes, std::int64_t rows,
                                          std::int64_t in, int bits) {
  const std::int64_t words = in * bits / 32;
  std::vector<std::uint32_t> out(static_cast<std::size_t>(rows * words), 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < in; ++i) {
      for (int b = 0; b < bits; ++b) {
        if ((codes[r * in + i] >> b) & 1) {
          const std::int64_t k = i * bits + b;
          out[r * words + k / 32] |= 1u << (k % 32);
        }
      }
    }
  }
  return out;
}

std::vector<std::uint8_t> random_codes(std::int64_t n, int bits, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, (1 << bits) - 1);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(n));
  for (auto& c : codes) c = static_cast<std::uint8_t>(dist(rng));
  return codes;
}

std::vector<float> gaussian(std::int64_t n, std::uint32_t seed, float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

TEST(MlxQuantPackTest, MatchesBitByBitReferenceForEveryBitWidth) {
  for (int bits : kAllBits) {
    // Row lengths whose bit count is a multiple of 32, including the smallest per width.
    const std::int64_t smallest = 32 / std::gcd(32, bits);
    for (std::int64_t in :
         {smallest, smallest * 3, std::int64_t{64}, std::int64_t{160}, std::int64_t{4096}}) {
      const std::int64_t rows = 3;
      const auto codes =
          random_codes(rows * in, bits, static_cast<std::uint32_t>(bits * 1000 + in));
      std::vector<std::uint32_t> packed(static_cast<std::size_t>(rows * in * bits / 32));
      pack_codes(codes, rows, in, bits, packed);
      EXPECT_EQ(packed, reference_pack(codes, rows, in, bits)) << bits << "-bit, in=" << in;
      std::vector<std::uint8_t> back(codes.size());
      unpack_codes(packed, rows, in, bits, back);
      EXPECT_EQ(back, codes) << bits << "-bit, in=" << in;
    }
  }
}

TEST(MlxQuantPackTest, HandBuiltWords) {
  auto pack1 = [](std::vector<std::uint8_t> codes, int bits) {
    std::vector<std::uint32_t> out(codes.size() * bits / 32);
    pack_codes(codes, 1, static_cast<std::int64_t>(codes.size()), bits, out);
    return out;
  };
  // 4-bit: 8 codes per word, code i at bits [4i, 4i+4).
  EXPECT_EQ(pack1({0, 1, 2, 3, 4, 5, 6, 7}, 4), (std::vector<std::uint32_t>{0x76543210u}));
  // 8-bit: 4 codes per word, byte i = code i.
  EXPECT_EQ(pack1({0x01, 0x02, 0x03, 0xFF}, 8), (std::vector<std::uint32_t>{0xFF030201u}));
  // 2-bit: 16 codes per word; 0,1,2,3 repeated -> each byte 0b11100100.
  EXPECT_EQ(pack1({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}, 2),
            (std::vector<std::uint32_t>{0xE4E4E4E4u}));
  // 6-bit: 4 codes per 3 bytes; 16 codes fill 3 words. Codes 1,2,3,4 -> 0x103081 in the
  // first 24 bits; the 5th code starts at bit 24 (its top 2 bits spill into word 1).
  std::vector<std::uint8_t> six(16, 0);
  six[0] = 1, six[1] = 2, six[2] = 3, six[3] = 4, six[4] = 63;
  const auto w6 = pack1(six, 6);
  ASSERT_EQ(w6.size(), 3u);
  EXPECT_EQ(w6[0], 0x103081u | (63u << 24));
  EXPECT_EQ(w6[1], 0x0u);
  // 3-bit: 8 codes per 3 bytes; codes 0..7 -> bytes 0x88, 0xC6, 0xFA.
  std::vector<std::uint8_t> three(32, 0);
  for (int i = 0; i < 8; ++i) three[i] = static_cast<std::uint8_t>(i);
  three[10] = 7;  // stream bits 30..32: straddles words 0 and 1
  const auto w3 = pack1(three, 3);
  ASSERT_EQ(w3.size(), 3u);
  EXPECT_EQ(w3[0], 0x00FAC688u | (3u << 30));
  EXPECT_EQ(w3[1], 0x1u);
  // 5-bit: 8 codes per 5 bytes; code 31 at index 6 occupies stream bits 30..34.
  std::vector<std::uint8_t> five(32, 0);
  five[0] = 31;
  five[6] = 31;
  const auto w5 = pack1(five, 5);
  ASSERT_EQ(w5.size(), 5u);
  EXPECT_EQ(w5[0], 0x1Fu | (3u << 30));
  EXPECT_EQ(w5[1], 0x7u);
}

TEST(MlxQuantPackTest, RejectsBadSizesAndCodes) {
  std::vector<std::uint8_t> codes(12, 0);
  std::vector<std::uint32_t> out(1);
  test::expect_error([&] { pack_codes(codes, 1, 12, 4, out); }, ErrorKind::InvalidArgument,
                     {"multiple of 32"});
  test::expect_error([&] { (void)packed_row_words(32, 7); }, ErrorKind::InvalidArgument,
                     {"bits 7"});
  std::vector<std::uint8_t> big(8, 16);
  test::expect_error([&] { pack_codes(big, 1, 8, 4, out); }, ErrorKind::InvalidArgument,
                     {"does not fit"});
  std::vector<std::uint32_t> small(0);
  test::expect_error([&] { pack_codes(std::vector<std::uint8_t>(8, 0), 1, 8, 4, small); },
                     ErrorKind::InvalidArgument, {"sizes"});
}

// Per-group bound: rounding costs at most |scale| / 2. MLX nudges the scale so that the edge
// of larger magnitude is a whole number of steps from zero; that can shrink the covered range
// below max - min, and values beyond it are clamped, adding the shortfall.
void expect_within_bounds(const std::vector<float>& w, const AffineQuantized& q,
                          const std::vector<float>& d, std::int64_t in, int bits, int group) {
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const std::int64_t groups = in / group;
  for (std::size_t g = 0; g < q.scales.size(); ++g) {
    const std::int64_t row = static_cast<std::int64_t>(g) / groups;
    const std::int64_t base = row * in + (static_cast<std::int64_t>(g) % groups) * group;
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < group; ++j) {
      lo = std::min(lo, w[base + j]);
      hi = std::max(hi, w[base + j]);
    }
    const float s = std::fabs(q.scales[g]);
    const float shortfall = std::max(0.0f, (hi - lo) - n_bins * s);
    const float bound = s / 2 + shortfall + 1e-6f * (std::fabs(lo) + std::fabs(hi)) + 1e-9f;
    for (int j = 0; j < group; ++j) {
      ASSERT_LE(std::fabs(d[base + j] - w[base + j]), bound)
          << bits << "-bit g" << group << " group " << g << " element " << j;
    }
  }
}

double relative_rms(const std::vector<float>& w, const std::vector<float>& d) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    num += (double(d[i]) - w[i]) * (double(d[i]) - w[i]);
    den += double(w[i]) * w[i];
  }
  return std::sqrt(num / den);
}

// Measured relative RMS errors on N(0, 0.02) data, 64 x 512, group 64 (this implementation,
// which follows MLX's algorithm): 2-bit 0.392, 3-bit 0.191, 4-bit 0.0897, 5-bit 0.0439,
// 6-bit 0.0216, 8-bit 0.0054 -- close to the uniform-rounding estimate step / sqrt(12) with
// step = range / (2^bits - 1). The ceilings below leave ~10% headroom.
TEST(MlxQuantTest, QuantizeDequantizeErrorBoundsGaussianRelRms4bitG64Is0p090) {
  const std::int64_t rows = 64, in = 512;
  const struct {
    int bits;
    double max_rel_rms;
  } cases[] = {{2, 0.43}, {3, 0.21}, {4, 0.099}, {5, 0.048}, {6, 0.024}, {8, 0.006}};
  for (const auto& c : cases) {
    for (int group : {32, 64, 128}) {
      const auto w = gaussian(rows * in, static_cast<std::uint32_t>(c.bits * 7 + group));
      const AffineQuantized q = quantize_affine(w, {rows, in}, c.bits, group);
      EXPECT_EQ(q.packed_shape, (Shape{rows, in * c.bits / 32}));
      EXPECT_EQ(q.group_shape, (Shape{rows, in / group}));
      const auto d = dequantize_affine(q.packed, q.scales, q.biases, {rows, in}, c.bits, group);
      expect_within_bounds(w, q, d, in, c.bits, group);
      const double rel = relative_rms(w, d);
      if (group == 64) {
        EXPECT_LE(rel, c.max_rel_rms) << c.bits << "-bit";
        RecordProperty("rel_rms_" + std::to_string(c.bits) + "bit_g64", std::to_string(rel));
      }
    }
  }
}

TEST(MlxQuantTest, ZeroIsExactAndConstantGroupsSurvive) {
  std::vector<float> w = gaussian(2 * 64, 3, 1.0f);
  for (int j = 0; j < 64; j += 5) w[j] = 0.0f;  // zeros inside a spread group
  for (int j = 64; j < 128; ++j) w[j] = 0.0f;   // an all-zero group
  for (int bits : kAllBits) {
    const auto q = quantize_affine(w, {2, 64}, bits, 64);
    const auto d = dequantize_affine(q.packed, q.scales, q.biases, {2, 64}, bits, 64);
    for (int j = 0; j < 64; j += 5) EXPECT_FLOAT_EQ(d[j], 0.0f) << bits << "-bit";
    for (int j = 64; j < 128; ++j) EXPECT_EQ(d[j], 0.0f) << bits << "-bit";
  }
}

TEST(MlxQuantTest, FollowsMlxAnchoring) {
  // Values 0..31: the max has the larger magnitude, so MLX anchors there with a negative
  // scale: scale = -31/15, bias = 31, and w = 0 maps to code 15 exactly.
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[i] = static_cast<float>(i);
  const auto q = quantize_affine(w, {1, 32}, 4, 32);
  EXPECT_FLOAT_EQ(q.scales[0], -31.0f / 15.0f);
  EXPECT_FLOAT_EQ(q.biases[0], 31.0f);
  std::vector<std::uint8_t> codes(32);
  unpack_codes(q.packed, 1, 32, 4, codes);
  EXPECT_EQ(codes[0], 15);
  EXPECT_EQ(codes[31], 0);
  EXPECT_EQ(codes[16], 7);  // rint((16 - 31) / (-31/15)) = rint(7.26)
  // Negated: the min dominates, scale positive, bias = -31.
  for (auto& x : w) x = -x;
  const auto qn = quantize_affine(w, {1, 32}, 4, 32);
  EXPECT_FLOAT_EQ(qn.scales[0], 31.0f / 15.0f);
  EXPECT_FLOAT_EQ(qn.biases[0], -31.0f);
}

TEST(MlxQuantTest, StackedExpertsTreatLeadingDimsAsRows) {
  const std::int64_t experts = 3, out = 8, in = 128;
  const auto w = gaussian(experts * out * in, 11);
  const auto q = quantize_affine(w, {experts, out, in}, 4, 64);
  EXPECT_EQ(q.packed_shape, (Shape{experts, out, in * 4 / 32}));
  EXPECT_EQ(q.group_shape, (Shape{experts, out, in / 64}));
  for (std::int64_t e = 0; e < experts; ++e) {
    std::vector<float> one(w.begin() + e * out * in, w.begin() + (e + 1) * out * in);
    const auto qe = quantize_affine(one, {out, in}, 4, 64);
    EXPECT_TRUE(
        std::equal(qe.packed.begin(), qe.packed.end(), q.packed.begin() + e * out * in * 4 / 32));
    EXPECT_TRUE(std::equal(qe.scales.begin(), qe.scales.end(), q.scales.begin() + e * out * 2));
  }
  const auto d = dequantize_affine(q.packed, q.scales, q.biases, {experts, out, in}, 4, 64);
  EXPECT_EQ(d.size(), w.size());
  expect_within_bounds(w, q, d, in, 4, 64);
}

TEST(MlxQuantTest, QuantizedEmbeddingRowsDequantize) {
  const std::int64_t vocab = 50, hidden = 96;
  const auto w = gaussian(vocab * hidden, 5);
  for (int bits : {3, 4, 6, 8}) {
    const auto q = quantize_affine(w, {vocab, hidden}, bits, 32);
    const auto full = dequantize_affine(q.packed, q.scales, q.biases, {vocab, hidden}, bits, 32);
    // Scales and biases stored as bf16, as mlx-community bf16 models do.
    std::vector<std::uint16_t> s16, b16;
    std::vector<float> s_rounded, b_rounded;
    for (float s : q.scales)
      s16.push_back(f32_to_bf16_bits(s)), s_rounded.push_back(bf16_bits_to_f32(s16.back()));
    for (float b : q.biases)
      b16.push_back(f32_to_bf16_bits(b)), b_rounded.push_back(bf16_bits_to_f32(b16.back()));
    const auto full_bf16 =
        dequantize_affine(q.packed, s_rounded, b_rounded, {vocab, hidden}, bits, 32);
    QuantizedMatrixView m{q.packed.data(), s16.data(), b16.data(), DType::BF16,
                          vocab,           hidden,     bits,       32};
    for (std::int64_t token : {0, 7, 49}) {
      std::vector<float> row(static_cast<std::size_t>(hidden));
      dequantize_rows(m, token, 1, row);
      for (std::int64_t i = 0; i < hidden; ++i) {
        EXPECT_EQ(row[i], full_bf16[token * hidden + i]) << "token " << token;
        EXPECT_NEAR(row[i], full[token * hidden + i], 0.02) << "token " << token;
      }
    }
    std::vector<float> row(static_cast<std::size_t>(hidden));
    test::expect_error([&] { dequantize_rows(m, 50, 1, row); }, ErrorKind::InvalidArgument,
                       {"outside"});
  }
}

TEST(MlxQuantTest, RejectsBadArguments) {
  const auto w = gaussian(2 * 96, 1);
  test::expect_error(
      [&] {
        (void)quantize_affine(w, {2, 96}, 4, 64);
      },
      ErrorKind::InvalidArgument, {"multiple of group_size"});
  test::expect_error(
      [&] {
        (void)quantize_affine(w, {2, 96}, 4, 48);
      },
      ErrorKind::InvalidArgument, {"group_size 48"});
  test::expect_error(
      [&] {
        (void)quantize_affine(w, {2, 96}, 1, 32);
      },
      ErrorKind::InvalidArgument, {"bits 1"});
  test::expect_error(
      [&] {
        (void)quantize_affine(w, {3, 96}, 4, 32);
      },
      ErrorKind::InvalidArgument, {"values for shape"});
  std::vector<std::uint32_t> p(2 * 12);
  std::vector<float> s(2 * 3), b(2 * 2);
  test::expect_error(
      [&] {
        (void)dequantize_affine(p, s, b, {2, 96}, 4, 32);
      },
      ErrorKind::InvalidArgument, {"sizes"});
}

}  // namespace
}  // namespace mlxn::io
