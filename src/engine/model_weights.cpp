// load_model_weights: walks a family's decoder layout (embedding, layers, final norm, output
// head) over the validated tensor bindings and lets the file format's WeightSource upload each
// tensor. Projections that read one input (q/k/v, gate/up) are kept fused -- as Phi-3 stores
// them, or stacked at upload where the parts' storage allows (fused_projections.h) -- and split
// into zero-copy row views here, once, for both formats.
#include "mlxn/engine/model_weights.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fused_projections.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/error.h"
#include "mlxn/ops/elementwise.h"
#include "weight_source.h"

namespace mlxn::engine {

namespace {

using detail::LinearBinding;
using detail::TensorRole;
using detail::WeightSource;

// The transformer computes router logits in f32 (transformer.cpp, encode_moe); a dense router
// is kept in f32 for that (n_experts x hidden: a few MB at most; converted from the compute
// dtype, exact for checkpoints stored in bf16/f16). Quantized routers keep
// their blocks, their kernels take an f32 input as it is.
Linear f32_router(Linear router, Device& device) {
  if (router.kind != WeightKind::Dense || router.dense.dtype() == DType::F32) return router;
  Buffer f32 = device.alloc(DType::F32, router.dense.shape());
  CommandEncoder enc = device.command_encoder();
  ops::cast(enc, router.dense, f32);
  if (router.bias.valid()) {
    Buffer b = device.alloc(DType::F32, router.bias.shape());
    ops::cast(enc, router.bias, b);
    router.bias = b;
  }
  enc.commit_and_wait();
  router.dense = f32;
  return router;
}

bool is_gemma(io::Architecture arch) {
  return arch == io::Architecture::Gemma2 || arch == io::Architecture::Gemma3;
}

// Expected (Hugging Face) tensor name -> its binding in the file.
class Bindings {
 public:
  Bindings(const io::WeightCheck& check, std::string source) : source_(std::move(source)) {
    for (const io::TensorBinding& b : check.bindings) map_.emplace(b.expected.name, &b);
  }

  const io::TensorBinding* find(const std::string& name) const {
    auto it = map_.find(name);
    return it == map_.end() ? nullptr : it->second;
  }

  const io::TensorBinding& at(const std::string& name) const {
    const io::TensorBinding* b = find(name);
    if (!b) {
      // check_weights lists every tensor the layout below asks for; reaching this is a bug in
      // one of the two, reported rather than crashed on.
      throw Error(ErrorKind::Format, source_ + ": no binding for tensor '" + name + "'");
    }
    return *b;
  }

 private:
  std::string source_;
  std::unordered_map<std::string, const io::TensorBinding*> map_;
};

class LayoutLoader {
 public:
  LayoutLoader(const io::ModelDir& model, const io::WeightCheck& check, WeightSource& src)
      : model_(model),
        c_(model.config()),
        naming_(check.naming),
        bindings_(check, model.path().string()),
        src_(src) {}

  std::string embedding_name() const { return naming_.body + "embed_tokens.weight"; }

  TensorRole role(const io::TensorBinding& b) const {
    if (b.expected.name == embedding_name()) return TensorRole::Embedding;
    return b.expected.shape.size() == 1 ? TensorRole::Vector : TensorRole::Linear;
  }

  void load(ModelWeights& w) {
    const io::TensorBinding& emb = bindings_.at(embedding_name());
    w.embedding = src_.embedding(emb);
    w.layers.resize(static_cast<std::size_t>(c_.n_layers));
    for (std::int64_t l = 0; l < c_.n_layers; ++l) {
      load_layer(naming_.body + "layers." + std::to_string(l) + ".", l,
                 w.layers[static_cast<std::size_t>(l)]);
    }
    w.final_norm = vector(naming_.body + "norm.weight");
    if (c_.tie_word_embeddings) {
      w.lm_head = src_.tied_head(emb, w.embedding);
    } else {
      w.lm_head = src_.linear(bindings_.at(naming_.lm_head), nullptr);
    }
  }

