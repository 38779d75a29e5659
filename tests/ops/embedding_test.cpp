// Embedding lookups: dense rows (f32/f16/bf16, with and without a scale) and MLX-affine-quantized
// rows for every bits / group size / dtype, checked against codes packed and decoded bit by bit
// in this test; out-of-range ids fail the command buffer on every backend.
#include "mlxn/ops/embedding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_backends.h"

namespace mlxn {
namespace {

using test::BackendTest;

constexpr DType kFloatTypes[] = {DType::F32, DType::F16, DType::BF16};

std::vector<std::int32_t> random_ids(std::mt19937& rng, std::int64_t n, std::int64_t vocab) {
  std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> ids(n);
  for (auto& id : ids) id = dist(rng);
  ids[0] = static_cast<std::int32_t>(vocab - 1);  // the last row
  if (n > 1) ids[1] = 0;
  if (n > 2) ids[2] = ids[0];  // repeats
  return ids;
}

Buffer upload_ids(Device& device, const std::vector<std::int32_t>& ids) {
  Buffer b = device.alloc(DType::I32, {static_cast<std::int64_t>(ids.size())});
  b.write(ids);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Dense.

struct DenseShape {
  std::int64_t vocab, hidden, n_tokens;
};
constexpr DenseShape kDense[] = {
    {1, 1, 1}, {50, 33, 7}, {1000, 256, 64}, {17, 4096, 3}, {5, 12, 40}};

std::vector<float> dense_on(Device& device, DType dt, DenseShape s, const std::vector<float>& table,
                            const std::vector<std::int32_t>& ids, float scale,
                            std::int64_t offset = 0) {
  Buffer whole = device.alloc(dt, {s.vocab * s.hidden + offset});
  Buffer t = whole.slice(offset, s.vocab * s.hidden).reshape({s.vocab, s.hidden});
  test::upload_to(t, table);
  Buffer out = test::poisoned(device, dt, {s.n_tokens, s.hidden});
  CommandEncoder enc = device.command_encoder();
  ops::embedding(enc, t, upload_ids(device, ids), out, scale);
  enc.commit_and_wait();
  return test::download(out);
}

std::vector<double> dense_ref(DenseShape s, const std::vector<float>& table,
                              const std::vector<std::int32_t>& ids, float scale) {
  std::vector<double> out(s.n_tokens * s.hidden);
  for (std::int64_t t = 0; t < s.n_tokens; ++t) {
    for (std::int64_t j = 0; j < s.hidden; ++j) {
      out[t * s.hidden + j] = double(table[ids[t] * s.hidden + j]) * scale;
    }
  }
  return out;
}

class EmbeddingTest : public BackendTest {};

TEST_P(EmbeddingTest, DenseRowsAreCopiedExactly) {
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    for (DenseShape s : kDense) {
      for (std::int64_t offset : {0, 1}) {  // offset 1: an unaligned table (scalar path)
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(s.vocab) + "x" +
                     std::to_string(s.hidden) + " tokens " + std::to_string(s.n_tokens) +
                     " offset " + std::to_string(offset));
        const auto table = test::round_to(dt, test::random_floats(rng, s.vocab * s.hidden));
        const auto ids = random_ids(rng, s.n_tokens, s.vocab);
        const auto out = dense_on(device(), dt, s, table, ids, 1.0f, offset);
        const auto ref = dense_ref(s, table, ids, 1.0f);
        ASSERT_EQ(out.size(), ref.size());
        for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(double(out[i]), ref[i]) << i;
      }
    }
  }
}

TEST_P(EmbeddingTest, DenseScaleMultipliesTheRow) {
  // Gemma: sqrt(hidden) rounded to the model dtype.
  auto rng = test::seeded_rng();
  for (DType dt : kFloatTypes) {
    const DenseShape s{300, 4096, 9};
    const float scale = test::round_to(dt, std::sqrt(4096.0f + 3.0f));
    const auto table = test::round_to(dt, test::random_floats(rng, s.vocab * s.hidden));
    const auto ids = random_ids(rng, s.n_tokens, s.vocab);
    EXPECT_LE(
        test::rel_l2(dense_on(device(), dt, s, table, ids, scale), dense_ref(s, table, ids, scale)),
        test::dtype_tolerance(dt, 1e-7))
        << dtype_name(dt);
  }
}

// ---------------------------------------------------------------------------------------------
// Quantized. The test packs its own codes with a bit-at-a-time writer and computes the reference
// from the codes themselves, so a packing or unpacking mistake shared with the library cannot
// pass.

struct QuantTable {
  std::vector<std::uint32_t> packed;  // [vocab, hidden * bits / 32]
  std::vector<float> scales, biases;  // [vocab, hidden / group]
  std::vector<std::uint32_t> codes;   // [vocab, hidden]
};

QuantTable make_quant(std::mt19937& rng, std::int64_t vocab, std::int64_t hidden, int bits,
                      int group, DType scale_dtype) {
  QuantTable q;
  std::uniform_int_distribution<std::uint32_t> code(0, (1u << bits) - 1u);
  q.codes.resize(vocab * hidden);
  for (auto& c : q.codes) c = code(rng);
  const std::int64_t row_words = hidden * bits / 32;
  q.packed.assign(vocab * row_words, 0u);
  for (std::int64_t r = 0; r < vocab; ++r) {
    for (std::int64_t j = 0; j < hidden; ++j) {
      for (int k = 0; k < bits; ++k) {  // bit k of code j is stream bit j * bits + k
        const std::int64_t bit = j * bits + k;
        if ((q.codes[r * hidden + j] >> k) & 1u) {
          q.packed[r * row_words + bit / 32] |= 1u << (bit % 32);
        }
      }
    }
  }
  q.scales =
      test::round_to(scale_dtype, test::random_floats(rng, vocab * hidden / group, -0.1f, 0.1f));
  q.biases =
      test::round_to(scale_dtype, test::random_floats(rng, vocab * hidden / group, -1.0f, 1.0f));
  return q;
}

// Reads code j of row r back from the packed words one bit at a time (checks make_quant).
std::uint32_t unpack_bitwise(const QuantTable& q, std::int64_t r, std::int64_t j,
                             std::int64_t hidden, int bits) {
  const std::int64_t row_words = hidden * bits / 32;
  std::uint32_t v = 0;
  for (int k = 0; k < bits; ++k) {
    const std::int64_t bit = j * bits + k;
    v |= ((q.packed[r * row_words + bit / 32] >> (bit % 32)) & 1u) << k;
  }
  return v;
}

std::vector<double> quant_ref(const QuantTable& q, const std::vector<std::int32_t>& ids,
                              std::int64_t hidden, int group, float scale) {
  std::vector<double> out(ids.size() * hidden);
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (std::int64_t j = 0; j < hidden; ++j) {
      const std::int64_t g = ids[t] * (hidden / group) + j / group;
      out[t * hidden + j] =
          (double(q.scales[g]) * q.codes[ids[t] * hidden + j] + double(q.biases[g])) * scale;
    }
  }
  return out;
}

