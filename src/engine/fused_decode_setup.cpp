// fused_decode_problem and setup_fused_decode (fused_decode_setup.h).
//
// Memory: the fused step reads each weight's scales and biases in the order its units stream the
// codes (ops::fused_decode_scales), a second copy next to the row-major scales the per-op path
// (prefill, all-logits calls) still reads: n k / 32 bf16 for an [n, k] 4-bit weight, 1/8 of its
// codes' bytes -- about 470 MB at Llama-3-8B. The plan itself adds a small table and workspace.
#include "fused_decode_setup.h"

#include <string>
#include <utility>
#include <vector>

#include "decode_tiles.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/error.h"
#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine::detail {
namespace {

std::string layer_name(std::size_t layer) {
  return "layer " + std::to_string(layer);
}

// Why one streamed weight does not fit ("" when it does). `where` prefixes the reason.
std::string weight_problem(const std::string& where, const Linear& l) {
  if (!l.valid()) return where + ": missing";
  if (l.kind != WeightKind::MlxQuant) return where + ": not MLX-quantized";
  if (l.bias.valid()) return where + ": has a bias";
  std::string problem = ops::fused_decode_weight_problem(l.quant);
  if (problem.empty()) return "";
  // Tiling is a separate load-time pass (ModelOptions::decode_tiles); name it when it is what is
  // missing rather than the shape.
  if (l.quant.layout == ops::QuantLayout::Rows && ops::decode_tiles_fit(l.quant)) {
    return where + ": weights in row order, not tiled for decode";
  }
  return where + ": " + problem;
}

std::string norm_problem(const std::string& where, const Buffer& norm) {
  if (!norm.valid()) return where + ": missing";
  if (norm.dtype() != DType::BF16) return where + ": not bf16";
  return "";
}

std::string features_problem(const BlockFeatures& f, const ModelWeights& w) {
  if (f.moe) return "mixture-of-experts layers";
  if (f.sandwich_norms) return "sandwich norms";
  if (f.qk_norm) return "qk-norm";
  if (f.activation != FfnActivation::Silu) return "activation is not SiLU";
  if (w.norm_weight != ops::NormWeight::Plain) return "one-plus norm weights";
  if (f.attn_softcap > 0.0f) return "attention softcap";
  if (f.final_softcap > 0.0f) return "final logit softcap";
  if (f.rope_layout != ops::RopeLayout::Neox) return "interleaved RoPE pairs";
  return "";
}

std::string shape_problem(const io::ModelConfig& c, const BlockFeatures& f) {
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    if (c.is_moe_layer(l)) return layer_name(static_cast<std::size_t>(l)) + ": mixture of experts";
    if (c.layer_type(l) != io::AttentionKind::Full) {
      return layer_name(static_cast<std::size_t>(l)) + ": sliding-window attention";
    }
  }
  if (c.head_dim != ops::kFusedDecodeHeadDim) {
    return "head_dim " + std::to_string(c.head_dim) + " (needs " +
           std::to_string(ops::kFusedDecodeHeadDim) + ")";
  }
  if (f.rope_global.rotary_dim != c.head_dim) {
    return "partial rotary (" + std::to_string(f.rope_global.rotary_dim) + " of " +
           std::to_string(c.head_dim) + " dims)";
  }
  if (c.n_kv_heads < 1 || c.n_heads % c.n_kv_heads != 0) {
    return std::to_string(c.n_heads) + " heads do not split into " + std::to_string(c.n_kv_heads) +
           " kv heads";
  }
  if (c.n_heads / c.n_kv_heads > ops::kFusedDecodeMaxGroup) {
    return "gqa group of " + std::to_string(c.n_heads / c.n_kv_heads) + " heads (at most " +
           std::to_string(ops::kFusedDecodeMaxGroup) + ")";
  }
  return "";
}

std::string layer_problem(std::size_t index, const LayerWeights& l) {
  const std::string where = layer_name(index);
  if (!l.mlp || l.moe) return where + ": no dense MLP";
  const AttentionWeights& a = l.attn;
  const MlpWeights& m = *l.mlp;
  if (!a.qkv.valid()) return where + ": no fused q/k/v projection";
  if (!m.gate_up.valid()) return where + ": no fused gate/up projection";
  // The loaders keep a fused projection's biases on its parts (decode_tiles.cpp does too).
  const std::pair<const char*, const Linear*> parts[] = {
      {"q/k/v", &a.qkv},       {"q", &a.q},       {"k", &a.k},   {"v", &a.v},      {"o", &a.o},
      {"gate/up", &m.gate_up}, {"gate", &m.gate}, {"up", &m.up}, {"down", &m.down}};
  for (const auto& [name, linear] : parts) {
    if (linear->bias.valid()) return where + ": the " + name + " projection has a bias";
  }
  const std::pair<const char*, const Linear*> streamed[] = {
      {"qkv", &a.qkv}, {"o", &a.o}, {"gate_up", &m.gate_up}, {"down", &m.down}};
  for (const auto& [name, linear] : streamed) {
    if (std::string p = weight_problem(where + " " + name, *linear); !p.empty()) return p;
  }
  if (std::string p = norm_problem(where + " attn_norm", l.attn_norm); !p.empty()) return p;
  return norm_problem(where + " ffn_norm", l.ffn_norm);
}

