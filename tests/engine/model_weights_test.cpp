// load_model_weights: tiny Llama, Qwen2, Qwen3-MoE, Phi-3 and Gemma models written as
// safetensors (float and MLX-quantized) and GGUF (native and dequantized GGML types) bind to
// the expected Linear kinds and shapes, reproduce the stored values, apply as a float64 matmul
// with the dequantized weights, and fail naming the file and tensor on bad input.
#include "mlxn/engine/model_weights.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>

#include "engine/weight_upload.h"
#include "engine_test_util.h"
#include "mlxn/ops/ggml_matmul.h"

namespace mlxn::engine {
namespace {

using io::GgmlType;
using io::TensorDType;
using mlxn::test::rel_l2;
using test::Storage;
using test::TinyModel;
using test::WrittenTensor;

// A small config.json: 2 layers, hidden 64, 4 heads of 16 / 2 kv heads, vocab 96.
std::string config(const std::string& model_type, const std::string& extra = "") {
  return R"({"model_type": ")" + model_type +
         R"(", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2, "vocab_size": 96,
    "rms_norm_eps": 1e-5)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// Device bytes of all distinct storages a ModelWeights holds (views counted by their extent).
std::int64_t distinct_bytes(const ModelWeights& w) {
  std::map<const void*, std::size_t> extent;
  auto add = [&](const Buffer& b) {
    if (!b.valid()) return;
    std::size_t& e = extent[b.storage_id()];
    e = std::max(e, b.offset() + b.size_bytes());
  };
  auto add_linear = [&](const Linear& l) {
    add(l.dense), add(l.quant.packed), add(l.quant.scales), add(l.quant.biases), add(l.ggml);
    add(l.bias);
  };
  auto add_experts = [&](const ExpertLinear& l) {
    add(l.dense), add(l.quant.packed), add(l.quant.scales), add(l.quant.biases), add(l.ggml);
  };
  add(w.embedding.dense);
  if (w.embedding.quant) {
    add(w.embedding.quant->packed), add(w.embedding.quant->scales);
    add(w.embedding.quant->biases);
  }
  for (const LayerWeights& l : w.layers) {
    for (const Buffer* b : {&l.attn_norm, &l.post_attn_norm, &l.ffn_norm, &l.post_ffn_norm,
                            &l.attn.q_norm, &l.attn.k_norm}) {
      add(*b);
    }
    for (const Linear* p : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o}) add_linear(*p);
    if (l.mlp) add_linear(l.mlp->gate), add_linear(l.mlp->up), add_linear(l.mlp->down);
    if (l.moe) {
      add_linear(l.moe->router);
      add_experts(l.moe->gate), add_experts(l.moe->up), add_experts(l.moe->down);
    }
  }
  add(w.final_norm);
  add_linear(w.lm_head);
  std::int64_t total = 0;
  for (const auto& [id, bytes] : extent) total += static_cast<std::int64_t>(bytes);
  return total;
}

