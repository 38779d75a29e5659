// Expected tensors per family and their validation against a model's files, dense or
// MLX-quantized (detected per module from a `.scales` tensor).
#include "mlxn/io/model_dir_tensors.h"

#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "io/model_dir_expected.h"
#include "mlxn/core/error.h"

namespace mlxn::io {

namespace {

using Lookup = std::unordered_map<std::string_view, const TensorView*>;

// Receives expected tensors one at a time, so validation can stop at the first missing one
// instead of materializing the list for an absurd (but in-range) config.
struct Sink {
  const std::function<void(ExpectedTensor)>& fn;
  void push_back(ExpectedTensor e) const { fn(std::move(e)); }
};

void add(const Sink& out, std::string name, Shape shape, bool quantizable) {
  out.push_back({std::move(name), std::move(shape), quantizable});
}

void add_linear(const Sink& out, const std::string& module, std::int64_t n_out, std::int64_t n_in,
                bool bias) {
  add(out, module + ".weight", {n_out, n_in}, true);
  if (bias) add(out, module + ".bias", {n_out}, false);
}

void add_attention(const Sink& out, const ModelConfig& c, const std::string& p) {
  const std::int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const std::string a = p + "self_attn.";
  if (c.arch == Architecture::Phi3) {
    add_linear(out, a + "qkv_proj", q + 2 * kv, c.hidden_size, c.attention_bias);
  } else {
    add_linear(out, a + "q_proj", q, c.hidden_size, c.attention_bias);
    add_linear(out, a + "k_proj", kv, c.hidden_size, c.attention_bias);
    add_linear(out, a + "v_proj", kv, c.hidden_size, c.attention_bias);
  }
  add_linear(out, a + "o_proj", c.hidden_size, q, c.attention_out_bias);
  if (c.qk_norm) {
    add(out, a + "q_norm.weight", {c.head_dim}, false);
    add(out, a + "k_norm.weight", {c.head_dim}, false);
  }
}

void add_mlp(const Sink& out, const ModelConfig& c, const TensorNaming& naming,
             const std::string& p, std::int64_t layer) {
  const std::string m = p + "mlp.";
  const std::int64_t h = c.hidden_size;
  if (c.is_moe_layer(layer)) {
    const std::int64_t e = c.n_experts, f = c.moe_intermediate_size;
    add(out, m + "gate.weight", {e, h}, true);  // the router
    if (naming.stacked_experts) {
      add(out, m + "switch_mlp.gate_proj.weight", {e, f, h}, true);
      add(out, m + "switch_mlp.up_proj.weight", {e, f, h}, true);
      add(out, m + "switch_mlp.down_proj.weight", {e, h, f}, true);
    } else {
      for (std::int64_t i = 0; i < e; ++i) {
        const std::string x = m + "experts." + std::to_string(i) + ".";
        add(out, x + "gate_proj.weight", {f, h}, true);
        add(out, x + "up_proj.weight", {f, h}, true);
        add(out, x + "down_proj.weight", {h, f}, true);
      }
    }
    return;
  }
  const std::int64_t f = c.intermediate_size;
  if (c.arch == Architecture::Phi3) {
    add_linear(out, m + "gate_up_proj", 2 * f, h, c.mlp_bias);
  } else {
    add_linear(out, m + "gate_proj", f, h, c.mlp_bias);
    add_linear(out, m + "up_proj", f, h, c.mlp_bias);
  }
  add_linear(out, m + "down_proj", h, f, c.mlp_bias);
}

[[noreturn]] void fail(ErrorKind kind, std::string_view source, const std::string& what) {
  throw Error(kind, std::string(source) + ": " + what);
}

void check_float(const TensorView& t, std::string_view source) {
  if (t.dtype != TensorDType::F32 && t.dtype != TensorDType::F16 && t.dtype != TensorDType::BF16) {
    fail(ErrorKind::Format, source,
         "tensor '" + t.name + "': expected a float dtype (F32, F16 or BF16), found " +
             std::string(tensor_dtype_name(t.dtype)));
  }
}

void check_shape(const TensorView& t, const Shape& expected, std::string_view source,
                 const std::string& note = "") {
  if (t.shape != expected) {
    fail(ErrorKind::Format, source,
         "tensor '" + t.name + "': expected shape " + shape_to_string(expected) + note +
             ", found " + shape_to_string(t.shape));
  }
}

const TensorView& need(const Lookup& lookup, const std::string& name, const Shape& shape,
                       std::string_view source, const std::string& why = "") {
  auto it = lookup.find(name);
  if (it == lookup.end()) {
    fail(ErrorKind::Format, source,
         "missing tensor '" + name + "' (expected shape " + shape_to_string(shape) + why + ")");
  }
  return *it->second;
}

// Quantization parameters of a module stored quantized: from the config, else from shapes.
QuantParams quant_params(const ModelConfig& c, const std::string& module, const TensorView& w,
                         const TensorView& scales, std::int64_t in, std::string_view source) {
  if (c.quantization) {
    auto p = c.quantization->for_module(module);
    if (!p) {
      fail(ErrorKind::QuantConfig, source,
           "module '" + module + "' has .scales but the quantization config marks it unquantized");
    }
    return *p;
  }
  // No config entry (an incomplete conversion): infer from the packed width and group count.
  QuantParams p{0, 0};
  if (!w.shape.empty() && !scales.shape.empty() && scales.shape.back() > 0 &&
      in % scales.shape.back() == 0 && (w.shape.back() * 32) % in == 0) {
    p.group_size = static_cast<int>(in / scales.shape.back());
    p.bits = static_cast<int>(w.shape.back() * 32 / in);
  }
  if (!quant_bits_supported(p.bits) || !quant_group_size_supported(p.group_size)) {
    fail(ErrorKind::QuantConfig, source,
         "module '" + module +
             "' is quantized but config.json has no quantization entry and "
             "its shapes " +
             shape_to_string(w.shape) + " / " + shape_to_string(scales.shape) +
             " imply no supported bits / group size");
  }
  return p;
}

TensorBinding bind_tensor(const ModelConfig& c, const ExpectedTensor& e, const Lookup& lookup,
                          std::unordered_set<std::string_view>& used, std::string_view source) {
  TensorBinding b{e, std::nullopt, TensorDType::F32, "", ""};
  const std::string module = e.name.substr(0, e.name.size() - 7);  // strip ".weight"
  auto scales_it = e.quantizable ? lookup.find(module + ".scales") : lookup.end();
  if (scales_it == lookup.end()) {
    const TensorView& t = need(lookup, e.name, e.shape, source);
    check_shape(t, e.shape, source);
    check_float(t, source);
    used.insert(t.name);
    b.dtype = t.dtype;
    b.stored_name = t.name;
    b.type_name = tensor_dtype_name(t.dtype);
    return b;
  }
  const TensorView& scales = *scales_it->second;
  const std::int64_t in = e.shape.back();
  const TensorView& w = need(lookup, e.name, e.shape, source, ", quantized");
  const QuantParams p = quant_params(c, module, w, scales, in, source);
  const std::string note = " (" + std::to_string(p.bits) + "-bit, group " +
                           std::to_string(p.group_size) + " packing of " +
                           shape_to_string(e.shape) + ")";
  if (in % p.group_size != 0 || (in * p.bits) % 32 != 0) {
    fail(ErrorKind::QuantConfig, source,
         "module '" + module + "': input size " + std::to_string(in) +
             " cannot be quantized with group size " + std::to_string(p.group_size));
  }
  Shape packed = e.shape, groups = e.shape;
  packed.back() = in * p.bits / 32;
  groups.back() = in / p.group_size;
  if (w.dtype != TensorDType::U32) {
    fail(ErrorKind::Format, source,
         "tensor '" + w.name + "': quantized weight must be U32, found " +
             std::string(tensor_dtype_name(w.dtype)));
  }
  check_shape(w, packed, source, note);
  check_shape(scales, groups, source, note);
  check_float(scales, source);
  const TensorView& biases = need(lookup, module + ".biases", groups, source, ", quantized");
  check_shape(biases, groups, source, note);
  check_float(biases, source);
  used.insert(w.name);
  used.insert(scales.name);
  used.insert(biases.name);
  b.quant = p;
  b.dtype = TensorDType::U32;
  b.stored_name = w.name;
  b.type_name = "U32";
  return b;
}

bool has_module(const Lookup& lookup, const std::string& module) {
  return lookup.count(module + ".weight") || lookup.count(module + ".scales");
}

}  // namespace

// Shared with the GGUF check (model_dir_gguf.cpp), which maps the names.
void visit_expected(const ModelConfig& c, const TensorNaming& naming,
                    const std::function<void(ExpectedTensor)>& fn) {
  const Sink out{fn};
  const bool gemma = c.arch == Architecture::Gemma2 || c.arch == Architecture::Gemma3;
  add(out, naming.body + "embed_tokens.weight", {c.vocab_size, c.hidden_size}, true);
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = naming.body + "layers." + std::to_string(l) + ".";
    add(out, p + "input_layernorm.weight", {c.hidden_size}, false);
    add_attention(out, c, p);
    add(out, p + "post_attention_layernorm.weight", {c.hidden_size}, false);
    if (gemma) {
      add(out, p + "pre_feedforward_layernorm.weight", {c.hidden_size}, false);
      add(out, p + "post_feedforward_layernorm.weight", {c.hidden_size}, false);
    }
    add_mlp(out, c, naming, p, l);
  }
  add(out, naming.body + "norm.weight", {c.hidden_size}, false);
  if (!c.tie_word_embeddings) add(out, naming.lm_head, {c.vocab_size, c.hidden_size}, true);
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c, const TensorNaming& naming) {
  if (c.arch == Architecture::Unknown) {
    throw Error(ErrorKind::Unsupported,
                "architecture '" + (c.model_type.empty() ? c.architecture_class : c.model_type) +
                    "' is not supported (supported: " + supported_architectures() + ")");
  }
  std::vector<ExpectedTensor> out;
  const std::function<void(ExpectedTensor)> collect = [&](ExpectedTensor e) {
    out.push_back(std::move(e));
  };
  visit_expected(c, naming, collect);
  return out;
}

