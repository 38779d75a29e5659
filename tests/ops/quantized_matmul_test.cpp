// MLX affine quantized matmul for every bits x group size, M = 1 (matvec) to 64 (tiled),
// f32/f16/bf16 activations, scales in x's dtype or f32, and the expert-routed (MoE) form. The
// reference dequantizes from the codes the test drew, in float64; the packed words come from a
// bit-by-bit packer written here, so a packing mistake shared with io or the kernels cannot pass.
#include "mlxn/ops/quantized_matmul.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mlxn/io/mlx_quant.h"
#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};
constexpr int kBits[] = {2, 3, 4, 5, 6, 8};
constexpr int kGroups[] = {32, 64, 128};
constexpr std::int64_t kRows[] = {1, 3, 17, 64};

// Packs codes [rows, k] into one LSB-first bit stream per row, bit by bit: stream bit b of a row
// is bit b % 32 of word b / 32.
std::vector<std::uint32_t> pack_bits(const std::vector<std::uint8_t>& codes, std::int64_t rows,
                                     std::int64_t k, int bits) {
  const std::int64_t words = k * bits / 32;
  std::vector<std::uint32_t> out(rows * words, 0u);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < k; ++j) {
      for (int b = 0; b < bits; ++b) {
        if ((codes[r * k + j] >> b) & 1u) {
          const std::int64_t bit = j * bits + b;
          out[r * words + bit / 32] |= 1u << (bit % 32);
        }
      }
    }
  }
  return out;
}

// A random quantized weight of `experts` stacked [n, k] matrices and its exact float values.
struct MlxWeight {
  int bits, group;
  std::int64_t experts, n, k;
  DType scale_dtype;
  std::vector<std::uint8_t> codes;
  std::vector<float> scales, biases;  // already rounded to scale_dtype
  std::vector<double> dense;          // scale * q + bias, [experts * n, k]
};

MlxWeight make_weight(std::mt19937& rng, int bits, int group, std::int64_t experts, std::int64_t n,
                      std::int64_t k, DType scale_dtype) {
  MlxWeight w{bits, group, experts, n, k, scale_dtype, {}, {}, {}, {}};
  const std::int64_t rows = experts * n;
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  w.codes.resize(rows * k);
  for (auto& c : w.codes) c = static_cast<std::uint8_t>(code(rng));
  // Scales of either sign spanning about [-2, 2] over the code range, as MLX's quantizer makes.
  const float span = 2.0f / static_cast<float>((1 << bits) - 1);
  w.scales = test::round_to(scale_dtype, test::random_floats(rng, rows * k / group, -span, span));
  w.biases = test::round_to(scale_dtype, test::random_floats(rng, rows * k / group, -1.0f, 1.0f));
  w.dense.resize(rows * k);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t g = r * (k / group) + j / group;
      w.dense[r * k + j] = double(w.scales[g]) * w.codes[r * k + j] + double(w.biases[g]);
    }
  }
  return w;
}

ops::QuantizedWeight upload_weight(Device& device, const MlxWeight& w) {
  const bool stacked = w.experts > 1;
  const std::int64_t words = w.k * w.bits / 32;
  Shape ps = stacked ? Shape{w.experts, w.n, words} : Shape{w.n, words};
  Shape gs = stacked ? Shape{w.experts, w.n, w.k / w.group} : Shape{w.n, w.k / w.group};
  ops::QuantizedWeight q;
  q.packed = device.alloc(DType::U32, ps);
  q.packed.write(pack_bits(w.codes, w.experts * w.n, w.k, w.bits));
  q.scales = test::upload(device, w.scales, w.scale_dtype, gs);
  q.biases = test::upload(device, w.biases, w.scale_dtype, gs);
  q.bits = w.bits;
  q.group_size = w.group;
  return q;
}