class ModelWeightsTest : public mlxn::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    rng_ = mlxn::test::seeded_rng();
  }

  // Writes and loads `m` (recording progress), checking the progress reports and the bytes.
  ModelWeights load(TinyModel& m, DType dtype) {
    const auto path = m.write(fresh_dir(), rng_);
    const io::ModelDir model = io::ModelDir::open(path);
    std::vector<std::pair<std::int64_t, std::int64_t>> calls;
    ModelWeights w = load_model_weights(
        model, device(), dtype, [&](std::int64_t d, std::int64_t t) { calls.emplace_back(d, t); });
    EXPECT_EQ(w.compute_dtype, dtype);
    EXPECT_EQ(w.layers.size(), static_cast<std::size_t>(m.config().n_layers));
    EXPECT_EQ(w.bytes, distinct_bytes(w));
    EXPECT_GE(calls.size(), 2u);
    if (!calls.empty()) {
      EXPECT_EQ(calls.front(), std::make_pair(std::int64_t{0}, w.bytes));
      EXPECT_EQ(calls.back(), std::make_pair(w.bytes, w.bytes));
      for (std::size_t i = 1; i < calls.size(); ++i) {
        EXPECT_GE(calls[i].first, calls[i - 1].first);
        EXPECT_EQ(calls[i].second, w.bytes);
      }
    }
    return w;
  }

  // A dense buffer holds exactly the written values in `dtype`.
  void expect_values(const Buffer& b, const WrittenTensor& t, DType dtype) {
    ASSERT_TRUE(b.valid()) << t.stored_name;
    EXPECT_EQ(b.dtype(), dtype) << t.stored_name;
    EXPECT_EQ(b.shape(), t.shape) << t.stored_name;
    ASSERT_EQ(t.values.size(), static_cast<std::size_t>(b.numel())) << t.stored_name;
    const std::vector<float> got = test::read_floats(b);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      bad += got[i] != mlxn::test::round_to(dtype, static_cast<float>(t.values[i]));
    }
    EXPECT_EQ(bad, 0u) << t.stored_name;
  }

  // l.apply on fresh inputs matches x . w^T (+ bias) in float64.
  void expect_apply(const Linear& l, const std::vector<double>& w, DType dtype,
                    const std::vector<double>* bias = nullptr) {
    const std::int64_t m = 3;
    const auto x = mlxn::test::round_to(
        dtype, mlxn::test::random_floats(rng_, static_cast<std::size_t>(m * l.in)));
    const auto y = test::run_linear(
        device(), dtype, x, m, l.in, l.out,
        [&](CommandEncoder& e, const Buffer& xb, const Buffer& out) { l.apply(e, xb, out); });
    EXPECT_LT(rel_l2(y, test::matmul_ref(x, w, m, l.out, l.in, bias)),
              mlxn::test::dtype_tolerance(dtype, 1e-5));
  }

  // The Linear bound from `t`: kind, shape, and its product with fresh inputs.
  void expect_linear(const Linear& l, const WrittenTensor& t, WeightKind kind, DType dtype) {
    SCOPED_TRACE(t.stored_name);
    EXPECT_EQ(l.kind, kind);
    EXPECT_EQ(l.out, t.shape.front());
    EXPECT_EQ(l.in, t.shape.back());
    if (kind == WeightKind::Dense) expect_values(l.dense, t, dtype);
    if (kind == WeightKind::MlxQuant) {
      EXPECT_EQ(l.quant.bits, t.storage.bits);
      EXPECT_EQ(l.quant.group_size, t.storage.group_size);
      EXPECT_EQ(l.quant.packed.shape(), (Shape{l.out, l.in * t.storage.bits / 32}));
      EXPECT_EQ(l.quant.scales.shape(), (Shape{l.out, l.in / t.storage.group_size}));
      EXPECT_EQ(l.quant.scales.dtype(), *io::to_dtype(t.storage.scale_dtype));
    }
    if (kind == WeightKind::Ggml) {
      EXPECT_EQ(l.ggml_type, t.storage.ggml);
      EXPECT_EQ(l.ggml.dtype(), DType::U8);
      EXPECT_EQ(l.ggml.to_vector<std::byte>(), t.raw);  // the blocks, untouched
    }
    expect_apply(l, t.values, dtype);
  }

  // The storage test::expect_gguf_storage expects on this backend; whether it is repacked.
  bool expect_gguf_storage(const Linear& l, GgmlType type) {
    return test::expect_gguf_storage(device().backend(), l, type);
  }

  // A GGUF projection stored as `t` (a type ops::ggml_matmul runs natively): stored as
  // expect_gguf_storage says -- the blocks untouched where it keeps them -- and applying as the
  // written values on fresh inputs (the MLX form is exact).
  void expect_gguf_linear(const Linear& l, const WrittenTensor& t, DType dtype) {
    SCOPED_TRACE(t.stored_name);
    EXPECT_EQ(l.out, t.shape.front());
    EXPECT_EQ(l.in, t.shape.back());
    if (!expect_gguf_storage(l, t.storage.ggml)) {
      EXPECT_EQ(l.ggml.to_vector<std::byte>(), t.raw);
    }
    expect_apply(l, t.values, dtype);
  }

  // `part` holds its weights (and scales and biases) in the storage of `whole`.
  static void expect_shares_storage(const Linear& part, const Linear& whole) {
    EXPECT_EQ(part.kind, whole.kind);
    switch (whole.kind) {
      case WeightKind::Dense:
        EXPECT_TRUE(part.dense.same_storage(whole.dense));
        break;
      case WeightKind::MlxQuant:
        EXPECT_TRUE(part.quant.packed.same_storage(whole.quant.packed));
        EXPECT_TRUE(part.quant.scales.same_storage(whole.quant.scales));
        EXPECT_TRUE(part.quant.biases.same_storage(whole.quant.biases));
        break;
      case WeightKind::Ggml:
        EXPECT_TRUE(part.ggml.same_storage(whole.ggml));
        break;
    }
  }

  // ExpertLinear::apply with every expert routed once matches the per-expert products.
  void expect_experts(const ExpertLinear& l, const std::vector<double>& w) {
    const std::int64_t m = 2, top_k = l.n_experts / 2;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(m * top_k));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      ids[i] = static_cast<std::int32_t>(ids.size() - 1 - i);
    }
    const auto x = mlxn::test::random_floats(rng_, static_cast<std::size_t>(m * l.in));
    Buffer xb = mlxn::test::upload(device(), x, DType::F32, {m, l.in});
    Buffer idb = device().alloc(DType::I32, {m, top_k});
    idb.write(ids);
    Buffer out = mlxn::test::poisoned(device(), DType::F32, {m, top_k, l.out});
    CommandEncoder enc = device().command_encoder();
    l.apply(enc, xb, idb, out);
    enc.commit_and_wait();
    std::vector<double> ref;
    for (std::int64_t t = 0; t < m; ++t) {
      const std::vector<float> xt(x.begin() + t * l.in, x.begin() + (t + 1) * l.in);
      for (std::int64_t s = 0; s < top_k; ++s) {
        const std::int64_t e = ids[static_cast<std::size_t>(t * top_k + s)];
        const auto y =
            test::matmul_ref(xt, test::rows_of(w, l.in, e * l.out, l.out), 1, l.out, l.in);
        ref.insert(ref.end(), y.begin(), y.end());
      }
    }
    EXPECT_LT(rel_l2(mlxn::test::download(out), ref), 1e-5);
  }

  // A new subdirectory per written model (a directory holds one model).
  std::filesystem::path fresh_dir() { return dir_ / ("m" + std::to_string(n_dirs_++)); }

  test::TempDir dir_;
  int n_dirs_ = 0;
  std::mt19937 rng_;
};

