// GGML quantized matmul (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K) for M = 1 (matvec) to 64 (tiled), f32/f16/
// bf16 activations, plain and expert-routed. Blocks are built here from drawn fields (codes,
// scales, mins) by an encoder written from the block layouts, and the reference uses those
// fields, not a decoder; io's dequantizer is checked against the same fields.
#include "mlxn/ops/ggml_matmul.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "mlxn/io/ggml_dequant.h"
#include "mlxn/io/ggml_types.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using io::GgmlType;
using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K,
                               GgmlType::Q6_K};
constexpr std::int64_t kRows[] = {1, 3, 17, 64};

// A random f16 value in [lo, hi) and its exact float.
struct Half {
  std::uint16_t bits;
  double value;
};
Half random_half(std::mt19937& rng, float lo, float hi) {
  const std::uint16_t b = f32_to_f16_bits(std::uniform_real_distribution<float>(lo, hi)(rng));
  return {b, f16_bits_to_f32(b)};
}

void put_half(std::uint8_t* p, Half h) {
  std::memcpy(p, &h.bits, 2);
}

int draw(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// Encodes one block of `type` from freshly drawn fields into `b`; writes its values to `w`.
void make_block(std::mt19937& rng, GgmlType type, std::uint8_t* b, double* w) {
  switch (type) {
    case GgmlType::Q4_0: {  // d, qs[16]: element j low nibble of qs[j], j+16 the high nibble
      const Half d = random_half(rng, -0.3f, 0.3f);
      put_half(b, d);
      int q[32];
      for (int& v : q) v = draw(rng, 0, 15);
      for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<std::uint8_t>(q[j] | (q[j + 16] << 4));
      for (int j = 0; j < 32; ++j) w[j] = d.value * (q[j] - 8);
      return;
    }
    case GgmlType::Q8_0: {  // d, int8 qs[32]
      const Half d = random_half(rng, -0.02f, 0.02f);
      put_half(b, d);
      for (int j = 0; j < 32; ++j) {
        const int q = draw(rng, -127, 127);
        b[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q));
        w[j] = d.value * q;
      }
      return;
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      // d, dmin, 12 bytes of eight 6-bit (scale, min) pairs, [Q5_K: qh[32]], qs[128].
      const bool five = type == GgmlType::Q5_K;
      const Half d = random_half(rng, 0.0005f, 0.004f);
      const Half dmin = random_half(rng, 0.0005f, 0.004f);
      put_half(b, d);
      put_half(b + 2, dmin);
      int sc[8], mn[8];
      for (int j = 0; j < 8; ++j) {
        sc[j] = draw(rng, 0, 63);
        mn[j] = draw(rng, 0, 63);
      }
      std::uint8_t* s = b + 4;
      for (int j = 0; j < 4; ++j) {
        s[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = static_cast<std::uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
      }
      int q[256];
      for (int& v : q) v = draw(rng, 0, five ? 31 : 15);
      std::uint8_t* qh = b + 16;
      std::uint8_t* qs = b + (five ? 48 : 16);
      if (five) std::memset(qh, 0, 32);
      for (int pair = 0; pair < 4; ++pair) {
        for (int l = 0; l < 32; ++l) {
          qs[pair * 32 + l] = static_cast<std::uint8_t>((q[pair * 64 + l] & 15) |
                                                        ((q[pair * 64 + 32 + l] & 15) << 4));
        }
      }
      if (five) {
        for (int sub = 0; sub < 8; ++sub) {
          for (int l = 0; l < 32; ++l)
            qh[l] |= static_cast<std::uint8_t>(((q[sub * 32 + l] >> 4) & 1) << sub);
        }
      }
      for (int i = 0; i < 256; ++i) w[i] = d.value * sc[i / 32] * q[i] - dmin.value * mn[i / 32];
      return;
    }
    case GgmlType::Q6_K: {  // ql[128], qh[64], int8 scales[16], d
      int q[256];
      for (int& v : q) v = draw(rng, 0, 63);
      int sc[16];
      for (int& v : sc) v = draw(rng, -32, 31);
      const Half d = random_half(rng, 0.001f, 0.004f);
      std::uint8_t* ql = b;
      std::uint8_t* qh = b + 128;
      for (int half = 0; half < 2; ++half) {
        const int* qq = q + half * 128;
        for (int l = 0; l < 32; ++l) {
          ql[half * 64 + l] = static_cast<std::uint8_t>((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
          ql[half * 64 + 32 + l] =
              static_cast<std::uint8_t>((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
          qh[half * 32 + l] =
              static_cast<std::uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                        ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
        }
      }
      for (int j = 0; j < 16; ++j)
        b[192 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(sc[j]));
      put_half(b + 208, d);
      for (int i = 0; i < 256; ++i) w[i] = d.value * sc[i / 16] * (q[i] - 32);
      return;
    }
    default:
      FAIL() << "no test encoder for " << io::ggml_type_name(type);
  }
}

struct GgmlWeight {
  GgmlType type;
  std::int64_t experts, n, k, row_bytes;
  std::vector<std::uint8_t> bytes;  // [experts * n, row_bytes]
  std::vector<double> dense;        // [experts * n, k]
};

GgmlWeight make_weight(std::mt19937& rng, GgmlType type, std::int64_t experts, std::int64_t n,
                       std::int64_t k) {
  const auto& tr = io::ggml_type_traits(type);
  GgmlWeight w{type, experts, n, k, static_cast<std::int64_t>(io::ggml_row_size(type, k)), {}, {}};
  const std::int64_t rows = experts * n, blocks = k / tr.block_size;
  w.bytes.resize(rows * w.row_bytes);
  w.dense.resize(rows * k);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t bi = 0; bi < blocks; ++bi) {
      make_block(rng, type, &w.bytes[r * w.row_bytes + bi * tr.type_size],
                 &w.dense[r * k + bi * tr.block_size]);
    }
  }
  return w;
}

Buffer upload_weight(Device& device, const GgmlWeight& w) {
  Buffer b = device.alloc(
      DType::U8, w.experts > 1 ? Shape{w.experts, w.n, w.row_bytes} : Shape{w.n, w.row_bytes});
  b.write(w.bytes);
  return b;
}

std::vector<double> reference(const GgmlWeight& w, const std::vector<float>& x, std::int64_t m,
                              std::int64_t top_k, bool x_per_slot,
                              const std::vector<std::int32_t>& ids) {
  std::vector<double> out(m * top_k * w.n);
  for (std::int64_t a = 0; a < m * top_k; ++a) {
    const std::int64_t xr = x_per_slot ? a : a / top_k;
    const std::int64_t e = ids.empty() ? 0 : ids[a];
    for (std::int64_t j = 0; j < w.n; ++j) {
      double acc = 0.0;
      const double* wr = &w.dense[(e * w.n + j) * w.k];
      for (std::int64_t c = 0; c < w.k; ++c) acc += double(x[xr * w.k + c]) * wr[c];
      out[a * w.n + j] = acc;
    }
  }
  return out;
}

std::vector<float> run_plain(Device& device, const GgmlWeight& w, const std::vector<float>& x,
                             std::int64_t m, DType dt) {
  Buffer wb = upload_weight(device, w);
  Buffer xb = test::upload(device, x, dt, {m, w.k});
  Buffer out = test::poisoned(device, dt, {m, w.n});
  CommandEncoder enc = device.command_encoder();
  ops::ggml_matmul(enc, xb, wb, w.type, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::vector<float> run_id(Device& device, const GgmlWeight& w, const std::vector<float>& x,
                          std::int64_t m, std::int64_t top_k, bool x_per_slot,
                          const std::vector<std::int32_t>& ids, DType dt) {
  Buffer wb = upload_weight(device, w);
  Buffer xb = test::upload(device, x, dt, x_per_slot ? Shape{m, top_k, w.k} : Shape{m, w.k});
  Buffer ib = device.alloc(DType::I32, {m, top_k});
  ib.write(ids);
  Buffer out = test::poisoned(device, dt, {m, top_k, w.n});
  CommandEncoder enc = device.command_encoder();
  ops::ggml_matmul_id(enc, xb, wb, w.type, ib, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::string describe(GgmlType type, DType dt, std::int64_t m, std::int64_t n, std::int64_t k) {
  return io::ggml_type_name(type) + " " + std::string(dtype_name(dt)) + " m=" + std::to_string(m) +
         " n=" + std::to_string(n) + " k=" + std::to_string(k);
}

// An odd number of blocks per row.
std::int64_t odd_k(GgmlType type, std::int64_t blocks) {
  return blocks * io::ggml_type_traits(type).block_size;
}

TEST(GgmlMatmulEncoderTest, TestBlocksMatchIoDequantizer) {
  auto rng = test::seeded_rng();
  for (GgmlType type : kTypes) {
    const GgmlWeight w = make_weight(rng, type, 1, 4, odd_k(type, 3));
    std::vector<float> deq(w.n * w.k);
    io::ggml_dequantize(type, {reinterpret_cast<const std::byte*>(w.bytes.data()), w.bytes.size()},
                        deq);
    EXPECT_LE(test::rel_l2(deq, w.dense), 1e-6) << io::ggml_type_name(type);
  }
}

class GgmlMatmulTest : public BackendTest {};

// ops::ggml_dequantize writes the blocks' values (the test's own decoding), rounded once to the
// output dtype.
TEST_P(GgmlMatmulTest, DequantizeMatchesTheTestsOwnDecoding) {
  auto rng = test::seeded_rng();
  for (GgmlType type : kTypes) {
    const std::int64_t n = 7;
    const std::int64_t k = odd_k(type, io::ggml_type_traits(type).block_size == 32 ? 5 : 3);
    const GgmlWeight w = make_weight(rng, type, 1, n, k);
    Buffer wb = upload_weight(device(), w);
    for (DType dt : kFloatTypes) {
      SCOPED_TRACE(describe(type, dt, 0, n, k));
      Buffer out = test::poisoned(device(), dt, {n, k});
      CommandEncoder enc = device().command_encoder();
      ops::ggml_dequantize(enc, wb, type, out);
      enc.commit_and_wait();
      const std::vector<float> got = test::download(out);
      const double ulp = dt == DType::F32 ? 1.2e-7 : dt == DType::F16 ? 9.8e-4 : 7.9e-3;
      std::int64_t bad = 0;
      for (std::int64_t i = 0; i < n * k; ++i) {
        const double want = w.dense[static_cast<std::size_t>(i)];
        if (std::abs(got[i] - want) > ulp * std::abs(want) + 1e-6) ++bad;
      }
      EXPECT_EQ(bad, 0) << bad << " of " << n * k << " elements off by more than an ulp";
    }
  }
  // An unsupported type and a wrong shape are refused before anything runs.
  const GgmlWeight w = make_weight(rng, GgmlType::Q8_0, 1, 4, 64);
  Buffer wb = upload_weight(device(), w);
  CommandEncoder enc = device().command_encoder();
  Buffer out = device().alloc(DType::F32, {4, 64});
  MLXN_EXPECT_ERROR(ops::ggml_dequantize(enc, wb, GgmlType::Q4_1, out), ErrorKind::Unsupported);
  Buffer wrong = device().alloc(DType::F32, {3, 64});
  MLXN_EXPECT_ERROR(ops::ggml_dequantize(enc, wb, GgmlType::Q8_0, wrong),
                    ErrorKind::InvalidArgument);
}

TEST_P(GgmlMatmulTest, EveryTypeMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  for (GgmlType type : kTypes) {
    const std::int64_t n = 37;
    const std::int64_t k = odd_k(type, io::ggml_type_traits(type).block_size == 32 ? 13 : 3);
    const GgmlWeight w = make_weight(rng, type, 1, n, k);
    for (DType dt : kFloatTypes) {
      for (std::int64_t m : kRows) {
        SCOPED_TRACE(describe(type, dt, m, n, k));
        const auto x = test::round_to(dt, test::random_floats(rng, m * k));
        EXPECT_LE(test::rel_l2(run_plain(device(), w, x, m, dt), reference(w, x, m, 1, false, {})),
                  test::dtype_tolerance(dt, 1e-5));
      }
    }
  }
}

TEST_P(GgmlMatmulTest, ExpertRoutedMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  const std::int64_t experts = 4, top_k = 2, n = 29;
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::int64_t k = odd_k(type, io::ggml_type_traits(type).block_size == 32 ? 9 : 2);
    const GgmlWeight w = make_weight(rng, type, experts, n, k);
    for (std::int64_t m : {1, 5}) {
      for (bool per_slot : {false, true}) {
        SCOPED_TRACE(describe(type, DType::F32, m, n, k) + (per_slot ? " x per slot" : ""));
        std::vector<std::int32_t> ids(m * top_k);
        std::uniform_int_distribution<int> pick(0, experts - 1);
        for (auto& id : ids) id = pick(rng);
        const auto x = test::random_floats(rng, (per_slot ? m * top_k : m) * k);
        EXPECT_LE(test::rel_l2(run_id(device(), w, x, m, top_k, per_slot, ids, DType::F32),
                               reference(w, x, m, top_k, per_slot, ids)),
                  1e-5);
      }
    }
  }
}

TEST_P(GgmlMatmulTest, RejectsBadArguments) {
  Buffer x = device().alloc(DType::F32, {2, 256});
  Buffer out = device().alloc(DType::F32, {2, 8});
  CommandEncoder enc = device().command_encoder();
  Buffer w = device().alloc(DType::U8, {8, 144});  // Q4_K rows of 256
  MLXN_EXPECT_ERROR(ops::ggml_matmul(enc, x, w, GgmlType::Q4_1, out), ErrorKind::Unsupported);
  MLXN_EXPECT_ERROR(ops::ggml_matmul(enc, x, w, GgmlType::Q6_K, out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(
      ops::ggml_matmul(enc, device().alloc(DType::F32, {2, 224}), w, GgmlType::Q4_K, out),
      ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::ggml_matmul(enc, x, w, GgmlType::Q4_K, device().alloc(DType::F32, {2, 9})),
                    ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(GgmlMatmulTest);

class GgmlMatmulCudaTest : public test::CudaVsCpuTest {};

TEST_F(GgmlMatmulCudaTest, LargeShapesMatchCpu) {
  auto rng = test::seeded_rng();
  struct Case {
    std::int64_t m, n, k;
  };
  constexpr Case kCases[] = {{1, 4096, 4096}, {1, 1030, 14336}, {3, 515, 4096}, {200, 1031, 4096}};
  for (GgmlType type : kTypes) {
    for (const Case& c : kCases) {
      for (DType dt : kFloatTypes) {
        SCOPED_TRACE(describe(type, dt, c.m, c.n, c.k));
        const GgmlWeight w = make_weight(rng, type, 1, c.n, c.k);
        const auto x = test::round_to(dt, test::random_floats(rng, c.m * c.k));
        const auto want = run_plain(cpu_, w, x, c.m, dt);
        const auto got = run_plain(*cuda_, w, x, c.m, dt);
        const double tol = dt == DType::F16 ? 2e-3 : dt == DType::BF16 ? 1e-2 : 1e-5;
        EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())), tol);
      }
    }
  }
}

TEST_F(GgmlMatmulCudaTest, ExpertRoutedMatchesCpu) {
  auto rng = test::seeded_rng();
  const std::int64_t experts = 6, top_k = 2, n = 515, k = 2048;
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q8_0}) {
    const GgmlWeight w = make_weight(rng, type, experts, n, k);
    for (std::int64_t m : {1, 17}) {
      SCOPED_TRACE(describe(type, DType::BF16, m, n, k));
      std::vector<std::int32_t> ids(m * top_k);
      std::uniform_int_distribution<int> pick(0, experts - 1);
      for (auto& id : ids) id = pick(rng);
      const auto x = test::round_to(DType::BF16, test::random_floats(rng, m * k));
      const auto want = run_id(cpu_, w, x, m, top_k, false, ids, DType::BF16);
      const auto got = run_id(*cuda_, w, x, m, top_k, false, ids, DType::BF16);
      EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())), 1e-2);
    }
  }
}

}  // namespace
}  // namespace mlxn