// out[a, j] for assignment a (token * top_k + slot) with x row `xrow(a)` and expert `ids[a]`.
std::vector<double> reference(const MlxWeight& w, const std::vector<float>& x, std::int64_t m,
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

std::vector<float> run_plain(Device& device, const MlxWeight& w, const std::vector<float>& x,
                             std::int64_t m, DType dt) {
  ops::QuantizedWeight q = upload_weight(device, w);
  Buffer xb = test::upload(device, x, dt, {m, w.k});
  Buffer out = test::poisoned(device, dt, {m, w.n});
  CommandEncoder enc = device.command_encoder();
  ops::quantized_matmul(enc, xb, q, out);
  enc.commit_and_wait();
  return test::download(out);
}

std::vector<float> run_id(Device& device, const MlxWeight& w, const std::vector<float>& x,
                          std::int64_t m, std::int64_t top_k, bool x_per_slot,
                          const std::vector<std::int32_t>& ids, DType dt) {
  ops::QuantizedWeight q = upload_weight(device, w);
  Buffer xb = test::upload(device, x, dt, x_per_slot ? Shape{m, top_k, w.k} : Shape{m, w.k});
  Buffer ib = device.alloc(DType::I32, {m, top_k});
  ib.write(ids);
  Buffer out = test::poisoned(device, dt, {m, top_k, w.n});
  CommandEncoder enc = device.command_encoder();
  ops::quantized_matmul_id(enc, xb, q, ib, out);
  enc.commit_and_wait();
  return test::download(out);
}

// x [m, k] in dt as a view that starts one element into its buffer (not 16-byte aligned), with
// the values it holds.
struct UnalignedX {
  std::vector<float> values;
  Buffer view;
};
UnalignedX upload_unaligned_x(Device& device, std::mt19937& rng, DType dt, std::int64_t m,
                              std::int64_t k) {
  const auto all = test::round_to(dt, test::random_floats(rng, m * k + 1));
  Buffer buf = test::upload(device, all, dt, {m * k + 1});
  const std::size_t es = dtype_size(dt);
  return {std::vector<float>(all.begin() + 1, all.end()),
          buf.view(es, static_cast<std::size_t>(m * k) * es, dt, {m, k})};
}

std::string describe(DType dt, int bits, int group, std::int64_t m, std::int64_t n, std::int64_t k,
                     DType sdt) {
  return std::string(dtype_name(dt)) + " bits=" + std::to_string(bits) +
         " group=" + std::to_string(group) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
         " k=" + std::to_string(k) + " scales=" + std::string(dtype_name(sdt));
}

class QuantizedMatmulTest : public BackendTest {};

TEST_P(QuantizedMatmulTest, EveryBitsAndGroupSizeMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  int variant = 0;
  for (int bits : kBits) {
    for (int group : kGroups) {
      for (DType dt : kFloatTypes) {
        ++variant;
        // Odd n; k an odd multiple of the group (3 groups), scales alternating x's dtype / f32.
        const std::int64_t n = 37, k = 3 * group;
        const DType sdt = variant % 2 ? dt : DType::F32;
        const MlxWeight w = make_weight(rng, bits, group, 1, n, k, sdt);
        for (std::int64_t m : kRows) {
          SCOPED_TRACE(describe(dt, bits, group, m, n, k, sdt));
          const auto x = test::round_to(dt, test::random_floats(rng, m * k));
          EXPECT_LE(
              test::rel_l2(run_plain(device(), w, x, m, dt), reference(w, x, m, 1, false, {})),
              test::dtype_tolerance(dt, 1e-5));
        }
      }
    }
  }
}

TEST_P(QuantizedMatmulTest, LongRowsAndManyOutputs) {
  auto rng = test::seeded_rng();
  for (int bits : {3, 4, 8}) {
    const std::int64_t n = 129, k = 4096 + 64;
    const MlxWeight w = make_weight(rng, bits, 64, 1, n, k, DType::BF16);
    for (std::int64_t m : {1, 9}) {
      SCOPED_TRACE(describe(DType::BF16, bits, 64, m, n, k, DType::BF16));
      const auto x = test::round_to(DType::BF16, test::random_floats(rng, m * k));
      EXPECT_LE(
          test::rel_l2(run_plain(device(), w, x, m, DType::BF16), reference(w, x, m, 1, false, {})),
          8e-3);
    }
  }
}

// The DecodeTiles layout (ops::tile_for_decode) must compute what the row order does, through
// every kernel that reads it: batch-1 bf16 x is the CUDA tensor-core mat-vec, which splits k over
// 1-8 warps by the shape (k = 384: 1, with a batch and a remainder step; 768: 2 at n = 320;
// 1536: 4; 4096: 8) and
// maps each 128-code step's scale groups onto mma columns; other x dtypes and m > 1 take the
// generic kernels with the tiled addressing. n = 48 leaves a block's last tiles empty.
std::vector<float> run_tiled(Device& device, const MlxWeight& w, const std::vector<float>& x,
                             std::int64_t m, DType dt) {
  const ops::QuantizedWeight rows = upload_weight(device, w);
  Buffer tiled_packed = device.alloc(DType::U32, rows.packed.shape());
  CommandEncoder enc = device.command_encoder();
  const ops::QuantizedWeight q = ops::tile_for_decode(enc, rows, tiled_packed);
  EXPECT_EQ(q.layout, ops::QuantLayout::DecodeTiles);
  Buffer xb = test::upload(device, x, dt, {m, w.k});
  Buffer out = test::poisoned(device, dt, {m, w.n});
  ops::quantized_matmul(enc, xb, q, out);
  enc.commit_and_wait();
  return test::download(out);
}

TEST_P(QuantizedMatmulTest, DecodeTilesBatchOneMatchFloat64Reference) {
  auto rng = test::seeded_rng();
  for (int group : kGroups) {
    for (DType sdt : {DType::BF16, DType::F16, DType::F32}) {
      for (std::int64_t k : {128, 384, 768, 1536, 4096}) {
        for (std::int64_t n : {16, 48, 320}) {
          SCOPED_TRACE(describe(DType::BF16, 4, group, 1, n, k, sdt) + " tiled");
          const MlxWeight w = make_weight(rng, 4, group, 1, n, k, sdt);
          const auto x = test::round_to(DType::BF16, test::random_floats(rng, k));
          EXPECT_LE(test::rel_l2(run_tiled(device(), w, x, 1, DType::BF16),
                                 reference(w, x, 1, 1, false, {})),
                    test::dtype_tolerance(DType::BF16, 1e-5));
        }
      }
    }
  }
}

TEST_P(QuantizedMatmulTest, DecodeTilesEveryRowCountAndDtypeMatchFloat64Reference) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 48, k = 512;
  for (DType dt : kFloatTypes) {
    const MlxWeight w = make_weight(rng, 4, 64, 1, n, k, DType::BF16);
    for (std::int64_t m : kRows) {
      SCOPED_TRACE(describe(dt, 4, 64, m, n, k, DType::BF16) + " tiled");
      const auto x = test::round_to(dt, test::random_floats(rng, m * k));
      EXPECT_LE(test::rel_l2(run_tiled(device(), w, x, m, dt), reference(w, x, m, 1, false, {})),
                test::dtype_tolerance(dt, 1e-5));
    }
  }
}

