// Synthetic models: the "tiny" preset builds for every storage kind, runs prefill and decode with
// finite, non-degenerate logits, is deterministic for a seed, and counts the bytes a decoded token
// reads as the storage formats define them.
#include "mlxn/engine/synthetic_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "test_backends.h"

namespace mlxn::engine {
namespace {

ModelOptions cpu_options() {
  ModelOptions o;
  o.backend = Backend::Cpu;
  o.context = 64;
  o.prefill_chunk = 16;
  return o;
}

const std::vector<std::int32_t> kPrompt = {1, 17, 300, 42, 511, 7, 99, 256};

// Logits of the last prompt token, then of three decode steps feeding back fixed ids.
std::vector<std::vector<float>> run_steps(Model& model) {
  std::vector<std::vector<float>> out;
  out.push_back(model.forward(kPrompt));
  for (std::int32_t id : {5, 6, 7}) out.push_back(model.forward(std::vector<std::int32_t>{id}));
  return out;
}

class SyntheticModelTest : public ::testing::TestWithParam<SyntheticQuant> {};

TEST_P(SyntheticModelTest, DecodesFiniteLogitsDeterministically) {
  Model a = make_synthetic_model("tiny", GetParam(), cpu_options(), 1);
  ASSERT_EQ(a.config().vocab_size, 512);
  const auto steps = run_steps(a);
  for (const auto& logits : steps) {
    ASSERT_EQ(logits.size(), 512u);
    double sum = 0, sq = 0;
    for (float v : logits) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sq += static_cast<double>(v) * v;
    }
    const double var = sq / 512 - (sum / 512) * (sum / 512);
    EXPECT_GT(var, 1e-6) << "logits are all equal";
    EXPECT_LT(var, 1e4) << "logits blew up";
  }
  Model same = make_synthetic_model("tiny", GetParam(), cpu_options(), 1);
  EXPECT_EQ(run_steps(same), steps);
  Model other = make_synthetic_model("tiny", GetParam(), cpu_options(), 2);
  EXPECT_NE(run_steps(other).front(), steps.front());
}

TEST_P(SyntheticModelTest, ChunkedPrefillMatchesTokenByToken) {
  Model a = make_synthetic_model("tiny", GetParam(), cpu_options(), 3);
  const std::vector<float> whole = a.forward(kPrompt);
  a.reset();
  std::vector<float> last;
  for (std::int32_t id : kPrompt) last = a.forward(std::vector<std::int32_t>{id});
  ASSERT_EQ(last.size(), whole.size());
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(whole[i] - last[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(whole[i])));
  }
  EXPECT_LE(max_diff, 1e-3 * std::max(1.0, max_abs));
}

TEST_P(SyntheticModelTest, CountsDecodeBytesFromTheStorageFormat) {
  const SyntheticQuant quant = GetParam();
  const io::ModelConfig c = synthetic_config("tiny");
  Device device = Device::open(Backend::Cpu);
  const ModelWeights w = make_synthetic_weights(c, quant, device, DType::F32, 0);
  // Bytes of an [out, in] projection, from the format definitions.
  const auto proj = [&](std::int64_t out, std::int64_t in) -> std::int64_t {
    switch (quant) {
      case SyntheticQuant::Mlx4:
        return out * in / 2 + 2 * 2 * out * (in / 64);
      case SyntheticQuant::Mlx8:
        return out * in + 2 * 2 * out * (in / 64);
      case SyntheticQuant::Bf16:
        return out * in * 4;  // dense in the f32 compute dtype
      case SyntheticQuant::Q4_0:
        return out * (in / 32) * 18;
    }
    return 0;
  };
  const std::int64_t h = c.hidden_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim,
                     f = c.intermediate_size;
  const std::int64_t layer = proj(q, h) + 2 * proj(kv, h) + proj(h, q) + 3 * proj(f, h);
  const bool mlx = quant == SyntheticQuant::Mlx4 || quant == SyntheticQuant::Mlx8;
  const std::int64_t embedding_row = mlx ? proj(1, h) : h * 4;
  EXPECT_EQ(decode_weight_bytes(w), c.n_layers * layer + proj(c.vocab_size, h) + embedding_row);
  EXPECT_GT(w.bytes, decode_weight_bytes(w));  // plus the rest of the embedding and the norms
}

