// GGUF tensor validation: the family's expected tensors under llama.cpp's names and shapes.
#include "mlxn/io/model_dir_gguf.h"

#include <string>
#include <unordered_set>

#include "io/model_dir_expected.h"
#include "mlxn/core/error.h"

namespace mlxn::io {

namespace {

// Module suffix (after "model.layers.N.") -> GGUF name (after "blk.N."), weight and bias alike.
struct NameMap {
  std::string_view hf;
  std::string_view gguf;
};

constexpr NameMap kLayerNames[] = {
    {"input_layernorm", "attn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.qkv_proj", "attn_qkv"},
    {"self_attn.o_proj", "attn_output"},
    {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.gate_up_proj", "ffn_up"},  // Phi-3: llama.cpp keeps the fused [2 * ffn, hidden]
    {"mlp.down_proj", "ffn_down"},
    {"mlp.gate", "ffn_gate_inp"},
    {"mlp.switch_mlp.gate_proj", "ffn_gate_exps"},
    {"mlp.switch_mlp.up_proj", "ffn_up_exps"},
    {"mlp.switch_mlp.down_proj", "ffn_down_exps"},
    {"post_feedforward_layernorm", "post_ffw_norm"},
};

}  // namespace

std::string gguf_tensor_name(std::string_view hf, Architecture arch) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view layers = "model.layers.";
  if (hf.substr(0, layers.size()) != layers) return "";
  std::string_view rest = hf.substr(layers.size());
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return "";
  const std::string_view index = rest.substr(0, dot);
  rest = rest.substr(dot + 1);
  const auto last = rest.rfind('.');
  if (last == std::string_view::npos) return "";
  const std::string_view module = rest.substr(0, last), suffix = rest.substr(last);
  const bool gemma = arch == Architecture::Gemma2 || arch == Architecture::Gemma3;
  std::string_view mapped;
  // Gemma's four norms: the one after attention is post_attention_norm, the one before the
  // MLP takes the ffn_norm name other families use for post_attention_layernorm.
  if (module == "post_attention_layernorm") {
    mapped = gemma ? "post_attention_norm" : "ffn_norm";
  } else if (module == "pre_feedforward_layernorm") {
    mapped = "ffn_norm";
  } else {
    for (const NameMap& m : kLayerNames) {
      if (m.hf == module) mapped = m.gguf;
    }
  }
  if (mapped.empty()) return "";
  return "blk." + std::string(index) + "." + std::string(mapped) + std::string(suffix);
}

WeightCheck check_gguf_weights(const ModelConfig& config, const GgufFile& file) {
  if (config.arch == Architecture::Unknown) {
    throw Error(ErrorKind::Unsupported,
                file.name() + ": architecture '" + config.model_type +
                    "' is not supported (supported: " + supported_architectures() + ")");
  }
  WeightCheck check;
  check.naming.stacked_experts = true;  // GGUF always stacks experts
  std::unordered_set<std::string> used;
  visit_expected(config, check.naming, [&](ExpectedTensor e) {
    const std::string name = gguf_tensor_name(e.name, config.arch);
    if (name.empty()) {
      throw Error(ErrorKind::Unsupported,
                  file.name() + ": no GGUF name known for tensor '" + e.name + "'");
    }
    const GgufTensorInfo* t = file.find_tensor(name);
    if (!t) {
      throw Error(ErrorKind::Format, file.name() + ": missing tensor '" + name +
                                         "' (expected shape " + shape_to_string(e.shape) + ")");
    }
    const Shape shape = t->shape();
    if (shape != e.shape) {
      throw Error(ErrorKind::Format, file.name() + ": tensor '" + name + "': expected shape " +
                                         shape_to_string(e.shape) + ", found " +
                                         shape_to_string(shape));
    }
    used.insert(name);
    TensorBinding b{std::move(e), std::nullopt, TensorDType::U8, name, ggml_type_name(t->type)};
    check.bindings.push_back(std::move(b));
  });
  for (const GgufTensorInfo& t : file.tensors()) {
    if (!used.count(t.name)) check.unused.push_back(t.name);
  }
  return check;
}

}  // namespace mlxn::io