 private:
  Buffer vector(const std::string& name) { return src_.vector(bindings_.at(name)); }

  Linear linear(const std::string& module) {
    return src_.linear(bindings_.at(module + ".weight"), bindings_.find(module + ".bias"));
  }

  LinearBinding binding(const std::string& module) const {
    return {&bindings_.at(module + ".weight"), bindings_.find(module + ".bias")};
  }

  // Rows of a fused projection; GGML kernels need each part to start 4-byte aligned, which
  // holds for every real model (row bytes of 128-multiple widths) but is checked here, at load.
  Linear part(const Linear& fused, std::int64_t row0, std::int64_t rows, const std::string& name) {
    Linear p = fused.rows(row0, rows);
    if (p.kind == WeightKind::Ggml && p.ggml.offset() % 4 != 0) {
      throw Error(ErrorKind::Unsupported, model_.path().string() + ": tensor '" + name +
                                              "': GGML rows of " +
                                              std::to_string(fused.ggml.shape().back()) +
                                              " bytes cannot be split at 4-byte aligned offsets");
    }
    return p;
  }

  void load_layer(const std::string& p, std::int64_t layer, LayerWeights& lw) {
    lw.attn_norm = vector(p + "input_layernorm.weight");
    if (is_gemma(c_.arch)) {
      lw.post_attn_norm = vector(p + "post_attention_layernorm.weight");
      lw.ffn_norm = vector(p + "pre_feedforward_layernorm.weight");
      lw.post_ffn_norm = vector(p + "post_feedforward_layernorm.weight");
    } else {
      lw.ffn_norm = vector(p + "post_attention_layernorm.weight");
    }
    load_attention(p + "self_attn.", lw.attn);
    if (c_.is_moe_layer(layer)) {
      lw.moe = load_moe(p + "mlp.");
    } else {
      lw.mlp = load_mlp(p + "mlp.");
    }
  }

  void load_attention(const std::string& a, AttentionWeights& at) {
    const std::int64_t q_rows = c_.n_heads * c_.head_dim, kv_rows = c_.n_kv_heads * c_.head_dim;
    if (c_.arch == io::Architecture::Phi3) {
      const std::string name = bindings_.at(a + "qkv_proj.weight").stored_name;
      at.qkv = linear(a + "qkv_proj");
      at.q = part(at.qkv, 0, q_rows, name);
      at.k = part(at.qkv, q_rows, kv_rows, name);
      at.v = part(at.qkv, q_rows + kv_rows, kv_rows, name);
    } else {
      const LinearBinding parts[] = {binding(a + "q_proj"), binding(a + "k_proj"),
                                     binding(a + "v_proj")};
      detail::FusedProjections p = detail::load_projections(src_, parts);
      at.qkv = std::move(p.fused);
      at.q = std::move(p.parts[0]);
      at.k = std::move(p.parts[1]);
      at.v = std::move(p.parts[2]);
    }
    at.o = linear(a + "o_proj");
    if (c_.qk_norm) {
      at.q_norm = vector(a + "q_norm.weight");
      at.k_norm = vector(a + "k_norm.weight");
    }
  }

  MlpWeights load_mlp(const std::string& m) {
    MlpWeights mlp;
    if (c_.arch == io::Architecture::Phi3) {
      // gate_up_proj holds the gate rows first, then the up rows (transformers' chunk(2)).
      const std::string name = bindings_.at(m + "gate_up_proj.weight").stored_name;
      mlp.gate_up = linear(m + "gate_up_proj");
      const std::int64_t f = c_.intermediate_size;
      mlp.gate = part(mlp.gate_up, 0, f, name);
      mlp.up = part(mlp.gate_up, f, f, name);
    } else {
      const LinearBinding parts[] = {binding(m + "gate_proj"), binding(m + "up_proj")};
      detail::FusedProjections p = detail::load_projections(src_, parts);
      mlp.gate_up = std::move(p.fused);
      mlp.gate = std::move(p.parts[0]);
      mlp.up = std::move(p.parts[1]);
    }
    mlp.down = linear(m + "down_proj");
    return mlp;
  }