// Like a loaded model's, q/k/v and gate/up are one allocation each with the parts as row views
// (what `mlxn bench --synthetic` then measures: the fused decode mat-vecs).
TEST_P(SyntheticModelTest, FusesQkvAndGateUp) {
  const io::ModelConfig c = synthetic_config("tiny");
  Device device = Device::open(Backend::Cpu);
  const ModelWeights w = make_synthetic_weights(c, GetParam(), device, DType::F32, 0);
  const std::int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const auto storage = [](const Linear& l) -> const Buffer& {
    return l.kind == WeightKind::Dense  ? l.dense
           : l.kind == WeightKind::Ggml ? l.ggml
                                        : l.quant.packed;
  };
  for (const LayerWeights& l : w.layers) {
    ASSERT_TRUE(l.attn.qkv.valid());
    EXPECT_EQ(l.attn.qkv.out, q + 2 * kv);
    const std::size_t row = storage(l.attn.qkv).size_bytes() / static_cast<std::size_t>(q + 2 * kv);
    for (auto [part, row0] :
         {std::pair{&l.attn.q, std::int64_t{0}}, {&l.attn.k, q}, {&l.attn.v, q + kv}}) {
      EXPECT_TRUE(storage(*part).same_storage(storage(l.attn.qkv)));
      EXPECT_EQ(storage(*part).offset(), static_cast<std::size_t>(row0) * row);
    }
    ASSERT_TRUE(l.mlp && l.mlp->gate_up.valid());
    EXPECT_EQ(l.mlp->gate_up.out, 2 * c.intermediate_size);
    EXPECT_TRUE(storage(l.mlp->up).same_storage(storage(l.mlp->gate_up)));
    EXPECT_EQ(storage(l.mlp->up).offset(), storage(l.mlp->gate_up).size_bytes() / 2);
  }
}

INSTANTIATE_TEST_SUITE_P(AllKinds, SyntheticModelTest,
                         ::testing::Values(SyntheticQuant::Mlx4, SyntheticQuant::Mlx8,
                                           SyntheticQuant::Bf16, SyntheticQuant::Q4_0),
                         [](const auto& info) {
                           return std::string(synthetic_quant_name(info.param));
                         });

TEST(SyntheticModel, Q4_0BlocksHaveSmallPositiveScales) {
  const io::ModelConfig c = synthetic_config("tiny");
  Device device = Device::open(Backend::Cpu);
  const ModelWeights w = make_synthetic_weights(c, SyntheticQuant::Q4_0, device, DType::F32, 0);
  const std::vector<std::uint8_t> bytes = w.lm_head.ggml.to_vector<std::uint8_t>();
  ASSERT_EQ(bytes.size() % 18, 0u);
  for (std::size_t b = 0; b < bytes.size(); b += 18) {
    const float d = f16_bits_to_f32(static_cast<std::uint16_t>(bytes[b] | (bytes[b + 1] << 8)));
    ASSERT_TRUE(std::isfinite(d) && d > 0.0f && d < 1.0f) << "block " << b / 18 << ": d " << d;
  }
}

// On CUDA the loader repacks Q4_0 projections to MLX 4-bit group 32 with f16 scales and biases
// (engine/ggml_repack.h); the synthetic model must hold what such a loaded model holds, so that
// the benchmark reads the same bytes: 4 bits a weight plus two f16 values a 32-weight group.
TEST(SyntheticModelCuda, Q4_0ProjectionsAreRepackedLikeALoadedModel) {
  std::string reason;
  std::optional<Device> cuda = test::open_cuda_or_reason(reason);
  if (!cuda) GTEST_SKIP() << "no CUDA device: " << reason;
  const io::ModelConfig c = synthetic_config("tiny");
  const ModelWeights w = make_synthetic_weights(c, SyntheticQuant::Q4_0, *cuda, DType::BF16, 0);
  for (const Linear* l : {&w.lm_head, &w.layers[0].attn.qkv, &w.layers[0].mlp->down}) {
    EXPECT_EQ(l->kind, WeightKind::MlxQuant);
    EXPECT_EQ(l->quant.bits, 4);
    EXPECT_EQ(l->quant.group_size, 32);
    EXPECT_EQ(l->quant.scales.dtype(), DType::F16);
    EXPECT_EQ(l->quant.biases.dtype(), DType::F16);
    const std::size_t bytes =
        l->quant.packed.size_bytes() + l->quant.scales.size_bytes() + l->quant.biases.size_bytes();
    EXPECT_EQ(static_cast<std::int64_t>(bytes), l->out * l->in / 2 + 2 * 2 * l->out * (l->in / 32));
  }
  // Biases are -8 d of positive d below 1: a scale and its bias agree group by group.
  const std::vector<std::uint16_t> s = w.lm_head.quant.scales.to_vector<std::uint16_t>();
  const std::vector<std::uint16_t> b = w.lm_head.quant.biases.to_vector<std::uint16_t>();
  ASSERT_EQ(s.size(), b.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    ASSERT_EQ(f16_bits_to_f32(b[i]), -8.0f * f16_bits_to_f32(s[i])) << "group " << i;
  }
}