// Tiled codes one word into their buffer and x one element in: the tiling kernel's and every
// reader's narrow-load paths (the tensor-core mat-vec at m = 1 with bf16 x, the register one
// otherwise).
TEST_P(QuantizedMatmulTest, DecodeTilesUnalignedViewsMatchFloat64Reference) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 32, k = 512;
  for (DType dt : kFloatTypes) {
    for (std::int64_t m : {1, 3}) {
      SCOPED_TRACE(describe(dt, 4, 64, m, n, k, DType::BF16) + " tiled, unaligned");
      const MlxWeight w = make_weight(rng, 4, 64, 1, n, k, DType::BF16);
      const ops::QuantizedWeight rows = upload_weight(device(), w);
      Buffer words = device().alloc(DType::U32, {n * k / 8 + 1});
      const Buffer packed_out =
          words.view(4, static_cast<std::size_t>(n * k / 8) * 4, DType::U32, rows.packed.shape());
      const UnalignedX x = upload_unaligned_x(device(), rng, dt, m, k);
      Buffer out = test::poisoned(device(), dt, {m, n});
      CommandEncoder enc = device().command_encoder();
      const ops::QuantizedWeight q = ops::tile_for_decode(enc, rows, packed_out);
      ops::quantized_matmul(enc, x.view, q, out);
      enc.commit_and_wait();
      EXPECT_LE(test::rel_l2(test::download(out), reference(w, x.values, m, 1, false, {})),
                test::dtype_tolerance(dt, 1e-5));
    }
  }
}