// A streamed weight with its unit-ordered scales queued on `enc`.
ops::FusedDecodeMatrix unit_ordered(CommandEncoder& enc, Device& device, const Linear& l) {
  ops::FusedDecodeMatrix m;
  m.weight = l.quant;
  m.unit_scales = device.alloc(DType::BF16, {ops::fused_decode_scales_elems(l.out, l.in)});
  ops::fused_decode_scales(enc, l.quant, m.unit_scales);
  return m;
}

}  // namespace

std::string fused_decode_problem(const FusedDecodeModel& m) {
  if (m.backend != Backend::Cuda) {
    return m.backend == Backend::Cpu ? "backend is CPU" : "backend is not CUDA";
  }
  if (m.dtype != DType::BF16) {
    return "compute dtype is " + std::string(dtype_name(m.dtype)) + " (needs bf16)";
  }
  if (m.cache_dtype != DType::BF16) {
    return "cache dtype is " + std::string(dtype_name(m.cache_dtype)) + " (needs bf16)";
  }
  if (std::string p = features_problem(m.features, m.weights); !p.empty()) return p;
  if (std::string p = shape_problem(m.config, m.features); !p.empty()) return p;
  for (std::size_t i = 0; i < m.weights.layers.size(); ++i) {
    if (std::string p = layer_problem(i, m.weights.layers[i]); !p.empty()) return p;
  }
  if (std::string p = norm_problem("final_norm", m.weights.final_norm); !p.empty()) return p;
  // A tied head is the embedding table, which keeps the row order for the lookup.
  if (head_tied_to_embedding(m.weights)) return "head: tied to the embedding table";
  return weight_problem("head", m.weights.lm_head);
}

FusedDecodeSetup setup_fused_decode(const FusedDecodeModel& m, const KvCache& cache, Device& device,
                                    ops::FusedDecodeInputs inputs) {
  FusedDecodeSetup out;
  out.reason = fused_decode_problem(m);
  if (!out.reason.empty()) return out;
  const io::ModelConfig& c = m.config;
  ops::FusedDecodeShape shape;
  shape.hidden = c.hidden_size;
  shape.n_heads = c.n_heads;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim;
  shape.intermediate = c.intermediate_size;
  shape.vocab = c.vocab_size;
  shape.rms_eps = static_cast<float>(c.rms_norm_eps);
  shape.rope_layout = m.features.rope_layout;
  shape.inputs = inputs;
  try {
    std::vector<ops::FusedDecodeLayer> layers;
    layers.reserve(m.weights.layers.size());
    for (std::size_t i = 0; i < m.weights.layers.size(); ++i) {
      const LayerWeights& l = m.weights.layers[i];
      const LayerCache& kv = cache.layer(static_cast<std::int64_t>(i));
      // One command buffer a layer, waited for: a failure names its layer, and nothing stays
      // queued if a later allocation fails.
      CommandEncoder enc = device.command_encoder();
      ops::FusedDecodeLayer& f = layers.emplace_back();
      f.qkv = unit_ordered(enc, device, l.attn.qkv);
      f.o = unit_ordered(enc, device, l.attn.o);
      f.gate_up = unit_ordered(enc, device, l.mlp->gate_up);
      f.down = unit_ordered(enc, device, l.mlp->down);
      enc.commit_and_wait();
      f.attn_norm = l.attn_norm;
      f.ffn_norm = l.ffn_norm;
      f.k_cache = kv.k;
      f.v_cache = kv.v;
    }
    CommandEncoder enc = device.command_encoder();
    ops::FusedDecodeMatrix head = unit_ordered(enc, device, m.weights.lm_head);
    enc.commit_and_wait();
    out.plan = ops::make_fused_decode_plan(device, shape, std::move(layers), std::move(head),
                                           m.weights.final_norm);
  } catch (const Error& e) {
    // The fast path must never make loading fail: without room for it, or where the op refuses
    // what the checks above let through, the model decodes op by op.
    if (e.kind() == ErrorKind::Allocation) {
      out.reason = std::string("no device memory for it: ") + e.what();
    } else if (e.kind() == ErrorKind::Unsupported || e.kind() == ErrorKind::InvalidArgument) {
      out.reason = e.what();  // a shape the checks above let through (the op names it)
    } else {
      throw;
    }
    out.plan = {};
  }
  return out;
}

}  // namespace mlxn::engine::detail