TEST_P(ModelWeightsTest, LlamaFloatSafetensorsBindDenseLinearsAndNorms) {
  TinyModel m = TinyModel::safetensors(config("llama"));
  m.storage = [](const io::ExpectedTensor& e) {
    return Storage::f(e.name.find("layers.1.") != std::string::npos ? TensorDType::F16
                                                                    : TensorDType::BF16);
  };
  const ModelWeights w = load(m, DType::F32);
  EXPECT_EQ(w.norm_weight, ops::NormWeight::Plain);
  EXPECT_FALSE(w.rope_interleaved);
  expect_values(w.embedding.dense, m.at("model.embed_tokens.weight"), DType::F32);
  EXPECT_FALSE(w.embedding.quant);
  expect_values(w.final_norm, m.at("model.norm.weight"), DType::F32);
  expect_linear(w.lm_head, m.at("lm_head.weight"), WeightKind::Dense, DType::F32);
  EXPECT_FALSE(w.lm_head.dense.same_storage(w.embedding.dense));
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& lw = w.layers[static_cast<std::size_t>(l)];
    expect_values(lw.attn_norm, m.at(p + "input_layernorm.weight"), DType::F32);
    expect_values(lw.ffn_norm, m.at(p + "post_attention_layernorm.weight"), DType::F32);
    EXPECT_FALSE(lw.post_attn_norm.valid());
    EXPECT_FALSE(lw.post_ffn_norm.valid());
    EXPECT_FALSE(lw.attn.q_norm.valid());
    EXPECT_FALSE(lw.moe);
    ASSERT_TRUE(lw.mlp);
    const std::string a = p + "self_attn.";
    expect_linear(lw.attn.q, m.at(a + "q_proj.weight"), WeightKind::Dense, DType::F32);
    expect_linear(lw.attn.k, m.at(a + "k_proj.weight"), WeightKind::Dense, DType::F32);
    expect_linear(lw.attn.v, m.at(a + "v_proj.weight"), WeightKind::Dense, DType::F32);
    expect_linear(lw.attn.o, m.at(a + "o_proj.weight"), WeightKind::Dense, DType::F32);
    EXPECT_FALSE(lw.attn.q.bias.valid());
    expect_linear(lw.mlp->gate, m.at(p + "mlp.gate_proj.weight"), WeightKind::Dense, DType::F32);
    expect_linear(lw.mlp->up, m.at(p + "mlp.up_proj.weight"), WeightKind::Dense, DType::F32);
    expect_linear(lw.mlp->down, m.at(p + "mlp.down_proj.weight"), WeightKind::Dense, DType::F32);
  }
}

TEST_P(ModelWeightsTest, FloatsConvertToTheComputeDtypeRoundingToNearestEven) {
  TinyModel m = TinyModel::safetensors(config("mistral", R"("tie_word_embeddings": true)"));
  m.storage = [](const io::ExpectedTensor&) { return Storage::f(TensorDType::F32); };
  for (DType dtype : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const ModelWeights w = load(m, dtype);
    expect_values(w.embedding.dense, m.at("model.embed_tokens.weight"), dtype);
    expect_values(w.layers[1].attn_norm, m.at("model.layers.1.input_layernorm.weight"), dtype);
    expect_values(w.layers[0].mlp->down.dense, m.at("model.layers.0.mlp.down_proj.weight"), dtype);
    // Tied: the head is the table itself.
    EXPECT_EQ(w.lm_head.kind, WeightKind::Dense);
    EXPECT_TRUE(w.lm_head.dense.same_storage(w.embedding.dense));
    EXPECT_EQ(w.lm_head.out, 96);
    EXPECT_EQ(w.lm_head.in, 64);
  }
}

TEST(WeightUploadTest, F64RoundsOnceToNearestEven) {
  // 1 + 2^-8 + 2^-40 lies just above the midpoint of two bf16 neighbours (1 and 1 + 2^-7): the
  // correct bf16 is 1 + 2^-7. Rounding to f32 first would land on the midpoint and tie to 1.
  const double above = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  const double below = 1.0 + std::ldexp(1.0, -8) - std::ldexp(1.0, -40);
  const double tie = 1.0 + std::ldexp(1.0, -8);
  const std::vector<double> v = {above, below, tie, -above, 3.0, 1e300, -1e-300};
  io::TensorView t{"t", TensorDType::F64, {7}, std::as_bytes(std::span(v))};
  Device cpu = Device::open(Backend::Cpu);
  for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    Buffer b = cpu.alloc(dtype, {7});
    detail::write_float(b, 0, t);
    const auto got = mlxn::test::download(b);
    if (dtype == DType::BF16) {
      const float step = 1.0f + 0x1p-7f;
      EXPECT_EQ(got[0], step);
      EXPECT_EQ(got[1], 1.0f);
      EXPECT_EQ(got[2], 1.0f);  // an exact tie goes to even
      EXPECT_EQ(got[3], -step);
      EXPECT_TRUE(std::isinf(got[5]));
    }
    if (dtype == DType::F16) {
      EXPECT_EQ(got[0], 1.0f + 0x1p-8f);  // representable in f16
      EXPECT_TRUE(std::isinf(got[5]));
    }
    EXPECT_EQ(got[4], 3.0f);
    EXPECT_EQ(got[6], 0.0f);
  }
}

