// An independent float64 forward pass for the tiny test models, written from transformers'
// modeling files (Llama, Mistral, Qwen2, Qwen3, Qwen3-MoE, Gemma 2, Gemma 3, Phi-3): plain loops
// over the weights read back from model.safetensors, hyper-parameters read straight from
// config.json (not through mlxn's config reader). It covers the features the tiny configs use:
// biases, tied embeddings, GQA, sliding windows, qk-norm, sandwich norms, (1 + w) norms, softcaps,
// GeGLU, routed experts, and default / linear / LongRoPE rotary tables.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "mlxn/io/safetensors.h"

namespace mlxn::test::forward {

class ReferenceModel {
 public:
  explicit ReferenceModel(const std::filesystem::path& dir)
      : file_(io::SafetensorsFile::open(dir / "model.safetensors")) {
    std::ifstream in(dir / "config.json");
    std::stringstream ss;
    ss << in.rdbuf();
    const nlohmann::json c = nlohmann::json::parse(ss.str());
    type_ = c.at("model_type").get<std::string>();
    gemma_ = type_ == "gemma2" || type_ == "gemma3_text" || type_ == "gemma3";
    const bool gemma3 = type_ == "gemma3_text" || type_ == "gemma3";
    phi3_ = type_ == "phi3";
    hidden_ = c.at("hidden_size").get<int>();
    n_layers_ = c.at("num_hidden_layers").get<int>();
    n_heads_ = c.at("num_attention_heads").get<int>();
    n_kv_ = c.value("num_key_value_heads", n_heads_);
    head_dim_ = c.value("head_dim", hidden_ / n_heads_);
    vocab_ = c.at("vocab_size").get<int>();
    eps_ = c.at("rms_norm_eps").get<double>();
    tied_ = c.value("tie_word_embeddings", false);
    qk_norm_ = type_ == "qwen3" || type_ == "qwen3_moe" || gemma3;
    scale_ = gemma_ ? 1.0 / std::sqrt(c.at("query_pre_attn_scalar").get<double>())
                    : 1.0 / std::sqrt(static_cast<double>(head_dim_));
    if (gemma_) {
      embed_scale_ = static_cast<float>(std::sqrt(static_cast<double>(hidden_)));
      if (c.contains("attn_logit_softcapping") && !c["attn_logit_softcapping"].is_null()) {
        attn_cap_ = c["attn_logit_softcapping"].get<double>();
      }
      if (c.contains("final_logit_softcapping") && !c["final_logit_softcapping"].is_null()) {
        final_cap_ = c["final_logit_softcapping"].get<double>();
      }
    }

    // Which layers slide, as each family's config class derives it.
    sliding_.assign(static_cast<std::size_t>(n_layers_), false);
    const bool has_window = c.contains("sliding_window") && !c["sliding_window"].is_null();
    if (has_window) window_ = c["sliding_window"].get<int>();
    for (int l = 0; l < n_layers_; ++l) {
      bool s = false;
      if (type_ == "mistral" || phi3_) s = has_window;
      if (type_ == "qwen2" || type_ == "qwen3" || type_ == "qwen3_moe") {
        s = c.value("use_sliding_window", false) && l >= c.value("max_window_layers", n_layers_);
      }
      if (type_ == "gemma2") s = l % 2 == 0;
      if (gemma3) s = (l + 1) % c.value("sliding_window_pattern", 6) != 0;
      sliding_[static_cast<std::size_t>(l)] = s;
    }

    // MoE layers.
    moe_.assign(static_cast<std::size_t>(n_layers_), false);
    if (type_ == "qwen3_moe") {
      n_experts_ = c.at("num_experts").get<int>();
      top_k_ = c.at("num_experts_per_tok").get<int>();
      norm_topk_ = c.value("norm_topk_prob", false);
      const int step = c.value("decoder_sparse_step", 1);
      std::vector<int> dense_only = c.value("mlp_only_layers", std::vector<int>{});
      for (int l = 0; l < n_layers_; ++l) {
        const bool listed = std::find(dense_only.begin(), dense_only.end(), l) != dense_only.end();
        moe_[static_cast<std::size_t>(l)] = !listed && (l + 1) % step == 0;
      }
    }

    // Rotary tables: [rotary_dim / 2] inverse frequencies and the cos/sin scale per layer kind.
    const double partial = c.value("partial_rotary_factor", 1.0);
    rotary_dim_ = static_cast<int>(head_dim_ * partial);
    theta_ = c.value("rope_theta", 10000.0);
    global_freq_ = default_freq(theta_);
    if (c.contains("rope_scaling") && !c["rope_scaling"].is_null()) {
      const nlohmann::json& r = c["rope_scaling"];
      const std::string t = r.contains("rope_type") ? r["rope_type"].get<std::string>()
                                                    : r.at("type").get<std::string>();
      if (t == "linear") {
        for (double& f : global_freq_) f /= r.at("factor").get<double>();
      } else if (t == "longrope") {
        // The factors are chosen per sequence in logits(): long past the original length.
        short_factor_ = r.at("short_factor").get<std::vector<double>>();
        long_factor_ = r.at("long_factor").get<std::vector<double>>();
        longrope_orig_ = c.at("original_max_position_embeddings").get<int>();
        const double orig = longrope_orig_;
        const double factor = c.at("max_position_embeddings").get<double>() / orig;
        global_scale_ = std::sqrt(1.0 + std::log(factor) / std::log(orig));
      } else {
        throw std::runtime_error("reference: rope type " + t + " not implemented");
      }
    }
    local_freq_ = global_freq_;
    local_scale_ = global_scale_;
    if (gemma3) {
      local_freq_ = default_freq(c.value("rope_local_base_freq", 10000.0));
      local_scale_ = 1.0;
    }
  }

