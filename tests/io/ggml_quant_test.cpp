// Tests of the GGML reference quantizers: exact codes on hand-picked blocks, round-trip error on
// Gaussian data, and size/type checks.
#include "mlxn/io/ggml_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "mlxn/io/ggml_dequant.h"

namespace mlxn::io {
namespace {

std::vector<float> gaussian(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double relative_rms_error(GgmlType type, const std::vector<float>& x) {
  std::vector<std::byte> q = ggml_quantize(type, x);
  std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
  ggml_dequantize(type, q, y);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    den += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(num / den);
}

TEST(GgmlQuant, RoundTripErrorOnGaussianData) {
  // Measured (seed 7, 64K elements): q4_0 0.087, q8_0 0.0054, q4_K 0.072, q6_K 0.018 —
  // what these formats give in ggml; bounds leave some margin.
  const std::vector<float> x = gaussian(1 << 16, 7);
  struct Bound {
    GgmlType type;
    double max_error;
  };
  for (Bound b :
       {Bound{GgmlType::Q4_0, 0.12}, Bound{GgmlType::Q8_0, 0.01}, Bound{GgmlType::Q4_K, 0.09},
        Bound{GgmlType::Q6_K, 0.03}, Bound{GgmlType::F16, 1e-3}, Bound{GgmlType::BF16, 5e-3},
        Bound{GgmlType::F32, 0.0}}) {
    double err = relative_rms_error(b.type, x);
    EXPECT_LE(err, b.max_error) << ggml_type_name(b.type);
    std::printf("[ GgmlQuant ] %-5s relative RMS error %.5f\n", ggml_type_name(b.type).c_str(),
                err);
  }
}

TEST(GgmlQuant, Q4_0CodesFollowTheReferenceRule) {
  // x_j = j - 16 for j in 0..31: largest magnitude is -16, so d = -16 / -8 = 2, id = 0.5 and
  // q_j = min(15, (int8)(x_j * 0.5 + 8.5)).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  std::vector<std::byte> q = ggml_quantize(GgmlType::Q4_0, x);
  ASSERT_EQ(q.size(), 18u);
  std::uint16_t d;
  std::memcpy(&d, q.data(), 2);
  EXPECT_EQ(f16_bits_to_f32(d), 2.0f);
  for (int j = 0; j < 16; ++j) {
    int lo = std::min(15, static_cast<int>(x[j] * 0.5f + 8.5f));
    int hi = std::min(15, static_cast<int>(x[j + 16] * 0.5f + 8.5f));
    EXPECT_EQ(static_cast<int>(q[2 + j]), lo | (hi << 4)) << j;
  }
  // All-zero blocks give d = 0 and code 8 everywhere (dequantizing to exact zeros).
  std::vector<float> zeros(32, 0.0f);
  q = ggml_quantize(GgmlType::Q4_0, zeros);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(static_cast<int>(q[2 + j]), 0x88);
}

TEST(GgmlQuant, Q8_0CodesFollowTheReferenceRule) {
  // amax 127 -> d = 1 exactly, so codes are round(x) with ties away from zero.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) - 15.5f;
  x[0] = 127.0f;
  std::vector<std::byte> q = ggml_quantize(GgmlType::Q8_0, x);
  std::uint16_t d;
  std::memcpy(&d, q.data(), 2);
  EXPECT_EQ(f16_bits_to_f32(d), 1.0f);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(static_cast<std::int8_t>(q[2 + j]), static_cast<std::int8_t>(std::round(x[j]))) << j;
  }
  // Requantizing dequantized Q8_0 data reproduces the same bytes.
  std::vector<float> g = gaussian(256, 3);
  std::vector<std::byte> q1 = ggml_quantize(GgmlType::Q8_0, g);
  std::vector<float> y(256);
  ggml_dequantize(GgmlType::Q8_0, q1, y);
  EXPECT_EQ(ggml_quantize(GgmlType::Q8_0, y), q1);
}

TEST(GgmlQuant, KQuantsRepresentExactGridsExactly) {
  // Data on a Q6_K grid: codes -31..31 times 1/8, with -32 leading each 16-element sub-block so
  // the reference's first guess (iscale = -32 / max) is exact. It must come back unchanged.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) {
    x[i] = static_cast<float>(i % 16 == 0 ? -32 : (i * 7) % 63 - 31) * 0.125f;
  }
  std::vector<float> y(256);
  ggml_dequantize(GgmlType::Q6_K, ggml_quantize(GgmlType::Q6_K, x), y);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], x[i]) << i;
  std::vector<float> c(256, 0.0f);
  ggml_dequantize(GgmlType::Q4_K, ggml_quantize(GgmlType::Q4_K, c), y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  ggml_dequantize(GgmlType::Q6_K, ggml_quantize(GgmlType::Q6_K, c), y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  // Non-negative data: Q4_K's mins stay at zero and codes span 0..15.
  std::vector<float> ramp(256);
  for (int i = 0; i < 256; ++i) ramp[i] = static_cast<float>(i % 16);
  ggml_dequantize(GgmlType::Q4_K, ggml_quantize(GgmlType::Q4_K, ramp), y);
  for (int i = 0; i < 256; ++i) EXPECT_NEAR(y[i], ramp[i], 0.02f) << i;
}

TEST(GgmlQuant, UnsupportedTypesAndBadSizes) {
  std::vector<float> x(256, 1.0f);
  try {
    ggml_quantize(GgmlType::Q5_K, x);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("q5_K"), std::string::npos) << e.what();
  }
  std::vector<float> partial(100, 1.0f);
  EXPECT_THROW(ggml_quantize(GgmlType::Q4_K, partial), Error);
  std::vector<std::byte> small(10);
  EXPECT_THROW(ggml_quantize(GgmlType::Q4_0, std::span<const float>(x.data(), 32), small), Error);
  std::vector<float> nan_block(32, 1.0f);
  nan_block[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(ggml_quantize(GgmlType::Q4_0, nan_block), Error);
  EXPECT_TRUE(ggml_can_quantize(GgmlType::Q6_K));
  EXPECT_FALSE(ggml_can_quantize(GgmlType::IQ4_NL));
}

}  // namespace
}  // namespace mlxn::io