TEST_P(ModelWeightsTest, MlxQuantizedTiedModelSharesTheEmbeddingWithTheHead) {
  TinyModel m = TinyModel::safetensors(config("llama", R"("tie_word_embeddings": true,
      "quantization": {"group_size": 32, "bits": 4,
                       "model.layers.1.mlp.down_proj": {"group_size": 64, "bits": 8},
                       "model.layers.1.self_attn.v_proj": {"group_size": 32, "bits": 3}})"));
  m.storage = test::as_config_says(m.config(), TensorDType::BF16);
  const ModelWeights w = load(m, DType::F32);
  ASSERT_TRUE(w.embedding.quant);
  EXPECT_FALSE(w.embedding.dense.valid());
  EXPECT_EQ(w.embedding.quant->bits, 4);
  EXPECT_EQ(w.embedding.quant->group_size, 32);
  EXPECT_EQ(w.embedding.quant->packed.shape(), (Shape{96, 8}));
  EXPECT_EQ(w.embedding.quant->scales.shape(), (Shape{96, 2}));
  EXPECT_EQ(w.embedding.quant->scales.dtype(), DType::BF16);  // as stored
  expect_linear(w.lm_head, m.at("model.embed_tokens.weight"), WeightKind::MlxQuant, DType::F32);
  EXPECT_TRUE(w.lm_head.quant.packed.same_storage(w.embedding.quant->packed));
  EXPECT_TRUE(w.lm_head.quant.scales.same_storage(w.embedding.quant->scales));
  EXPECT_TRUE(w.lm_head.quant.biases.same_storage(w.embedding.quant->biases));
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& lw = w.layers[static_cast<std::size_t>(l)];
    for (auto [lin, name] : {std::pair{&lw.attn.q, "self_attn.q_proj"},
                             {&lw.attn.k, "self_attn.k_proj"},
                             {&lw.attn.v, "self_attn.v_proj"},
                             {&lw.attn.o, "self_attn.o_proj"},
                             {&lw.mlp->gate, "mlp.gate_proj"},
                             {&lw.mlp->up, "mlp.up_proj"},
                             {&lw.mlp->down, "mlp.down_proj"}}) {
      expect_linear(*lin, m.at(p + name + ".weight"), WeightKind::MlxQuant, DType::F32);
    }
    expect_values(lw.attn_norm, m.at(p + "input_layernorm.weight"), DType::F32);
  }
  EXPECT_EQ(w.layers[1].mlp->down.quant.bits, 8);
  EXPECT_EQ(w.layers[1].attn.v.quant.bits, 3);
}

TEST_P(ModelWeightsTest, HuggingFaceExpertsAreStackedPerProjection) {
  TinyModel m = TinyModel::safetensors(config("qwen3_moe", R"("num_experts": 4,
      "num_experts_per_tok": 2, "moe_intermediate_size": 32, "mlp_only_layers": [0])"));
  m.storage = [](const io::ExpectedTensor&) { return Storage::f(TensorDType::F32); };
  const ModelWeights w = load(m, DType::F32);
  ASSERT_TRUE(w.layers[0].mlp);
  EXPECT_FALSE(w.layers[0].moe);
  ASSERT_TRUE(w.layers[1].moe);
  EXPECT_FALSE(w.layers[1].mlp);
  const MoeWeights& moe = *w.layers[1].moe;
  const std::string p = "model.layers.1.mlp.";
  expect_linear(moe.router, m.at(p + "gate.weight"), WeightKind::Dense, DType::F32);
  expect_values(w.layers[1].attn.q_norm, m.at("model.layers.1.self_attn.q_norm.weight"),
                DType::F32);
  expect_values(w.layers[1].attn.k_norm, m.at("model.layers.1.self_attn.k_norm.weight"),
                DType::F32);
  for (auto [el, proj] :
       {std::pair{&moe.gate, "gate_proj"}, {&moe.up, "up_proj"}, {&moe.down, "down_proj"}}) {
    SCOPED_TRACE(proj);
    EXPECT_EQ(el->kind, WeightKind::Dense);
    EXPECT_EQ(el->n_experts, 4);
    const Shape one = m.at(p + "experts.0." + proj + ".weight").shape;
    EXPECT_EQ(el->out, one[0]);
    EXPECT_EQ(el->in, one[1]);
    EXPECT_EQ(el->dense.shape(), (Shape{4, one[0], one[1]}));
    std::vector<double> stacked;
    for (int e = 0; e < 4; ++e) {
      const WrittenTensor& t = m.at(p + "experts." + std::to_string(e) + "." + proj + ".weight");
      // Expert e of the stack is exactly the per-expert tensor.
      const Buffer slice = el->dense.view(static_cast<std::size_t>(e) * t.values.size() * 4,
                                          t.values.size() * 4, DType::F32, t.shape);
      expect_values(slice, t, DType::F32);
      stacked.insert(stacked.end(), t.values.begin(), t.values.end());
    }
    expect_experts(*el, stacked);
  }
}

TEST_P(ModelWeightsTest, MlxSwitchMlpExpertsStayQuantized) {
  io::TensorNaming naming;
  naming.stacked_experts = true;
  TinyModel m = TinyModel::safetensors(config("qwen3_moe", R"("num_experts": 4,
      "num_experts_per_tok": 2, "moe_intermediate_size": 64,
      "quantization": {"group_size": 32, "bits": 4,
                       "model.layers.0.mlp.gate": {"group_size": 64, "bits": 8}})"),
                                       naming);
  m.storage = test::as_config_says(m.config(), TensorDType::BF16);
  const ModelWeights w = load(m, DType::F32);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
    ASSERT_TRUE(w.layers[static_cast<std::size_t>(l)].moe);
    const MoeWeights& moe = *w.layers[static_cast<std::size_t>(l)].moe;
    expect_linear(moe.router, m.at(p + "gate.weight"), WeightKind::MlxQuant, DType::F32);
    for (auto [el, proj] :
         {std::pair{&moe.gate, "gate_proj"}, {&moe.up, "up_proj"}, {&moe.down, "down_proj"}}) {
      SCOPED_TRACE(proj);
      const WrittenTensor& t = m.at(p + "switch_mlp." + proj + ".weight");
      EXPECT_EQ(el->kind, WeightKind::MlxQuant);
      EXPECT_EQ(el->n_experts, 4);
      EXPECT_EQ(el->out, t.shape[1]);
      EXPECT_EQ(el->in, t.shape[2]);
      EXPECT_EQ(el->quant.packed.shape(), (Shape{4, t.shape[1], t.shape[2] * 4 / 32}));
      EXPECT_EQ(el->quant.biases.shape(), (Shape{4, t.shape[1], t.shape[2] / 32}));
      expect_experts(*el, t.values);
    }
  }
  EXPECT_EQ(w.layers[0].moe->router.quant.bits, 8);
}