// The order itself, written out again here from its definition: codes [32 s, 32 s + 32) of row r
// are the 16 bytes at ((r / 16) (k / 128) + s / 4) KB + ((r % 16) / 8) 512 + ((r % 8) 4 + s % 4)
// 16. And dequantize reads tiles back to exactly the row order's matrix.
TEST_P(QuantizedMatmulTest, DecodeTilesOrderAndDequantize) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 32, k = 256;
  const MlxWeight w = make_weight(rng, 4, 32, 1, n, k, DType::F16);
  const ops::QuantizedWeight rows = upload_weight(device(), w);
  Buffer tiled_packed = device().alloc(DType::U32, rows.packed.shape());
  Buffer want = device().alloc(DType::F32, {n, k});
  Buffer got = device().alloc(DType::F32, {n, k});
  CommandEncoder enc = device().command_encoder();
  const ops::QuantizedWeight q = ops::tile_for_decode(enc, rows, tiled_packed);
  ops::dequantize(enc, rows, want);
  ops::dequantize(enc, q, got);
  enc.commit_and_wait();
  EXPECT_EQ(test::download(got), test::download(want));
  const std::vector<std::uint32_t> src = pack_bits(w.codes, n, k, 4);
  const std::vector<std::uint32_t> tiled = tiled_packed.to_vector<std::uint32_t>();
  std::int64_t bad = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t s = 0; s < k / 32; ++s) {
      const std::int64_t byte =
          ((r / 16) * (k / 128) + s / 4) * 1024 + ((r % 16) / 8) * 512 + ((r % 8) * 4 + s % 4) * 16;
      for (std::int64_t j = 0; j < 4; ++j) {
        if (tiled[byte / 4 + j] != src[r * (k / 8) + 4 * s + j]) ++bad;
      }
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << n * k / 8 << " words out of place";
}

TEST_P(QuantizedMatmulTest, DecodeTilesRejectWhatTheyCannotHold) {
  auto rng = test::seeded_rng();
  CommandEncoder enc = device().command_encoder();
  const auto tile = [&](int bits, std::int64_t n, std::int64_t k) {
    const ops::QuantizedWeight q =
        upload_weight(device(), make_weight(rng, bits, 64, 1, n, k, DType::F32));
    EXPECT_EQ(ops::decode_tiles_fit(q), bits == 4 && n % 16 == 0 && k % 128 == 0);
    return ops::tile_for_decode(enc, q, device().alloc(DType::U32, q.packed.shape()));
  };
  MLXN_EXPECT_ERROR(tile(8, 16, 128), ErrorKind::QuantConfig);
  MLXN_EXPECT_ERROR(tile(4, 17, 128), ErrorKind::QuantConfig);
  MLXN_EXPECT_ERROR(tile(4, 16, 192), ErrorKind::QuantConfig);
  const ops::QuantizedWeight ok = tile(4, 16, 128);
  MLXN_EXPECT_ERROR(ops::tile_for_decode(enc, ok, device().alloc(DType::U32, ok.packed.shape())),
                    ErrorKind::QuantConfig);  // already tiled
  const ops::QuantizedWeight rows =
      upload_weight(device(), make_weight(rng, 4, 64, 1, 16, 128, DType::F32));
  MLXN_EXPECT_ERROR(ops::tile_for_decode(enc, rows, rows.packed), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::tile_for_decode(enc, rows, device().alloc(DType::U32, {16, 8})),
                    ErrorKind::InvalidArgument);
  // Stacked experts have no tiled form: a layout set by hand is refused.
  ops::QuantizedWeight stacked =
      upload_weight(device(), make_weight(rng, 4, 64, 2, 16, 128, DType::F32));
  stacked.layout = ops::QuantLayout::DecodeTiles;
  Buffer x = device().alloc(DType::F32, {1, 128});
  Buffer ids = device().alloc(DType::I32, {1, 1});
  MLXN_EXPECT_ERROR(
      ops::quantized_matmul_id(enc, x, stacked, ids, device().alloc(DType::F32, {1, 1, 16})),
      ErrorKind::QuantConfig);
  EXPECT_EQ(enc.pending_dispatches(), 1u);  // only the one successful tiling
  enc.commit_and_wait();
}