// On CUDA with bf16 activations, 4-bit projections are re-laid in the DecodeTiles order at load
// (ModelOptions::decode_tiles, engine/decode_tiles.h). The model must then compute what it
// computes in MLX's row order, through every path a tiled weight takes: prefill of 20 rows (the
// tiled quantized kernel), of 40 rows (decode into the workspace + the dense matmul) and batch-1
// decode steps (the tensor-core mat-vec). Q4_0 projections, repacked to MLX 4-bit group 32, too.
TEST(SyntheticModelCuda, DecodeTilesComputeWhatTheRowOrderComputes) {
  std::string reason;
  std::optional<Device> cuda = test::open_cuda_or_reason(reason);
  if (!cuda) GTEST_SKIP() << "no CUDA device: " << reason;
  std::vector<std::int32_t> ids(60);
  for (std::size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<std::int32_t>((37 * i + 5) % 512);
  const auto run = [&](Model& m) {
    std::vector<std::vector<float>> out;
    out.push_back(m.forward(std::vector<std::int32_t>(ids.begin(), ids.begin() + 20)));
    out.push_back(m.forward(std::vector<std::int32_t>(ids.begin() + 20, ids.end())));
    for (std::int32_t id : {5, 6, 7}) out.push_back(m.forward(std::vector<std::int32_t>{id}));
    return out;
  };
  for (SyntheticQuant q : {SyntheticQuant::Mlx4, SyntheticQuant::Q4_0}) {
    SCOPED_TRACE(std::string(synthetic_quant_name(q)));
    ModelOptions o;
    o.backend = Backend::Cuda;
    o.context = 128;
    o.prefill_chunk = 64;
    Model tiled = make_synthetic_model("tiny", q, o, 4);
    o.decode_tiles = false;
    Model rows = make_synthetic_model("tiny", q, o, 4);
    const LayerWeights& lt = tiled.weights().layers[0];
    for (const Linear* l : {&lt.attn.qkv, &lt.attn.q, &lt.attn.v, &lt.attn.o, &lt.mlp->gate_up,
                            &lt.mlp->up, &lt.mlp->down, &tiled.weights().lm_head}) {
      EXPECT_EQ(l->quant.layout, ops::QuantLayout::DecodeTiles);
    }
    EXPECT_EQ(rows.weights().layers[0].attn.qkv.quant.layout, ops::QuantLayout::Rows);
    const auto a = run(tiled), b = run(rows);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      // Both in bf16; the kernels add in different orders, so the activations may differ by
      // bf16 roundings, not more.
      EXPECT_LE(test::rel_l2(a[i], b[i]), 1e-2) << "step " << i;
    }
  }
}

TEST(SyntheticModel, RejectsUnknownNamesAndMismatchedDtype) {
  EXPECT_THROW(synthetic_config("llama9-1t"), Error);
  EXPECT_FALSE(parse_synthetic_quant("q3_k").has_value());
  EXPECT_EQ(parse_synthetic_quant("q4_0"), SyntheticQuant::Q4_0);
  const io::ModelConfig c = synthetic_config("tiny");
  Device device = Device::open(Backend::Cpu);
  ModelWeights w = make_synthetic_weights(c, SyntheticQuant::Mlx4, device, DType::F32, 0);
  ModelOptions o = cpu_options();
  o.compute_dtype = DType::BF16;
  EXPECT_THROW(Model::from_weights(c, std::move(w), device, o), Error);
}

TEST(SyntheticModel, Llama3_8bPresetHasTheRealShape) {
  const io::ModelConfig c = synthetic_config("llama3-8b");
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.n_layers, 32);
  EXPECT_EQ(c.n_heads, 32);
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.rope.theta, 500000.0);
}

}  // namespace
}  // namespace mlxn::engine