TEST_P(ModelWeightsTest, Phi3FusedProjectionsAreSplitIntoRows) {
  TinyModel m = TinyModel::safetensors(config("phi3"));
  m.storage = [](const io::ExpectedTensor& e) {
    return e.name.find("qkv_proj") != std::string::npos ? Storage::mlx(4, 32)
                                                        : Storage::f(TensorDType::BF16);
  };
  const ModelWeights w = load(m, DType::F32);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& lw = w.layers[static_cast<std::size_t>(l)];
    const WrittenTensor& qkv = m.at(p + "self_attn.qkv_proj.weight");
    const std::int64_t q = 4 * 16, kv = 2 * 16, h = 64;
    EXPECT_EQ(lw.attn.q.kind, WeightKind::MlxQuant);
    EXPECT_EQ(lw.attn.q.out, q);
    EXPECT_EQ(lw.attn.k.out, kv);
    EXPECT_EQ(lw.attn.v.out, kv);
    EXPECT_TRUE(lw.attn.k.quant.packed.same_storage(lw.attn.q.quant.packed));
    EXPECT_TRUE(lw.attn.v.quant.scales.same_storage(lw.attn.q.quant.scales));
    // Each part computes its rows of the fused product.
    expect_apply(lw.attn.q, test::rows_of(qkv.values, h, 0, q), DType::F32);
    expect_apply(lw.attn.k, test::rows_of(qkv.values, h, q, kv), DType::F32);
    expect_apply(lw.attn.v, test::rows_of(qkv.values, h, q + kv, kv), DType::F32);
    const WrittenTensor& gate_up = m.at(p + "mlp.gate_up_proj.weight");
    ASSERT_TRUE(lw.mlp);
    EXPECT_EQ(lw.mlp->gate.kind, WeightKind::Dense);
    EXPECT_EQ(lw.mlp->gate.dense.shape(), (Shape{128, h}));
    EXPECT_TRUE(lw.mlp->up.dense.same_storage(lw.mlp->gate.dense));
    expect_apply(lw.mlp->gate, test::rows_of(gate_up.values, h, 0, 128), DType::F32);
    expect_apply(lw.mlp->up, test::rows_of(gate_up.values, h, 128, 128), DType::F32);
    expect_linear(lw.mlp->down, m.at(p + "mlp.down_proj.weight"), WeightKind::Dense, DType::F32);
  }
}