// Views whose first byte is not 16-byte aligned (x one element in, the packed words one word in)
// must take the kernels' narrow-load paths and still match; n of 1 and 3 leave most rows of a
// block or warp empty.
TEST_P(QuantizedMatmulTest, UnalignedViewsMatchFloat64Reference) {
  auto rng = test::seeded_rng();
  const std::int64_t k = 256;
  for (int bits : {3, 4, 8}) {
    for (DType dt : kFloatTypes) {
      // m = 1 is the mat-vec's own path (the register kernel on CUDA), m = 2 its row-strided one.
      for (std::int64_t m : {1, 2}) {
        for (std::int64_t n : {1, 3, 37}) {
          SCOPED_TRACE(describe(dt, bits, 64, m, n, k, DType::BF16) + " unaligned");
          const MlxWeight w = make_weight(rng, bits, 64, 1, n, k, DType::BF16);
          const std::int64_t words = k * bits / 32;
          std::vector<std::uint32_t> packed = pack_bits(w.codes, n, k, bits);
          packed.insert(packed.begin(), 0xDEADBEEFu);
          Buffer all_words = device().alloc(DType::U32, {n * words + 1});
          all_words.write(packed);
          ops::QuantizedWeight q;
          q.packed =
              all_words.view(4, static_cast<std::size_t>(n * words) * 4, DType::U32, {n, words});
          q.scales = test::upload(device(), w.scales, DType::BF16, {n, k / 64});
          q.biases = test::upload(device(), w.biases, DType::BF16, {n, k / 64});
          q.bits = bits;
          q.group_size = 64;
          const UnalignedX x = upload_unaligned_x(device(), rng, dt, m, k);
          Buffer out = test::poisoned(device(), dt, {m, n});
          CommandEncoder enc = device().command_encoder();
          ops::quantized_matmul(enc, x.view, q, out);
          enc.commit_and_wait();
          EXPECT_LE(test::rel_l2(test::download(out), reference(w, x.values, m, 1, false, {})),
                    test::dtype_tolerance(dt, 1e-5));
        }
      }
    }
  }
}

TEST_P(QuantizedMatmulTest, ExpertRoutedMatchesFloat64Reference) {
  auto rng = test::seeded_rng();
  const std::int64_t experts = 5, top_k = 2, n = 45;
  for (int bits : {3, 4, 8}) {
    for (DType dt : kFloatTypes) {
      const int group = bits == 3 ? 32 : 64;
      const std::int64_t k = 2 * group + 128;
      const MlxWeight w = make_weight(rng, bits, group, experts, n, k, dt);
      for (std::int64_t m : {1, 3, 17}) {
        for (bool per_slot : {false, true}) {
          SCOPED_TRACE(describe(dt, bits, group, m, n, k, dt) + (per_slot ? " x per slot" : ""));
          std::vector<std::int32_t> ids(m * top_k);
          std::uniform_int_distribution<int> pick(0, experts - 1);
          for (auto& id : ids) id = pick(rng);
          const auto x =
              test::round_to(dt, test::random_floats(rng, (per_slot ? m * top_k : m) * k));
          EXPECT_LE(test::rel_l2(run_id(device(), w, x, m, top_k, per_slot, ids, dt),
                                 reference(w, x, m, top_k, per_slot, ids)),
                    test::dtype_tolerance(dt, 1e-5));
        }
      }
    }
  }
}

TEST_P(QuantizedMatmulTest, ExpertIdOutOfRangeFailsTheCommandBuffer) {
  auto rng = test::seeded_rng();
  const MlxWeight w = make_weight(rng, 4, 64, 3, 8, 64, DType::F32);
  const auto x = test::random_floats(rng, 2 * 64);
  for (std::int32_t bad : {3, -1}) {
    MLXN_EXPECT_ERROR(run_id(device(), w, x, 2, 1, false, {0, bad}, DType::F32),
                      ErrorKind::CommandBuffer);
  }
}