  int vocab() const { return vocab_; }

  /// Logits [n, vocab] of every position of `tokens` (a fresh sequence).
  std::vector<double> logits(std::span<const std::int32_t> tokens) {
    const int n = static_cast<int>(tokens.size());
    if (longrope_orig_ > 0) {
      // transformers' LongRoPE: long factors once the sequence exceeds the original length.
      const std::vector<double>& ext = n > longrope_orig_ ? long_factor_ : short_factor_;
      global_freq_ = default_freq(theta_);
      for (std::size_t i = 0; i < global_freq_.size(); ++i) global_freq_[i] /= ext.at(i);
      local_freq_ = global_freq_;
      local_scale_ = global_scale_;
    }
    const std::vector<double> emb = tensor("model.embed_tokens.weight");
    const double es = embed_scale_;  // already rounded to f32, the models' dtype
    std::vector<Vec> x(static_cast<std::size_t>(n), Vec(static_cast<std::size_t>(hidden_)));
    for (int t = 0; t < n; ++t) {
      for (int i = 0; i < hidden_; ++i) {
        x[t][i] = emb[static_cast<std::size_t>(tokens[t]) * hidden_ + i] * es;
      }
    }
    for (int l = 0; l < n_layers_; ++l) layer(l, x);
    const std::vector<double> head = tied_ ? emb : tensor("lm_head.weight");
    const std::vector<double> fnorm = tensor("model.norm.weight");
    std::vector<double> out;
    out.reserve(static_cast<std::size_t>(n) * vocab_);
    for (int t = 0; t < n; ++t) {
      const Vec h = rms(x[t], fnorm);
      for (int v = 0; v < vocab_; ++v) {
        double s = 0.0;
        for (int i = 0; i < hidden_; ++i)
          s += head[static_cast<std::size_t>(v) * hidden_ + i] * h[i];
        if (final_cap_ > 0.0) s = final_cap_ * std::tanh(s / final_cap_);
        out.push_back(s);
      }
    }
    return out;
  }

 private:
  using Vec = std::vector<double>;

  std::vector<double> default_freq(double theta) const {
    std::vector<double> f(static_cast<std::size_t>(rotary_dim_ / 2));
    for (int i = 0; i < rotary_dim_ / 2; ++i) {
      f[i] = 1.0 / std::pow(theta, 2.0 * i / rotary_dim_);
    }
    return f;
  }

  std::vector<double> tensor(const std::string& name) const {
    const std::vector<float> f = io::tensor_to_f32(file_.at(name));
    return std::vector<double>(f.begin(), f.end());
  }
  bool has(const std::string& name) const { return file_.contains(name); }

  // y = W x (+ b) with W [out, in] stored row-major; rows [row0, row0 + rows) of W.
  static Vec matvec(const std::vector<double>& w, const Vec& x, std::size_t row0, std::size_t rows,
                    const std::vector<double>* b = nullptr) {
    Vec y(rows, 0.0);
    for (std::size_t o = 0; o < rows; ++o) {
      double s = 0.0;
      const double* wr = w.data() + (row0 + o) * x.size();
      for (std::size_t i = 0; i < x.size(); ++i) s += wr[i] * x[i];
      y[o] = s + (b ? (*b)[row0 + o] : 0.0);
    }
    return y;
  }