TEST_P(ModelWeightsTest, Qwen2BiasesAreInTheComputeDtype) {
  TinyModel m = TinyModel::safetensors(config("qwen2"));
  m.storage = [](const io::ExpectedTensor& e) {
    return e.name.find("k_proj") != std::string::npos ? Storage::mlx(4, 32, TensorDType::F16)
                                                      : Storage::f(TensorDType::F32);
  };
  const DType dtype = DType::BF16;
  const ModelWeights w = load(m, dtype);
  for (int l = 0; l < 2; ++l) {
    const std::string a = "model.layers." + std::to_string(l) + ".self_attn.";
    const AttentionWeights& at = w.layers[static_cast<std::size_t>(l)].attn;
    for (auto [lin, name] : {std::pair{&at.q, "q_proj"}, {&at.k, "k_proj"}, {&at.v, "v_proj"}}) {
      const WrittenTensor& b = m.at(a + name + ".bias");
      expect_values(lin->bias, b, dtype);
      const auto bias =
          mlxn::test::round_to(dtype, std::vector<float>(b.values.begin(), b.values.end()));
      const std::vector<double> bd(bias.begin(), bias.end());
      const auto& wt = m.at(a + name + ".weight");
      std::vector<double> wv = wt.values;
      if (lin->kind == WeightKind::Dense) {
        for (double& v : wv) v = mlxn::test::round_to(dtype, static_cast<float>(v));
      }
      expect_apply(*lin, wv, dtype, &bd);
    }
    EXPECT_EQ(at.k.kind, WeightKind::MlxQuant);
    EXPECT_EQ(at.k.quant.scales.dtype(), DType::F16);
    EXPECT_FALSE(at.o.bias.valid());
  }
}

TEST_P(ModelWeightsTest, GemmaSafetensorsNormsAreOnePlus) {
  TinyModel m = TinyModel::safetensors(config("gemma2", R"("sliding_window": 8)"));
  const ModelWeights w = load(m, DType::F32);
  EXPECT_EQ(w.norm_weight, ops::NormWeight::OnePlus);
  EXPECT_FALSE(w.rope_interleaved);
  const std::string p = "model.layers.1.";
  const LayerWeights& lw = w.layers[1];
  expect_values(lw.attn_norm, m.at(p + "input_layernorm.weight"), DType::F32);
  expect_values(lw.post_attn_norm, m.at(p + "post_attention_layernorm.weight"), DType::F32);
  expect_values(lw.ffn_norm, m.at(p + "pre_feedforward_layernorm.weight"), DType::F32);
  expect_values(lw.post_ffn_norm, m.at(p + "post_feedforward_layernorm.weight"), DType::F32);
  EXPECT_TRUE(w.lm_head.dense.same_storage(w.embedding.dense));  // Gemma ties by default
}

TEST_P(ModelWeightsTest, GemmaGgufNormsArePlain) {
  TinyModel m = TinyModel::gguf(test::gguf_meta("gemma2", 1, 256, 512, 4, 2, 64), true);
  const ModelWeights w = load(m, DType::F32);
  EXPECT_EQ(w.norm_weight, ops::NormWeight::Plain);
  EXPECT_FALSE(w.rope_interleaved);
  expect_values(w.layers[0].post_attn_norm, m.at("model.layers.0.post_attention_layernorm.weight"),
                DType::F32);
  expect_values(w.layers[0].ffn_norm, m.at("model.layers.0.pre_feedforward_layernorm.weight"),
                DType::F32);
  expect_values(w.layers[0].post_ffn_norm, m.at("model.layers.0.post_feedforward_layernorm.weight"),
                DType::F32);
}

TEST_P(ModelWeightsTest, GgufLlamaKeepsNativeBlocksAndDequantizesTheRest) {
  TinyModel m = TinyModel::gguf(test::gguf_meta("llama", 2, 256, 512, 4, 2, 64), true);
  const std::map<std::string, GgmlType> types = {
      {"token_embd.weight", GgmlType::Q8_0},        {"blk.0.attn_q.weight", GgmlType::Q4_K},
      {"blk.0.attn_k.weight", GgmlType::Q4_0},      {"blk.0.attn_v.weight", GgmlType::Q6_K},
      {"blk.0.attn_output.weight", GgmlType::Q8_0}, {"blk.0.ffn_gate.weight", GgmlType::Q4_1},
      {"blk.0.ffn_up.weight", GgmlType::F16},       {"blk.0.ffn_down.weight", GgmlType::BF16},
      {"blk.0.attn_norm.weight", GgmlType::F16}};
  m.storage = [&](const io::ExpectedTensor& e) {
    const std::string name = io::gguf_tensor_name(e.name, io::Architecture::Llama);
    auto it = types.find(name);
    if (it != types.end()) return Storage::gg(it->second);
    return Storage::gg(e.shape.size() == 1 ? GgmlType::F32 : GgmlType::Q4_0);
  };
  const ModelWeights w = load(m, DType::F32);
  EXPECT_TRUE(w.rope_interleaved);  // llama.cpp permuted q/k
  EXPECT_EQ(w.norm_weight, ops::NormWeight::Plain);
  // The table is dequantized; the tied head runs the original Q8_0 -- its blocks on the CPU, the
  // same values repacked to 8-bit MLX affine form on CUDA.
  expect_values(w.embedding.dense, m.at("model.embed_tokens.weight"), DType::F32);
  expect_gguf_linear(w.lm_head, m.at("model.embed_tokens.weight"), DType::F32);
  // Q4_K and Q6_K stay in their blocks everywhere; Q4_0 and Q8_0 are repacked on CUDA.
  const LayerWeights& l0 = w.layers[0];
  const std::string p = "model.layers.0.";
  expect_gguf_linear(l0.attn.q, m.at(p + "self_attn.q_proj.weight"), DType::F32);
  expect_gguf_linear(l0.attn.k, m.at(p + "self_attn.k_proj.weight"), DType::F32);
  expect_gguf_linear(l0.attn.v, m.at(p + "self_attn.v_proj.weight"), DType::F32);
  expect_gguf_linear(l0.attn.o, m.at(p + "self_attn.o_proj.weight"), DType::F32);
  EXPECT_EQ(l0.attn.q.kind, WeightKind::Ggml);
  EXPECT_EQ(l0.attn.v.kind, WeightKind::Ggml);
  expect_linear(l0.mlp->gate, m.at(p + "mlp.gate_proj.weight"), WeightKind::Dense, DType::F32);
  expect_linear(l0.mlp->up, m.at(p + "mlp.up_proj.weight"), WeightKind::Dense, DType::F32);
  expect_linear(l0.mlp->down, m.at(p + "mlp.down_proj.weight"), WeightKind::Dense, DType::F32);
  expect_values(l0.attn_norm, m.at(p + "input_layernorm.weight"), DType::F32);
  expect_values(l0.ffn_norm, m.at(p + "post_attention_layernorm.weight"), DType::F32);
  // Layer 1 is Q4_0 throughout (q/k/v and gate/up fused; the parts are row views of it).
  const LayerWeights& l1 = w.layers[1];
  const std::string p1 = "model.layers.1.";
  for (auto [lin, name] : {std::pair{&l1.attn.q, "self_attn.q_proj"},
                           {&l1.attn.k, "self_attn.k_proj"},
                           {&l1.attn.v, "self_attn.v_proj"},
                           {&l1.attn.o, "self_attn.o_proj"},
                           {&l1.mlp->gate, "mlp.gate_proj"},
                           {&l1.mlp->up, "mlp.up_proj"},
                           {&l1.mlp->down, "mlp.down_proj"}}) {
    expect_gguf_linear(*lin, m.at(p1 + name + ".weight"), DType::F32);
  }
  // bf16 compute: dequantized tensors are rounded once from their exact values.
  const ModelWeights b = load(m, DType::BF16);
  expect_values(b.layers[0].mlp->gate.dense, m.at(p + "mlp.gate_proj.weight"), DType::BF16);
  expect_values(b.embedding.dense, m.at("model.embed_tokens.weight"), DType::BF16);
}