TEST_P(QuantizedMatmulTest, WeightsFromIoQuantizerMatchIoDequantizer) {
  // End to end with io's MLX quantizer: the op must agree with io::dequantize_affine.
  auto rng = test::seeded_rng();
  const std::int64_t n = 19, k = 256, m = 5;
  const auto wf = test::random_floats(rng, n * k);
  const io::AffineQuantized aq = io::quantize_affine(wf, {n, k}, 4, 64);
  const auto deq = io::dequantize_affine(aq.packed, aq.scales, aq.biases, {n, k}, 4, 64);
  ops::QuantizedWeight q;
  q.packed = device().alloc(DType::U32, aq.packed_shape);
  q.packed.write(aq.packed);
  q.scales = test::upload(device(), aq.scales, DType::F32, aq.group_shape);
  q.biases = test::upload(device(), aq.biases, DType::F32, aq.group_shape);
  q.bits = 4;
  q.group_size = 64;
  const auto x = test::random_floats(rng, m * k);
  Buffer xb = test::upload(device(), x, DType::F32, {m, k});
  Buffer out = test::poisoned(device(), DType::F32, {m, n});
  CommandEncoder enc = device().command_encoder();
  ops::quantized_matmul(enc, xb, q, out);
  enc.commit_and_wait();
  std::vector<double> ref(m * n);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (std::int64_t c = 0; c < k; ++c) acc += double(x[i * k + c]) * deq[j * k + c];
      ref[i * n + j] = acc;
    }
  }
  EXPECT_LE(test::rel_l2(test::download(out), ref), 1e-5);
}

// ops::dequantize writes the matrix the matmul multiplies by: every bits / group / scale dtype /
// output dtype against the test's own scale * q + bias (float64), rounded once to the output.
TEST_P(QuantizedMatmulTest, DequantizeMatchesTheTestsOwnDecoding) {
  auto rng = test::seeded_rng();
  const std::int64_t n = 11, k = 384;
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (int group : {32, 64, 128}) {
      for (DType sd : {DType::F32, DType::BF16}) {
        const MlxWeight w = make_weight(rng, bits, group, 1, n, k, sd);
        const ops::QuantizedWeight q = upload_weight(device(), w);
        for (DType dt : kFloatTypes) {
          SCOPED_TRACE("bits " + std::to_string(bits) + " group " + std::to_string(group) +
                       " scales " + std::string(dtype_name(sd)) + " out " +
                       std::string(dtype_name(dt)));
          Buffer out = test::poisoned(device(), dt, {n, k});
          CommandEncoder enc = device().command_encoder();
          ops::dequantize(enc, q, out);
          enc.commit_and_wait();
          const std::vector<float> got = test::download(out);
          // One rounding of a value computed in f32 (fused or not): within one unit in the last
          // place of the output dtype, plus f32 noise.
          const double ulp = dt == DType::F32 ? 1.2e-7 : dt == DType::F16 ? 9.8e-4 : 7.9e-3;
          std::int64_t bad = 0;
          for (std::int64_t i = 0; i < n * k; ++i) {
            const double want = w.dense[static_cast<std::size_t>(i)];
            if (std::abs(got[i] - want) > ulp * std::abs(want) + 1e-6) ++bad;
          }
          EXPECT_EQ(bad, 0) << bad << " of " << n * k << " elements off by more than an ulp";
        }
      }
    }
  }
}

TEST_P(QuantizedMatmulTest, DequantizeRejectsBadArguments) {
  auto rng = test::seeded_rng();
  const MlxWeight w = make_weight(rng, 4, 64, 1, 8, 128, DType::F32);
  const ops::QuantizedWeight q = upload_weight(device(), w);
  CommandEncoder enc = device().command_encoder();
  Buffer wrong_shape = device().alloc(DType::F32, {8, 64});
  MLXN_EXPECT_ERROR(ops::dequantize(enc, q, wrong_shape), ErrorKind::InvalidArgument);
  Buffer not_float = device().alloc(DType::I32, {8, 128});
  MLXN_EXPECT_ERROR(ops::dequantize(enc, q, not_float), ErrorKind::UnsupportedDType);
  ops::QuantizedWeight bad = q;
  bad.bits = 7;
  Buffer out = device().alloc(DType::F32, {8, 128});
  MLXN_EXPECT_ERROR(ops::dequantize(enc, bad, out), ErrorKind::QuantConfig);
}