std::vector<float> quant_on(Device& device, const QuantTable& q, std::int64_t vocab,
                            std::int64_t hidden, int bits, int group, DType scale_dtype,
                            DType out_dtype, const std::vector<std::int32_t>& ids, float scale) {
  ops::QuantizedEmbedding t;
  t.bits = bits;
  t.group_size = group;
  t.packed = device.alloc(DType::U32, {vocab, hidden * bits / 32});
  t.packed.write(q.packed);
  t.scales = test::upload(device, q.scales, scale_dtype, {vocab, hidden / group});
  t.biases = test::upload(device, q.biases, scale_dtype, {vocab, hidden / group});
  Buffer out = test::poisoned(device, out_dtype, {static_cast<std::int64_t>(ids.size()), hidden});
  CommandEncoder enc = device.command_encoder();
  ops::embedding_quantized(enc, t, upload_ids(device, ids), out, scale);
  enc.commit_and_wait();
  return test::download(out);
}

TEST_P(EmbeddingTest, QuantizedRowsMatchTheTestsOwnUnpacking) {
  auto rng = test::seeded_rng();
  const std::int64_t vocab = 37, n_tokens = 9;
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (int group : {32, 64, 128}) {
      for (DType sdt : kFloatTypes) {
        const std::int64_t hidden = group == 32 ? 160 : 2 * group + (group == 64 ? 128 : 0);
        const QuantTable q = make_quant(rng, vocab, hidden, bits, group, sdt);
        for (std::int64_t j : {std::int64_t{0}, hidden / 2 + 1, hidden - 1}) {
          ASSERT_EQ(unpack_bitwise(q, vocab - 1, j, hidden, bits),
                    q.codes[(vocab - 1) * hidden + j]);
        }
        const auto ids = random_ids(rng, n_tokens, vocab);
        for (DType odt : kFloatTypes) {
          const float scale = odt == DType::F32 ? 1.0f : 2.5f;
          SCOPED_TRACE("bits " + std::to_string(bits) + " group " + std::to_string(group) +
                       " scales " + std::string(dtype_name(sdt)) + " out " +
                       std::string(dtype_name(odt)) + " hidden " + std::to_string(hidden));
          const auto out = quant_on(device(), q, vocab, hidden, bits, group, sdt, odt, ids, scale);
          EXPECT_LE(test::rel_l2(out, quant_ref(q, ids, hidden, group, scale)),
                    test::dtype_tolerance(odt, 1e-6));
        }
      }
    }
  }
}