TEST_P(ModelWeightsTest, GgufExpertsStayInBlocksAndUntiedHeadIsBound) {
  io::GgufWriter meta = test::gguf_meta("qwen3moe", 1, 256, 512, 4, 2, 64);
  meta.add("qwen3moe.expert_count", std::uint32_t{4});
  meta.add("qwen3moe.expert_used_count", std::uint32_t{2});
  meta.add("qwen3moe.expert_feed_forward_length", std::uint32_t{256});
  TinyModel m = TinyModel::gguf(std::move(meta), false);
  m.storage = [](const io::ExpectedTensor& e) {
    if (e.name.find("switch_mlp.up_proj") != std::string::npos) return Storage::gg(GgmlType::F16);
    if (e.name == "lm_head.weight") return Storage::gg(GgmlType::Q6_K);
    return Storage::gg(e.shape.size() == 3 ? GgmlType::Q8_0 : GgmlType::F32);
  };
  const ModelWeights w = load(m, DType::F32);
  EXPECT_FALSE(w.rope_interleaved);
  expect_linear(w.lm_head, m.at("lm_head.weight"), WeightKind::Ggml, DType::F32);
  ASSERT_TRUE(w.layers[0].moe);
  const MoeWeights& moe = *w.layers[0].moe;
  const std::string p = "model.layers.0.mlp.";
  expect_linear(moe.router, m.at(p + "gate.weight"), WeightKind::Dense, DType::F32);
  const WrittenTensor& gate = m.at(p + "switch_mlp.gate_proj.weight");
  EXPECT_EQ(moe.gate.kind, WeightKind::Ggml);
  EXPECT_EQ(moe.gate.ggml_type, GgmlType::Q8_0);
  EXPECT_EQ(moe.gate.ggml.shape(), (Shape{4, 256, 272}));
  EXPECT_EQ(moe.gate.ggml.to_vector<std::byte>(), gate.raw);
  expect_experts(moe.gate, gate.values);
  EXPECT_EQ(moe.up.kind, WeightKind::Dense);  // f16 experts: dequantized to the compute dtype
  EXPECT_EQ(moe.up.dense.shape(), (Shape{4, 256, 256}));
  expect_experts(moe.up, m.at(p + "switch_mlp.up_proj.weight").values);
  expect_experts(moe.down, m.at(p + "switch_mlp.down_proj.weight").values);
  expect_values(w.layers[0].attn.q_norm, m.at("model.layers.0.self_attn.q_norm.weight"),
                DType::F32);
}

