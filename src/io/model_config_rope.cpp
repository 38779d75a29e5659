// RoPE settings from config.json in both transformers forms into RopeConfig.
#include "io/model_config_rope.h"

#include <cmath>
#include <string>

namespace mlxn::io::detail {

namespace {

using L = ModelConfigLimits;

RopeType parse_rope_type(const JsonFields& o, std::string_view key, const std::string& name) {
  if (name == "default") return RopeType::Default;
  if (name == "linear") return RopeType::Linear;
  if (name == "dynamic") return RopeType::Dynamic;
  if (name == "yarn") return RopeType::Yarn;
  if (name == "llama3") return RopeType::Llama3;
  // "su" is Phi-3's original name for LongRoPE.
  if (name == "longrope" || name == "su") return RopeType::LongRope;
  o.fail(key, "unsupported rope type '" + name +
                  "' (expected default, linear, dynamic, yarn, llama3 or longrope)");
}

std::vector<double> read_factors(const JsonFields& o, std::string_view key) {
  const Json* arr = o.get_array(key);
  std::vector<double> v;
  if (!arr) return v;
  if (arr->size() > static_cast<std::size_t>(L::kMaxHeadDim)) o.fail(key, "too many entries");
  v.reserve(arr->size());
  for (const Json& e : *arr) v.push_back(o.to_double(e, key, 1e-6, 1e9));
  return v;
}

// Applies one rope object (a 4.x rope_scaling or a 5.x rope_parameters entry) over `base`.
RopeConfig parse_rope_object(const JsonFields& o, RopeConfig base, const ModelConfig& c) {
  RopeConfig r = std::move(base);
  std::string type_key = "rope_type";
  std::optional<std::string> type = o.get_string("rope_type");
  if (!type) {
    type = o.get_string("type");
    type_key = "type";
  }
  r.type = type ? parse_rope_type(o, type_key, *type) : RopeType::Default;
  if (auto t = o.get_double("rope_theta", 1e-9, 1e30)) r.theta = *t;
  const bool needs_factor = r.type == RopeType::Linear || r.type == RopeType::Dynamic ||
                            r.type == RopeType::Yarn || r.type == RopeType::Llama3;
  if (auto f = o.get_double("factor", 1e-9, 1e9)) {
    r.factor = *f;
  } else if (needs_factor) {
    o.fail("factor", std::string("required for rope type ") + std::string(rope_type_name(r.type)));
  }
  if (auto v = o.get_double("low_freq_factor", 1e-9, 1e9)) r.low_freq_factor = *v;
  if (auto v = o.get_double("high_freq_factor", 1e-9, 1e9)) r.high_freq_factor = *v;
  if (auto v = o.get_int("original_max_position_embeddings", 1, L::kMaxPositions)) {
    r.original_max_position_embeddings = *v;
  }
  if (auto v = o.get_double("attention_factor", 0.0, 1e9)) r.attention_factor = *v;
  if (auto v = o.get_double("beta_fast", 0.0, 1e9)) r.beta_fast = *v;
  if (auto v = o.get_double("beta_slow", 0.0, 1e9)) r.beta_slow = *v;
  if (auto v = o.get_double("partial_rotary_factor", 1e-9, 1.0)) r.partial_rotary_factor = *v;
  if (r.type == RopeType::LongRope) {
    r.short_factor = read_factors(o, "short_factor");
    r.long_factor = read_factors(o, "long_factor");
    if (r.short_factor.empty()) o.fail("short_factor", "required for rope type longrope");
    if (r.long_factor.empty()) o.fail("long_factor", "required for rope type longrope");
    // transformers derives LongRoPE's factor from the context extension when not given.
    if (!o.has("factor") && r.original_max_position_embeddings > 0 &&
        c.max_position_embeddings > r.original_max_position_embeddings) {
      r.factor = static_cast<double>(c.max_position_embeddings) /
                 static_cast<double>(r.original_max_position_embeddings);
    }
  }
  if (r.type == RopeType::Yarn && r.original_max_position_embeddings == 0) {
    r.original_max_position_embeddings = c.max_position_embeddings;
  }
  return r;
}

bool is_layer_type_key(std::string_view k) {
  return k == "full_attention" || k == "sliding_attention";
}

}  // namespace

void read_rope(ModelConfig& c, const JsonFields& text, const JsonFields& top,
               double default_theta) {
  RopeConfig base;
  base.theta = text.get_double("rope_theta", 1e-9, 1e30)
                   .value_or(top.get_double("rope_theta", 1e-9, 1e30).value_or(default_theta));
  base.partial_rotary_factor = text.get_double("partial_rotary_factor", 1e-9, 1.0).value_or(1.0);
  base.original_max_position_embeddings =
      text.get_int("original_max_position_embeddings", 1, L::kMaxPositions).value_or(0);

  if (const Json* params = text.get_object("rope_parameters")) {
    // transformers 5.x: either one rope object or one per layer type.
    bool per_type = false;
    for (const auto& [k, v] : params->items()) {
      if (is_layer_type_key(k) && v.is_object()) per_type = true;
    }
    const std::string prefix = text.prefix() + "rope_parameters.";
    if (per_type) {
      for (const auto& [k, v] : params->items()) {
        if (!is_layer_type_key(k)) {
          JsonFields(*params, text.source(), prefix)
              .fail(k,
                    "unexpected key in per-layer-type "
                    "rope_parameters");
        }
      }
      const Json* full =
          params->contains("full_attention") ? &(*params)["full_attention"] : nullptr;
      const Json* slide =
          params->contains("sliding_attention") ? &(*params)["sliding_attention"] : nullptr;
      if (full) {
        c.rope = parse_rope_object(JsonFields(*full, text.source(), prefix + "full_attention."),
                                   base, c);
      } else {
        c.rope = base;
      }
      c.rope_local =
          slide ? parse_rope_object(
                      JsonFields(*slide, text.source(), prefix + "sliding_attention."), base, c)
                : c.rope;
    } else {
      c.rope = parse_rope_object(JsonFields(*params, text.source(), prefix), base, c);
      c.rope_local = c.rope;
    }
    return;
  }

  // transformers 4.x: rope_theta plus an optional rope_scaling object.
  if (const Json* scaling = text.get_object("rope_scaling")) {
    c.rope = parse_rope_object(JsonFields(*scaling, text.source(), text.prefix() + "rope_scaling."),
                               base, c);
  } else {
    c.rope = base;
  }
  c.rope_local = c.rope;
  if (c.arch == Architecture::Gemma3) {
    // Gemma 3 local layers rotate with their own base and without the global layers' scaling.
    c.rope_local = base;
    c.rope_local.type = RopeType::Default;
    c.rope_local.factor = 1.0;
    c.rope_local.theta = text.get_double("rope_local_base_freq", 1e-9, 1e30).value_or(10000.0);
  }
}

}  // namespace mlxn::io::detail