  struct Lin {
    std::vector<double> w, b;
    Vec apply(const Vec& x, std::size_t row0, std::size_t rows) const {
      return matvec(w, x, row0, rows, b.empty() ? nullptr : &b);
    }
  };
  Lin lin(const std::string& module) const {
    Lin l{tensor(module + ".weight"), {}};
    if (has(module + ".bias")) l.b = tensor(module + ".bias");
    return l;
  }

  // RMSNorm (Gemma: times 1 + w).
  Vec rms(const Vec& x, const std::vector<double>& w) const {
    double ss = 0.0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps_);
    Vec y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * ((gemma_ ? 1.0 : 0.0) + w[i]);
    return y;
  }

  // rotate_half RoPE on the first rotary_dim dims of one head, at position pos.
  void rope(double* h, int pos, const std::vector<double>& freq, double scale) const {
    const int half = rotary_dim_ / 2;
    for (int i = 0; i < half; ++i) {
      const double a = pos * freq[i];
      const double c = std::cos(a) * scale, s = std::sin(a) * scale;
      const double x0 = h[i], x1 = h[i + half];
      h[i] = x0 * c - x1 * s;
      h[i + half] = x1 * c + x0 * s;
    }
  }

  double act(double g) const {
    if (gemma_) {
      const double k = std::sqrt(2.0 / std::numbers::pi);
      return 0.5 * g * (1.0 + std::tanh(k * (g + 0.044715 * g * g * g)));
    }
    return g / (1.0 + std::exp(-g));
  }

  Vec mlp(const Lin& gate, const Lin& up, const Lin& down, std::size_t gate_row0,
          std::size_t up_row0, std::size_t inter, const Vec& x) const {
    const Vec g = gate.apply(x, gate_row0, inter);
    const Vec u = up.apply(x, up_row0, inter);
    Vec a(inter);
    for (std::size_t i = 0; i < inter; ++i) a[i] = act(g[i]) * u[i];
    return down.apply(a, 0, static_cast<std::size_t>(hidden_));
  }