TEST_P(EmbeddingTest, OutOfRangeIdsFailTheCommandBuffer) {
  auto rng = test::seeded_rng();
  const std::int64_t vocab = 16, hidden = 64;
  Buffer table = test::upload(device(), test::random_floats(rng, vocab * hidden), DType::BF16,
                              {vocab, hidden});
  const QuantTable q = make_quant(rng, vocab, hidden, 4, 32, DType::F16);
  ops::QuantizedEmbedding qt;
  qt.bits = 4;
  qt.group_size = 32;
  qt.packed = device().alloc(DType::U32, {vocab, hidden * 4 / 32});
  qt.packed.write(q.packed);
  qt.scales = test::upload(device(), q.scales, DType::F16, {vocab, hidden / 32});
  qt.biases = test::upload(device(), q.biases, DType::F16, {vocab, hidden / 32});
  for (std::int32_t bad : {-1, static_cast<std::int32_t>(vocab), 1 << 30}) {
    SCOPED_TRACE("id " + std::to_string(bad));
    Buffer ids = upload_ids(device(), {3, bad, 5});
    Buffer out = device().alloc(DType::BF16, {3, hidden});
    CommandEncoder enc = device().command_encoder();
    ops::embedding(enc, table, ids, out);
    MLXN_EXPECT_ERROR(enc.commit_and_wait(), ErrorKind::CommandBuffer);
    ops::embedding_quantized(enc, qt, ids, out);
    MLXN_EXPECT_ERROR(enc.commit_and_wait(), ErrorKind::CommandBuffer);
  }
  // The device stays usable.
  const std::vector<std::int32_t> good = {0, 15};
  Buffer out = test::poisoned(device(), DType::BF16, {2, hidden});
  CommandEncoder enc = device().command_encoder();
  ops::embedding(enc, table, upload_ids(device(), good), out);
  enc.commit_and_wait();
  EXPECT_EQ(test::count_non_finite(test::download(out)), 0u);
}

