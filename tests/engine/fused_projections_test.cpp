// Fused decode projections: the loader stacks q/k/v and gate/up into one allocation per buffer
// (MLX-quantized, GGML blocks or on CUDA their MLX repacking, dense rows, biases) when their
// storage is compatible and leaves them separate otherwise; the parts are zero-copy row views of
// the fused Linear, in row order; and a decode step through the fused projections gives the
// logits the separate parts give, and that prefill (which applies the parts) gives.
#include "engine/fused_projections.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "mlxn/core/counters.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/model_weights.h"

namespace mlxn::engine {
namespace {

using detail::can_fuse;
using detail::LinearFormat;
using io::GgmlType;
using io::TensorDType;
using mlxn::test::rel_l2;
using test::Storage;
using test::TinyModel;
using test::WrittenTensor;

// 2 layers, hidden 128, 2 heads of 64 (the smallest head_dim attention runs) / 1 kv head:
// q rows 128, k and v rows 64 each, gate and up rows 192 each.
constexpr std::int64_t kHidden = 128, kQRows = 128, kKvRows = 64, kFfn = 192;

std::string llama_config(const std::string& model_type, const std::string& extra = "") {
  return R"({"model_type": ")" + model_type +
         R"(", "hidden_size": 128, "intermediate_size": 192, "num_attention_heads": 2,
    "num_key_value_heads": 1, "head_dim": 64, "num_hidden_layers": 2, "vocab_size": 96,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

std::vector<double> concat(std::initializer_list<const std::vector<double>*> parts) {
  std::vector<double> out;
  for (const std::vector<double>* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

// The weights with the fused projections dropped: decode then applies the parts one by one.
ModelWeights without_fusion(ModelWeights w) {
  for (LayerWeights& l : w.layers) {
    l.attn.qkv = Linear{};
    if (l.mlp) l.mlp->gate_up = Linear{};
  }
  return w;
}

class FusedProjectionsTest : public mlxn::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    rng_ = mlxn::test::seeded_rng();
  }

  ModelWeights load(TinyModel& m) {
    const auto path = m.write(dir_ / ("m" + std::to_string(n_dirs_++)), rng_);
    return load_model_weights(io::ModelDir::open(path), device(), DType::F32);
  }

  // l.apply on fresh inputs matches x . w^T (+ bias) in float64.
  void expect_apply(const Linear& l, const std::vector<double>& w,
                    const std::vector<double>* bias = nullptr) {
    const std::int64_t m = 3;
    const auto x = mlxn::test::random_floats(rng_, static_cast<std::size_t>(m * l.in));
    const auto y = test::run_linear(
        device(), DType::F32, x, m, l.in, l.out,
        [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) { l.apply(e, xb, out); });
    EXPECT_LT(rel_l2(y, test::matmul_ref(x, w, m, l.out, l.in, bias)), 1e-5);
  }

  // The storage test::expect_gguf_storage expects on this backend; whether it is repacked.
  bool expect_gguf_storage(const Linear& l, GgmlType type) {
    return test::expect_gguf_storage(device().backend(), l, type);
  }

  // Parts are zero-copy row views of `fused`, back to back in the order given.
  static void expect_row_views(const Linear& fused, std::initializer_list<const Linear*> parts) {
    ASSERT_TRUE(fused.valid());
    std::int64_t row0 = 0;
    for (const Linear* p : parts) {
      EXPECT_EQ(p->kind, fused.kind);
      EXPECT_EQ(p->in, fused.in);
      const auto expect_view = [&](const Buffer& part, const Buffer& whole) {
        ASSERT_TRUE(part.valid());
        EXPECT_TRUE(part.same_storage(whole));
        const std::size_t row_bytes = whole.size_bytes() / static_cast<std::size_t>(fused.out);
        EXPECT_EQ(part.offset(), whole.offset() + static_cast<std::size_t>(row0) * row_bytes);
        EXPECT_EQ(part.size_bytes(), static_cast<std::size_t>(p->out) * row_bytes);
      };
      switch (fused.kind) {
        case WeightKind::Dense:
          expect_view(p->dense, fused.dense);
          break;
        case WeightKind::MlxQuant:
          expect_view(p->quant.packed, fused.quant.packed);
          expect_view(p->quant.scales, fused.quant.scales);
          expect_view(p->quant.biases, fused.quant.biases);
          break;
        case WeightKind::Ggml:
          expect_view(p->ggml, fused.ggml);
          break;
      }
      EXPECT_EQ(p->bias.valid(), fused.bias.valid());
      if (fused.bias.valid()) expect_view(p->bias, fused.bias);
      row0 += p->out;
    }
    EXPECT_EQ(row0, fused.out);
  }

  // Prefill, then decode steps: the fused model's decode logits equal the separate parts' and
  // the logits scoring the whole sequence (prefill, which applies the parts) gives. The fused
  // decode step must also encode fewer dispatches: proof it took the fused path.
  void expect_fused_decode_matches(const io::ModelConfig& config, const ModelWeights& w) {
    ModelOptions o;
    o.backend = GetParam();
    o.compute_dtype = DType::F32;
    o.context = 64;
    o.prefill_chunk = 16;
    Model fused = Model::from_weights(config, w, device(), o);
    Model separate = Model::from_weights(config, without_fusion(w), device(), o);
    const std::vector<std::int32_t> tokens = {3, 17, 42, 8, 95, 0, 61, 29, 77, 5};
    const std::size_t prompt = 6;
    const auto vocab = static_cast<std::size_t>(config.vocab_size);
    const std::vector<float> scored = separate.score(tokens);
    const std::span<const std::int32_t> all(tokens);
    fused.reset();
    separate.reset();
    fused.forward(all.subspan(0, prompt));
    separate.forward(all.subspan(0, prompt));
    for (std::size_t t = prompt; t < tokens.size(); ++t) {
      SCOPED_TRACE("position " + std::to_string(t));
      counters::reset();
      const std::vector<float> a = fused.forward(all.subspan(t, 1));
      const std::uint64_t fused_dispatches = counters::read().dispatches;
      counters::reset();
      const std::vector<float> b = separate.forward(all.subspan(t, 1));
      const std::uint64_t separate_dispatches = counters::read().dispatches;
      EXPECT_LE(rel_l2(a, b), is_cuda() ? 1e-5 : 1e-6);
      const std::vector<float> want(scored.begin() + static_cast<std::ptrdiff_t>(t * vocab),
                                    scored.begin() + static_cast<std::ptrdiff_t>((t + 1) * vocab));
      EXPECT_LE(rel_l2(a, want), is_cuda() ? 1e-4 : 1e-5);
      EXPECT_LT(fused_dispatches, separate_dispatches);
    }
  }

  test::TempDir dir_;
  int n_dirs_ = 0;
  std::mt19937 rng_;
};

TEST_P(FusedProjectionsTest, MlxQuantizedLlamaLoadsFusedQkvAndGateUp) {
  TinyModel m = TinyModel::safetensors(llama_config("llama", R"("quantization": {"group_size": 32,
                                                     "bits": 4})"));
  m.storage = test::as_config_says(m.config(), TensorDType::F32);
  const ModelWeights w = load(m);
  for (int l = 0; l < 2; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& lw = w.layers[static_cast<std::size_t>(l)];
    const AttentionWeights& at = lw.attn;
    ASSERT_TRUE(at.qkv.valid());
    EXPECT_EQ(at.qkv.kind, WeightKind::MlxQuant);
    EXPECT_EQ(at.qkv.out, kQRows + 2 * kKvRows);
    EXPECT_EQ(at.qkv.in, kHidden);
    EXPECT_EQ(at.qkv.quant.bits, 4);
    EXPECT_EQ(at.qkv.quant.group_size, 32);
    EXPECT_EQ(at.qkv.quant.packed.shape(), (Shape{kQRows + 2 * kKvRows, kHidden * 4 / 32}));
    EXPECT_EQ(at.qkv.quant.scales.shape(), (Shape{kQRows + 2 * kKvRows, kHidden / 32}));
    expect_row_views(at.qkv, {&at.q, &at.k, &at.v});
    const WrittenTensor& q = m.at(p + "self_attn.q_proj.weight");
    const WrittenTensor& k = m.at(p + "self_attn.k_proj.weight");
    const WrittenTensor& v = m.at(p + "self_attn.v_proj.weight");
    // Rows q, then k, then v: the fused product is the three products stacked.
    expect_apply(at.qkv, concat({&q.values, &k.values, &v.values}));
    expect_apply(at.q, q.values);
    expect_apply(at.k, k.values);
    expect_apply(at.v, v.values);
    EXPECT_FALSE(at.o.quant.packed.same_storage(at.qkv.quant.packed));

    ASSERT_TRUE(lw.mlp);
    const MlpWeights& mlp = *lw.mlp;
    ASSERT_TRUE(mlp.gate_up.valid());
    EXPECT_EQ(mlp.gate_up.out, 2 * kFfn);
    expect_row_views(mlp.gate_up, {&mlp.gate, &mlp.up});
    const WrittenTensor& gate = m.at(p + "mlp.gate_proj.weight");
    const WrittenTensor& up = m.at(p + "mlp.up_proj.weight");
    expect_apply(mlp.gate_up, concat({&gate.values, &up.values}));
    expect_apply(mlp.gate, gate.values);
    expect_apply(mlp.up, up.values);
  }
  expect_fused_decode_matches(m.config(), w);
}

TEST_P(FusedProjectionsTest, IncompatiblePartsStaySeparateAndStillDecode) {
  // Layer 1: v_proj at 8 bits and up_proj at group 64 cannot share their neighbours' buffers.
  TinyModel m = TinyModel::safetensors(llama_config("llama", R"("quantization": {
      "group_size": 32, "bits": 4,
      "model.layers.1.self_attn.v_proj": {"group_size": 32, "bits": 8},
      "model.layers.1.mlp.up_proj": {"group_size": 64, "bits": 4}})"));
  m.storage = test::as_config_says(m.config(), TensorDType::F32);
  const ModelWeights w = load(m);
  EXPECT_TRUE(w.layers[0].attn.qkv.valid());
  EXPECT_TRUE(w.layers[0].mlp->gate_up.valid());
  const LayerWeights& l1 = w.layers[1];
  EXPECT_FALSE(l1.attn.qkv.valid());
  EXPECT_FALSE(l1.mlp->gate_up.valid());
  EXPECT_FALSE(l1.attn.k.quant.packed.same_storage(l1.attn.q.quant.packed));
  EXPECT_FALSE(l1.mlp->up.quant.packed.same_storage(l1.mlp->gate.quant.packed));
  EXPECT_EQ(l1.attn.v.quant.bits, 8);
  EXPECT_EQ(l1.mlp->up.quant.group_size, 64);
  const std::string p = "model.layers.1.";
  expect_apply(l1.attn.q, m.at(p + "self_attn.q_proj.weight").values);
  expect_apply(l1.attn.v, m.at(p + "self_attn.v_proj.weight").values);
  expect_apply(l1.mlp->up, m.at(p + "mlp.up_proj.weight").values);
  expect_fused_decode_matches(m.config(), w);
}

TEST_P(FusedProjectionsTest, BiasesAreFusedWithTheirRows) {
  // Qwen2: q/k/v carry biases (o does not); dense f32 weights.
  TinyModel m = TinyModel::safetensors(llama_config("qwen2"));
  const ModelWeights w = load(m);
  const AttentionWeights& at = w.layers[0].attn;
  ASSERT_TRUE(at.qkv.valid());
  EXPECT_EQ(at.qkv.kind, WeightKind::Dense);
  ASSERT_TRUE(at.qkv.bias.valid());
  EXPECT_EQ(at.qkv.bias.shape(), (Shape{kQRows + 2 * kKvRows}));
  expect_row_views(at.qkv, {&at.q, &at.k, &at.v});
  const std::string a = "model.layers.0.self_attn.";
  const auto values = [&](const char* name) { return &m.at(a + name).values; };
  const std::vector<double> bias =
      concat({values("q_proj.bias"), values("k_proj.bias"), values("v_proj.bias")});
  expect_apply(at.qkv,
               concat({values("q_proj.weight"), values("k_proj.weight"), values("v_proj.weight")}),
               &bias);
  expect_fused_decode_matches(m.config(), w);
}

TEST_P(FusedProjectionsTest, GgufBlocksAreStackedByteForByte) {
  TinyModel m = TinyModel::gguf(test::gguf_meta("llama", 2, 128, 192, 2, 1, 96), true);
  m.storage = [](const io::ExpectedTensor& e) {
    const std::string name = io::gguf_tensor_name(e.name, io::Architecture::Llama);
    if (e.shape.size() == 1) return Storage::gg(GgmlType::F32);
    if (name == "blk.0.attn_k.weight") return Storage::gg(GgmlType::Q4_0);    // q, v: Q8_0
    if (name == "blk.0.ffn_gate.weight") return Storage::gg(GgmlType::Q4_1);  // dequantized
    if (name == "blk.0.ffn_up.weight") return Storage::gg(GgmlType::F16);     // dequantized
    return Storage::gg(GgmlType::Q8_0);
  };
  const ModelWeights w = load(m);
  // Layer 0: Q8_0 / Q4_0 / Q8_0 attention stays separate -- GGML types differ on the CPU, and on
  // CUDA, which repacks them to MLX affine form, so do the bits (8 / 4 / 8). Gate and up are both
  // dequantized to dense rows, so they stack whatever their GGML types were.
  const LayerWeights& l0 = w.layers[0];
  EXPECT_FALSE(l0.attn.qkv.valid());
  expect_gguf_storage(l0.attn.q, GgmlType::Q8_0);
  expect_gguf_storage(l0.attn.k, GgmlType::Q4_0);
  expect_gguf_storage(l0.attn.v, GgmlType::Q8_0);
  const std::string a0 = "model.layers.0.self_attn.";
  expect_apply(l0.attn.k, m.at(a0 + "k_proj.weight").values);
  ASSERT_TRUE(l0.mlp->gate_up.valid());
  EXPECT_EQ(l0.mlp->gate_up.kind, WeightKind::Dense);
  expect_row_views(l0.mlp->gate_up, {&l0.mlp->gate, &l0.mlp->up});
  const std::string p0 = "model.layers.0.mlp.";
  expect_apply(l0.mlp->gate_up, concat({&m.at(p0 + "gate_proj.weight").values,
                                        &m.at(p0 + "up_proj.weight").values}));
  // Layer 1: all Q8_0. The CPU stacks the blocks byte for byte; CUDA stacks their 8-bit MLX
  // forms (codes, scales and biases) row for row. Either way the parts are row views and the
  // fused product is the parts' products stacked.
  const LayerWeights& l1 = w.layers[1];
  ASSERT_TRUE(l1.attn.qkv.valid());
  EXPECT_EQ(l1.attn.qkv.out, kQRows + 2 * kKvRows);
  EXPECT_EQ(l1.attn.qkv.in, kHidden);
  const bool repacked = expect_gguf_storage(l1.attn.qkv, GgmlType::Q8_0);
  expect_row_views(l1.attn.qkv, {&l1.attn.q, &l1.attn.k, &l1.attn.v});
  const std::string a = "model.layers.1.self_attn.";
  const WrittenTensor& q = m.at(a + "q_proj.weight");
  const WrittenTensor& k = m.at(a + "k_proj.weight");
  const WrittenTensor& v = m.at(a + "v_proj.weight");
  if (!repacked) {
    std::vector<std::byte> raw;
    for (const WrittenTensor* t : {&q, &k, &v}) raw.insert(raw.end(), t->raw.begin(), t->raw.end());
    EXPECT_EQ(l1.attn.qkv.ggml.to_vector<std::byte>(), raw);
  }
  expect_apply(l1.attn.qkv, concat({&q.values, &k.values, &v.values}));
  ASSERT_TRUE(l1.mlp->gate_up.valid());
  EXPECT_EQ(l1.mlp->gate_up.out, 2 * kFfn);
  expect_gguf_storage(l1.mlp->gate_up, GgmlType::Q8_0);
  expect_row_views(l1.mlp->gate_up, {&l1.mlp->gate, &l1.mlp->up});
  const std::string p1 = "model.layers.1.mlp.";
  const WrittenTensor& gate = m.at(p1 + "gate_proj.weight");
  const WrittenTensor& up = m.at(p1 + "up_proj.weight");
  if (!repacked) {
    std::vector<std::byte> raw = gate.raw;
    raw.insert(raw.end(), up.raw.begin(), up.raw.end());
    EXPECT_EQ(l1.mlp->gate_up.ggml.to_vector<std::byte>(), raw);
  }
  expect_apply(l1.mlp->gate_up, concat({&gate.values, &up.values}));
  expect_fused_decode_matches(m.config(), w);
}

MLXN_INSTANTIATE_BACKENDS(FusedProjectionsTest);

// The compatibility rule on its own, one mismatch at a time.
TEST(FusedProjectionsRule, FusesOnlyPartsOfOneStorage) {
  const auto mlx = [](std::int64_t out) {
    LinearFormat f;
    f.kind = WeightKind::MlxQuant;
    f.in = 128;
    f.out = out;
    f.dtype = DType::BF16;
    f.bits = 4;
    f.group_size = 64;
    return f;
  };
  const auto check = [](std::vector<LinearFormat> parts) { return can_fuse(parts); };
  EXPECT_TRUE(check({mlx(128), mlx(64), mlx(64)}));
  EXPECT_FALSE(check({mlx(128)})) << "one part: nothing to fuse";
  const auto changed = [&](auto&& edit) {
    std::vector<LinearFormat> parts{mlx(128), mlx(64), mlx(64)};
    edit(parts[2]);
    return can_fuse(parts);
  };
  EXPECT_FALSE(changed([](LinearFormat& f) { f.bits = 8; }));
  EXPECT_FALSE(changed([](LinearFormat& f) { f.group_size = 32; }));
  EXPECT_FALSE(changed([](LinearFormat& f) { f.dtype = DType::F16; }));  // scales dtype
  EXPECT_FALSE(changed([](LinearFormat& f) { f.in = 256; }));
  EXPECT_FALSE(changed([](LinearFormat& f) { f.kind = WeightKind::Dense; }));
  EXPECT_FALSE(changed([](LinearFormat& f) { f.has_bias = true; }));
  std::vector<LinearFormat> biased{mlx(128), mlx(64)};
  for (LinearFormat& f : biased) f.has_bias = true;
  EXPECT_TRUE(can_fuse(biased));

  const auto q4_0 = [](std::int64_t out, std::int64_t in) {
    LinearFormat f;
    f.kind = WeightKind::Ggml;
    f.in = in;
    f.out = out;
    f.dtype = DType::U8;
    f.ggml_type = GgmlType::Q4_0;
    f.row_bytes = in / 32 * 18;
    return f;
  };
  EXPECT_TRUE(check({q4_0(64, 64), q4_0(32, 64)}));
  // 18-byte rows: a part starting after one row would start 2-byte aligned.
  EXPECT_FALSE(check({q4_0(1, 32), q4_0(32, 32)}));
  EXPECT_TRUE(check({q4_0(2, 32), q4_0(32, 32)}));
  std::vector<LinearFormat> types{q4_0(64, 64), q4_0(64, 64)};
  types[1].ggml_type = GgmlType::Q8_0;
  types[1].row_bytes = 2 * 34;
  EXPECT_FALSE(can_fuse(types));
}

}  // namespace
}  // namespace mlxn::engine