  void layer(int l, std::vector<Vec>& x) const {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::size_t n = x.size();
    const std::size_t q_dim = static_cast<std::size_t>(n_heads_) * head_dim_;
    const std::size_t kv_dim = static_cast<std::size_t>(n_kv_) * head_dim_;
    const bool slide = sliding_[static_cast<std::size_t>(l)];
    const std::vector<double>& freq = slide ? local_freq_ : global_freq_;
    const double rscale = slide ? local_scale_ : global_scale_;

    // Projections (Phi-3: one fused qkv_proj, q rows first).
    std::vector<Vec> q(n), k(n), v(n);
    const std::vector<double> in_norm = tensor(p + "input_layernorm.weight");
    const Lin qkv = phi3_ ? lin(p + "self_attn.qkv_proj") : Lin{};
    const Lin lq = phi3_ ? qkv : lin(p + "self_attn.q_proj");
    const Lin lk = phi3_ ? qkv : lin(p + "self_attn.k_proj");
    const Lin lv = phi3_ ? qkv : lin(p + "self_attn.v_proj");
    for (std::size_t t = 0; t < n; ++t) {
      const Vec h = rms(x[t], in_norm);
      q[t] = lq.apply(h, 0, q_dim);
      k[t] = lk.apply(h, phi3_ ? q_dim : 0, kv_dim);
      v[t] = lv.apply(h, phi3_ ? q_dim + kv_dim : 0, kv_dim);
    }
    if (qk_norm_) {
      const std::vector<double> qn = tensor(p + "self_attn.q_norm.weight");
      const std::vector<double> kn = tensor(p + "self_attn.k_norm.weight");
      const auto norm_heads = [&](Vec& z, int heads, const std::vector<double>& w) {
        for (int hd = 0; hd < heads; ++hd) {
          Vec part(z.begin() + hd * head_dim_, z.begin() + (hd + 1) * head_dim_);
          part = rms(part, w);
          std::copy(part.begin(), part.end(), z.begin() + hd * head_dim_);
        }
      };
      for (std::size_t t = 0; t < n; ++t) {
        norm_heads(q[t], n_heads_, qn);
        norm_heads(k[t], n_kv_, kn);
      }
    }
    for (std::size_t t = 0; t < n; ++t) {
      for (int hd = 0; hd < n_heads_; ++hd) rope(&q[t][hd * head_dim_], int(t), freq, rscale);
      for (int hd = 0; hd < n_kv_; ++hd) rope(&k[t][hd * head_dim_], int(t), freq, rscale);
    }

    // Causal (and windowed) softmax attention, GQA.
    const Lin o = lin(p + "self_attn.o_proj");
    const int group = n_heads_ / n_kv_;
    for (std::size_t t = 0; t < n; ++t) {
      Vec attn(q_dim, 0.0);
      for (int hd = 0; hd < n_heads_; ++hd) {
        const int kvh = hd / group;
        std::vector<double> s;
        std::vector<std::size_t> keys;
        for (std::size_t j = 0; j <= t; ++j) {
          if (slide && static_cast<int>(t - j) >= window_) continue;
          double d = 0.0;
          for (int i = 0; i < head_dim_; ++i)
            d += q[t][hd * head_dim_ + i] * k[j][kvh * head_dim_ + i];
          d *= scale_;
          if (attn_cap_ > 0.0) d = attn_cap_ * std::tanh(d / attn_cap_);
          s.push_back(d);
          keys.push_back(j);
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0.0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (std::size_t a = 0; a < keys.size(); ++a) {
          for (int i = 0; i < head_dim_; ++i) {
            attn[hd * head_dim_ + i] += s[a] / sum * v[keys[a]][kvh * head_dim_ + i];
          }
        }
      }
      Vec out = o.apply(attn, 0, static_cast<std::size_t>(hidden_));
      if (gemma_) out = rms(out, tensor(p + "post_attention_layernorm.weight"));
      for (int i = 0; i < hidden_; ++i) x[t][i] += out[i];
    }

    // MLP: dense, or softmax top-k routed experts.
    const std::vector<double> ffn_norm = tensor(
        p + (gemma_ ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"));
    const std::string m = p + "mlp.";
    for (std::size_t t = 0; t < n; ++t) {
      const Vec h = rms(x[t], ffn_norm);
      Vec out(static_cast<std::size_t>(hidden_), 0.0);
      if (moe_[static_cast<std::size_t>(l)]) {
        const Lin router = lin(m + "gate");
        const Vec logits = router.apply(h, 0, static_cast<std::size_t>(n_experts_));
        const double mx = *std::max_element(logits.begin(), logits.end());
        Vec prob(logits.size());
        double sum = 0.0;
        for (std::size_t e = 0; e < logits.size(); ++e) sum += (prob[e] = std::exp(logits[e] - mx));
        for (double& pr : prob) pr /= sum;
        std::vector<int> order(prob.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return prob[a] > prob[b]; });
        double top_sum = 0.0;
        for (int j = 0; j < top_k_; ++j) top_sum += prob[order[j]];
        for (int j = 0; j < top_k_; ++j) {
          const int e = order[j];
          const double w = norm_topk_ ? prob[e] / top_sum : prob[e];
          const std::string ex = m + "experts." + std::to_string(e) + ".";
          const Lin g = lin(ex + "gate_proj"), u = lin(ex + "up_proj"), d = lin(ex + "down_proj");
          const Vec y = mlp(g, u, d, 0, 0, g.w.size() / static_cast<std::size_t>(hidden_), h);
          for (int i = 0; i < hidden_; ++i) out[i] += w * y[i];
        }
      } else if (phi3_) {
        const Lin gu = lin(m + "gate_up_proj");
        const std::size_t inter = gu.w.size() / static_cast<std::size_t>(hidden_) / 2;
        out = mlp(gu, gu, lin(m + "down_proj"), 0, inter, inter, h);
      } else {
        const Lin g = lin(m + "gate_proj");
        out = mlp(g, lin(m + "up_proj"), lin(m + "down_proj"), 0, 0,
                  g.w.size() / static_cast<std::size_t>(hidden_), h);
      }
      if (gemma_) out = rms(out, tensor(p + "post_feedforward_layernorm.weight"));
      for (int i = 0; i < hidden_; ++i) x[t][i] += out[i];
    }
  }

  io::SafetensorsFile file_;
  std::string type_;
  bool gemma_ = false, phi3_ = false, tied_ = false, qk_norm_ = false, norm_topk_ = false;
  int hidden_ = 0, n_layers_ = 0, n_heads_ = 0, n_kv_ = 0, head_dim_ = 0, vocab_ = 0;
  int rotary_dim_ = 0, window_ = 0, n_experts_ = 0, top_k_ = 0;
  double eps_ = 1e-6, scale_ = 1.0, attn_cap_ = 0.0, final_cap_ = 0.0;
  float embed_scale_ = 1.0f;
  std::vector<bool> sliding_, moe_;
  std::vector<double> global_freq_, local_freq_;
  double global_scale_ = 1.0, local_scale_ = 1.0;
  double theta_ = 10000.0;
  std::vector<double> short_factor_, long_factor_;  // LongRoPE
  int longrope_orig_ = 0;                           // LongRoPE original length; 0 = not used
};

}  // namespace mlxn::test::forward