TensorNaming detect_naming(const ModelConfig& config, std::span<const TensorView> tensors) {
  Lookup lookup;
  for (const TensorView& t : tensors) lookup.emplace(t.name, &t);
  TensorNaming n;
  for (const char* body : {"model.", "language_model.model.", "model.language_model."}) {
    if (has_module(lookup, std::string(body) + "embed_tokens")) {
      n.body = body;
      break;
    }
  }
  n.lm_head =
      n.body == "language_model.model." ? "language_model.lm_head.weight" : "lm_head.weight";
  if (config.n_experts > 0) {
    const std::string marker = ".mlp.switch_mlp.";
    for (const TensorView& t : tensors) {
      if (t.name.rfind(n.body, 0) == 0 && t.name.find(marker) != std::string::npos) {
        n.stacked_experts = true;
        break;
      }
    }
  }
  return n;
}

WeightCheck check_weights(const ModelConfig& config, std::span<const TensorView> tensors,
                          std::string_view source) {
  if (config.arch == Architecture::Unknown) {
    fail(ErrorKind::Unsupported, source,
         "architecture '" +
             (config.model_type.empty() ? config.architecture_class : config.model_type) +
             "' is not supported (supported: " + supported_architectures() + ")");
  }
  Lookup lookup;
  lookup.reserve(tensors.size());
  for (const TensorView& t : tensors) lookup.emplace(t.name, &t);
  WeightCheck check;
  check.naming = detect_naming(config, tensors);
  std::unordered_set<std::string_view> used;
  const std::function<void(ExpectedTensor)> check_one = [&](ExpectedTensor e) {
    check.bindings.push_back(bind_tensor(config, e, lookup, used, source));
  };
  visit_expected(config, check.naming, check_one);
  for (const TensorView& t : tensors) {
    if (!used.count(t.name)) check.unused.push_back(t.name);
  }
  return check;
}

}  // namespace mlxn::io