TEST_P(EmbeddingTest, BadArgumentsThrowBeforeQueuing) {
  Device& d = device();
  Buffer table = d.alloc(DType::F32, {10, 64});
  Buffer ids = d.alloc(DType::I32, {3});
  Buffer ids_i64 = d.alloc(DType::I64, {3});
  Buffer out = d.alloc(DType::F32, {3, 64});
  Buffer out16 = d.alloc(DType::F16, {3, 64});
  Buffer out_short = d.alloc(DType::F32, {3, 63});
  CommandEncoder enc = d.command_encoder();
  MLXN_EXPECT_ERROR(ops::embedding(enc, table, ids_i64, out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::embedding(enc, table, ids, out16), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::embedding(enc, table, ids, out_short), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::embedding(enc, table.reshape({640}), ids, out),
                    ErrorKind::InvalidArgument);

  ops::QuantizedEmbedding q;
  q.bits = 4;
  q.group_size = 32;
  q.packed = d.alloc(DType::U32, {10, 8});
  q.scales = d.alloc(DType::F16, {10, 2});
  q.biases = d.alloc(DType::F16, {10, 2});
  ops::embedding_quantized(enc, q, ids, out);  // valid: hidden 64
  enc.discard();
  ops::QuantizedEmbedding bad = q;
  bad.bits = 7;
  MLXN_EXPECT_ERROR(ops::embedding_quantized(enc, bad, ids, out), ErrorKind::InvalidArgument);
  bad = q;
  bad.group_size = 16;
  MLXN_EXPECT_ERROR(ops::embedding_quantized(enc, bad, ids, out), ErrorKind::InvalidArgument);
  bad = q;
  bad.scales = d.alloc(DType::F16, {10, 3});
  MLXN_EXPECT_ERROR(ops::embedding_quantized(enc, bad, ids, out), ErrorKind::InvalidArgument);
  bad = q;
  bad.biases = d.alloc(DType::F32, {10, 2});
  MLXN_EXPECT_ERROR(ops::embedding_quantized(enc, bad, ids, out), ErrorKind::InvalidArgument);
  bad = q;
  bad.packed = d.alloc(DType::U8, {10, 32});
  MLXN_EXPECT_ERROR(ops::embedding_quantized(enc, bad, ids, out), ErrorKind::InvalidArgument);
  MLXN_EXPECT_ERROR(ops::embedding_quantized(enc, q, ids, out_short), ErrorKind::InvalidArgument);
  EXPECT_EQ(enc.pending_dispatches(), 0u);
}

MLXN_INSTANTIATE_BACKENDS(EmbeddingTest);

// CUDA vs CPU at Llama-3-8B scale (vocab 128256 x hidden 4096 would be 1 GiB in bf16 on the host;
// a 8192-row slice of the same width exercises the same kernels).
class EmbeddingCudaTest : public test::CudaVsCpuTest {};

TEST_F(EmbeddingCudaTest, LlamaWidthMatchesCpu) {
  auto rng = test::seeded_rng();
  const std::int64_t vocab = 8192, hidden = 4096, n_tokens = 512;
  const auto ids = random_ids(rng, n_tokens, vocab);
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const DenseShape s{vocab, hidden, n_tokens};
    const auto table = test::round_to(dt, test::random_floats(rng, vocab * hidden));
    EXPECT_EQ(dense_on(*cuda_, dt, s, table, ids, 1.0f), dense_on(cpu_, dt, s, table, ids, 1.0f));
  }
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (int group : {32, 64, 128}) {
      SCOPED_TRACE("bits " + std::to_string(bits) + " group " + std::to_string(group));
      const QuantTable q = make_quant(rng, 1024, hidden, bits, group, DType::BF16);
      const auto qids = random_ids(rng, n_tokens, 1024);
      const auto want =
          quant_on(cpu_, q, 1024, hidden, bits, group, DType::BF16, DType::BF16, qids, 64.0f);
      const auto got =
          quant_on(*cuda_, q, 1024, hidden, bits, group, DType::BF16, DType::BF16, qids, 64.0f);
      EXPECT_LE(test::rel_l2(got, std::vector<double>(want.begin(), want.end())),
                test::dtype_tolerance(DType::BF16, 1e-6));
    }
  }
}

}  // namespace
}  // namespace mlxn