  MoeWeights load_moe(const std::string& m) {
    MoeWeights moe;
    moe.router = linear(m + "gate");
    if (naming_.stacked_experts) {
      moe.gate = src_.stacked_experts(bindings_.at(m + "switch_mlp.gate_proj.weight"));
      moe.up = src_.stacked_experts(bindings_.at(m + "switch_mlp.up_proj.weight"));
      moe.down = src_.stacked_experts(bindings_.at(m + "switch_mlp.down_proj.weight"));
      return moe;
    }
    moe.gate = per_expert(m, "gate_proj");
    moe.up = per_expert(m, "up_proj");
    moe.down = per_expert(m, "down_proj");
    return moe;
  }

  ExpertLinear per_expert(const std::string& m, const std::string& proj) {
    std::vector<const io::TensorBinding*> experts;
    experts.reserve(static_cast<std::size_t>(c_.n_experts));
    for (std::int64_t e = 0; e < c_.n_experts; ++e) {
      experts.push_back(&bindings_.at(m + "experts." + std::to_string(e) + "." + proj + ".weight"));
    }
    return src_.per_expert(experts);
  }

  const io::ModelDir& model_;
  const io::ModelConfig& c_;
  const io::TensorNaming& naming_;
  Bindings bindings_;
  WeightSource& src_;
};

}  // namespace

ModelWeights load_model_weights(const io::ModelDir& model, Device& device, DType compute_dtype,
                                const LoadProgress& progress) {
  if (compute_dtype != DType::F32 && compute_dtype != DType::F16 && compute_dtype != DType::BF16) {
    throw Error(ErrorKind::InvalidArgument,
                "load_model_weights: compute dtype must be f32, f16 or bf16, got " +
                    std::string(dtype_name(compute_dtype)));
  }
  const io::WeightCheck check = model.check_weights();
  const io::ModelConfig& c = model.config();
  const bool gguf = model.format() == io::ModelFormat::Gguf;

  detail::Uploader uploader(device, compute_dtype, progress);
  std::unique_ptr<WeightSource> src =
      gguf ? detail::make_gguf_source(*model.gguf(), uploader)
           : detail::make_safetensors_source(*model.safetensors(), uploader);
  LayoutLoader loader(model, check, *src);

  std::int64_t total = 0;
  for (const io::TensorBinding& b : check.bindings) {
    total += src->device_bytes(b, loader.role(b));
    if (c.tie_word_embeddings && b.expected.name == loader.embedding_name()) {
      total += src->tied_head_bytes(b);
    }
  }
  uploader.start(total);

  ModelWeights w;
  w.compute_dtype = compute_dtype;
  // Gemma's checkpoints store w - 1; llama.cpp's converter adds the 1 before writing GGUF.
  w.norm_weight = is_gemma(c.arch) && !gguf ? ops::NormWeight::OnePlus : ops::NormWeight::Plain;
  // llama.cpp permutes q_proj/k_proj rows of "llama" GGUFs (Mistral included) into GGML's
  // interleaved rotary order; other architectures keep the Hugging Face (neox) order.
  w.rope_interleaved =
      gguf && (c.arch == io::Architecture::Llama || c.arch == io::Architecture::Mistral);
  loader.load(w);
  w.bytes = uploader.done();
  for (LayerWeights& layer : w.layers) {
    if (!layer.moe) continue;
    const std::int64_t before =
        layer.moe->router.dense.valid() ? layer.moe->router.dense.size_bytes() : 0;
    layer.moe->router = f32_router(std::move(layer.moe->router), device);
    if (layer.moe->router.dense.valid()) {
      w.bytes += static_cast<std::int64_t>(layer.moe->router.dense.size_bytes()) - before;
    }
  }
  return w;
}

}  // namespace mlxn::engine