TEST_P(ModelWeightsTest, GgufPhi3FusedProjectionsAreSplit) {
  TinyModel m = TinyModel::gguf(test::gguf_meta("phi3", 1, 256, 256, 4, 2, 64), false);
  m.storage = [](const io::ExpectedTensor& e) {
    if (e.name.find("qkv_proj") != std::string::npos) return Storage::gg(GgmlType::Q8_0);
    if (e.name.find("gate_up_proj") != std::string::npos) return Storage::gg(GgmlType::Q4_K);
    return Storage::gg(e.shape.size() == 1 ? GgmlType::F32 : GgmlType::Q4_0);
  };
  const ModelWeights w = load(m, DType::F32);
  EXPECT_FALSE(w.rope_interleaved);  // phi3 GGUFs keep the neox order
  const LayerWeights& lw = w.layers[0];
  const WrittenTensor& qkv = m.at("model.layers.0.self_attn.qkv_proj.weight");
  const std::int64_t h = 256, q = 256, kv = 128;
  // The Q8_0 qkv_proj: its blocks on the CPU, 8-bit MLX affine on CUDA; the parts are row views.
  expect_gguf_linear(lw.attn.qkv, qkv, DType::F32);
  for (const Linear* part : {&lw.attn.q, &lw.attn.k, &lw.attn.v}) {
    expect_gguf_storage(*part, GgmlType::Q8_0);
    expect_shares_storage(*part, lw.attn.qkv);
  }
  EXPECT_EQ(lw.attn.q.out, q);
  EXPECT_EQ(lw.attn.k.out, kv);
  EXPECT_EQ(lw.attn.v.out, kv);
  expect_apply(lw.attn.q, test::rows_of(qkv.values, h, 0, q), DType::F32);
  expect_apply(lw.attn.k, test::rows_of(qkv.values, h, q, kv), DType::F32);
  expect_apply(lw.attn.v, test::rows_of(qkv.values, h, q + kv, kv), DType::F32);
  // Q4_0 (repacked to 4-bit MLX on CUDA).
  expect_gguf_linear(lw.attn.o, m.at("model.layers.0.self_attn.o_proj.weight"), DType::F32);
  expect_gguf_linear(lw.mlp->down, m.at("model.layers.0.mlp.down_proj.weight"), DType::F32);
  const WrittenTensor& gate_up = m.at("model.layers.0.mlp.gate_up_proj.weight");
  EXPECT_EQ(lw.mlp->gate.ggml_type, GgmlType::Q4_K);
  EXPECT_EQ(lw.mlp->up.out, 256);
  expect_apply(lw.mlp->gate, test::rows_of(gate_up.values, h, 0, 256), DType::F32);
  expect_apply(lw.mlp->up, test::rows_of(gate_up.values, h, 256, 256), DType::F32);
}

TEST_P(ModelWeightsTest, MissingOrMisshapenTensorsAreNamed) {
  {
    TinyModel m = TinyModel::safetensors(config("llama"));
    m.drop = {"model.layers.1.self_attn.k_proj.weight"};
    const io::ModelDir model = io::ModelDir::open(m.write(fresh_dir(), rng_));
    io::test::expect_error([&] { (void)load_model_weights(model, device(), DType::F32); },
                           ErrorKind::Format,
                           {"missing tensor 'model.layers.1.self_attn.k_proj.weight'"});
  }
  {
    TinyModel m = TinyModel::safetensors(config("llama"));
    m.reshape = {{"model.layers.0.mlp.up_proj.weight", Shape{128, 32}}};
    const io::ModelDir model = io::ModelDir::open(m.write(fresh_dir(), rng_));
    io::test::expect_error(
        [&] { (void)load_model_weights(model, device(), DType::F32); }, ErrorKind::Format,
        {"tensor 'model.layers.0.mlp.up_proj.weight'", "[128, 64]", "[128, 32]"});
  }
  {
    TinyModel m = TinyModel::gguf(test::gguf_meta("llama", 1, 256, 512, 4, 2, 64), true);
    m.drop = {"blk.0.ffn_up.weight"};
    const io::ModelDir model = io::ModelDir::open(m.write(fresh_dir(), rng_));
    io::test::expect_error([&] { (void)load_model_weights(model, device(), DType::F32); },
                           ErrorKind::Format,
                           {"model.gguf", "missing tensor 'blk.0.ffn_up.weight'"});
  }
}

TEST_P(ModelWeightsTest, UnloadableTensorsAndDtypesAreRejected) {
  // A GGML type with neither a matmul kernel nor a dequantizer.
  TinyModel m = TinyModel::gguf(test::gguf_meta("llama", 1, 256, 512, 4, 2, 64), true);
  ASSERT_FALSE(io::ggml_can_dequantize(GgmlType::IQ2_XXS));
  ASSERT_FALSE(ops::ggml_matmul_supports(GgmlType::IQ2_XXS));
  m.storage = [](const io::ExpectedTensor& e) {
    return Storage::gg(e.name.find("layers.0.mlp.down_proj") != std::string::npos
                           ? GgmlType::IQ2_XXS
                           : GgmlType::F32);
  };
  const io::ModelDir model = io::ModelDir::open(m.write(fresh_dir(), rng_));
  io::test::expect_error([&] { (void)load_model_weights(model, device(), DType::F32); },
                         ErrorKind::Unsupported,
                         {"model.gguf", "blk.0.ffn_down.weight", "iq2_xxs"});
  io::test::expect_error([&] { (void)load_model_weights(model, device(), DType::F64); },
                         ErrorKind::InvalidArgument, {"compute dtype", "f64"});
}

MLXN_INSTANTIATE_BACKENDS(ModelWeightsTest);

}  // namespace
}  // namespace mlxn::engine