TEST_P(QuantizedMatmulTest, RejectsBadArguments) {
  auto rng = test::seeded_rng();
  const MlxWeight w = make_weight(rng, 4, 64, 1, 8, 128, DType::F32);
  ops::QuantizedWeight q = upload_weight(device(), w);
  Buffer x = device().alloc(DType::F32, {2, 128});
  Buffer out = device().alloc(DType::F32, {2, 8});
  CommandEncoder enc = device().command_encoder();
  ops::QuantizedWeight bad = q;
  bad.bits = 7;
  MLXN_EXPECT_ERROR(ops::quantized_matmul(enc, x, bad, out), ErrorKind::QuantConfig);
  bad = q;
  bad.group_size = 16;
  MLXN_EXPECT_ERROR(ops::quantized_matmul(enc, x, bad, out), ErrorKind::QuantConfig);
  bad = q;
  bad.scales = device().alloc(DType::F32, {8, 3});
  MLXN_EXPECT_ERROR(ops::quantized_matmul(enc, x, bad, out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::quantized_matmul(enc, device().alloc(DType::F32, {2, 64}), q, out),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::quantized_matmul(enc, x, q, device().alloc(DType::F16, {2, 8})),
                    ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::quantized_matmul_id(enc, x, q, device().alloc(DType::I32, {2, 1}), out),
                    ErrorKind::InvalidArgument);  // w is not stacked
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(QuantizedMatmulTest);

TEST(QuantizedMatmulPackingTest, TestPackerAgreesWithIo) {
  auto rng = test::seeded_rng();
  for (int bits : kBits) {
    const std::int64_t rows = 3, k = 96;
    std::vector<std::uint8_t> codes(rows * k);
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    for (auto& c : codes) c = static_cast<std::uint8_t>(code(rng));
    std::vector<std::uint32_t> io_packed(rows * k * bits / 32);
    io::pack_codes(codes, rows, k, bits, io_packed);
    EXPECT_EQ(io_packed, pack_bits(codes, rows, k, bits)) << "bits=" << bits;
  }
}

// CUDA kernels vs the CPU kernels at Llama-sized shapes.
class QuantizedMatmulCudaTest : public test::CudaVsCpuTest {};

// The tiled CUDA kernel rounds dequantized weights to x's dtype for the tensor cores.
double cuda_tolerance(DType dt) {
  return dt == DType::F16 ? 2e-3 : dt == DType::BF16 ? 1e-2 : 1e-5;
}

TEST_F(QuantizedMatmulCudaTest, LargeShapesMatchCpu) {
  auto rng = test::seeded_rng();
  struct Case {
    int bits, group;
    std::int64_t m, n, k;
  };
  constexpr Case kCases[] = {{4, 64, 1, 4096, 4096},   {8, 64, 1, 1024, 4096},
                             {4, 64, 1, 4096, 14336},  {3, 32, 1, 1000, 4096},
                             {5, 128, 2, 999, 4096},   {6, 64, 1, 777, 1536},
                             {2, 128, 4, 513, 2048},   {4, 64, 256, 1031, 4096},
                             {8, 128, 100, 515, 2048}, {3, 64, 65, 250, 1024}};
  for (const Case& c : kCases) {
    for (DType dt : kFloatTypes) {
      SCOPED_TRACE(describe(dt, c.bits, c.group, c.m, c.n, c.k, dt));
      const MlxWeight w = make_weight(rng, c.bits, c.group, 1, c.n, c.k, dt);
      const auto x = test::round_to(dt, test::random_floats(rng, c.m * c.k));
      const auto want = run_plain(cpu_, w, x, c.m, dt);
      const auto got = run_plain(*cuda_, w, x, c.m, dt);
      EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                cuda_tolerance(dt));
    }
  }
}

TEST_F(QuantizedMatmulCudaTest, ExpertRoutedMatchesCpu) {
  auto rng = test::seeded_rng();
  const std::int64_t experts = 8, top_k = 2, n = 768, k = 2048;
  const MlxWeight w = make_weight(rng, 4, 64, experts, n, k, DType::BF16);
  for (std::int64_t m : {1, 33}) {
    std::vector<std::int32_t> ids(m * top_k);
    std::uniform_int_distribution<int> pick(0, experts - 1);
    for (auto& id : ids) id = pick(rng);
    const auto x = test::round_to(DType::BF16, test::random_floats(rng, m * top_k * k));
    const auto want = run_id(cpu_, w, x, m, top_k, true, ids, DType::BF16);
    const auto got = run_id(*cuda_, w, x, m, top_k, true, ids, DType::BF16);
    EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())), 1e-2) << m;
  }
}

}  // namespace
}  // namespace mlxn
