// The shared decoder-block builder: embedding, one decoder layer (pre-norm or Gemma's sandwich
// norms, qk-norm, RoPE, KV-cache append, cached attention, dense or routed-expert MLP) and the
// output head, encoded with the ops library. A decode step (one token) runs the fused q/k/v and
// gate/up projections where the weights have them: at batch 1 each small mat-vec is latency
// bound, so one over all the rows saves a launch and a tail per part.
#include "mlxn/engine/transformer.h"

#include <string>

#include "mlxn/core/error.h"
#include "mlxn/ops/activations.h"
#include "mlxn/ops/attention.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/embedding.h"
#include "mlxn/ops/moe_routing.h"
#include "mlxn/ops/norm.h"
#include "mlxn/ops/rope.h"
#include "mlxn/ops/rope_kv_append.h"

namespace mlxn::engine {

namespace {

// Split-KV decode chunks the workspace is sized for. The op picks enough chunks for about 528
// blocks (66 chunks for Llama-3-8B's 8 KV heads), never more than one per 16 cached rows, and
// never more than the workspace holds.
constexpr std::int64_t kMaxDecodeChunks = 512;

bool any_dense_layer(const io::ModelConfig& c) {
  for (std::int64_t i = 0; i < c.n_layers; ++i) {
    if (!c.is_moe_layer(i)) return true;
  }
  return false;
}

bool any_moe_layer(const io::ModelConfig& c) {
  for (std::int64_t i = 0; i < c.n_layers; ++i) {
    if (c.is_moe_layer(i)) return true;
  }
  return false;
}

// The leading elements of `b` (allocated for max_tokens rows) as a tensor of `shape`.
Buffer head_view(const Buffer& b, Shape shape) {
  if (!b.valid()) return {};
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(b.dtype());
  return b.view(0, bytes, b.dtype(), std::move(shape));
}

// Elements [col0, col0 + cols) of a one-row buffer [1, width], as [1, cols]: one part of a fused
// projection's output.
Buffer row_part(const Buffer& row, std::int64_t col0, std::int64_t cols) {
  const std::size_t es = dtype_size(row.dtype());
  return row.view(static_cast<std::size_t>(col0) * es, static_cast<std::size_t>(cols) * es,
                  row.dtype(), {1, cols});
}

// [n, a * b] viewed as [n, a, b] (what rope, qk_norm and attention take).
Buffer heads(const Buffer& b, std::int64_t n_heads, std::int64_t head_dim) {
  return b.reshape({b.shape()[0], n_heads, head_dim});
}

[[noreturn]] void missing(std::int64_t layer, const char* what) {
  throw Error(ErrorKind::InvalidArgument,
              "layer " + std::to_string(layer) + ": weights have no " + what);
}

// A fused projection must produce exactly the row its scratch buffer holds; checked once, when
// the scratch is sized, not per layer per decode step.
void check_fused_rows(std::int64_t layer, const char* what, const Linear& fused,
                      std::int64_t width) {
  if (fused.valid() && fused.out != width) {
    throw Error(ErrorKind::InvalidArgument,
                "layer " + std::to_string(layer) + ": the fused " + what + " projection has " +
                    std::to_string(fused.out) + " rows, the config " + std::to_string(width));
  }
}

void encode_activation(CommandEncoder& enc, FfnActivation act, const Buffer& gate, const Buffer& up,
                       const Buffer& out) {
  switch (act) {
    case FfnActivation::Silu:
      ops::silu_mul(enc, gate, up, out);
      return;
    case FfnActivation::GeluTanh:
      ops::gelu_mul(enc, gate, up, out, ops::GeluApprox::Tanh);
      return;
    case FfnActivation::GeluErf:
      ops::gelu_mul(enc, gate, up, out, ops::GeluApprox::Erf);
      return;
  }
}

// Attention sub-block: buf.xn (normed input) -> buf.proj (o_proj output).
void encode_attention(CommandEncoder& enc, const BlockContext& ctx, std::int64_t layer,
                      const AttentionWeights& w, const LayerCache& cache, const RopeBuffers& rope,
                      const ChunkPositions& where, const ChunkBuffers& buf) {
  const io::ModelConfig& c = ctx.config;
  const BlockFeatures& f = ctx.features;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  const std::int64_t n = buf.n_tokens;
  Buffer q_out = buf.q, k_out = buf.k, v_out = buf.v;
  if (n == 1 && w.qkv.valid() && buf.qkv.valid()) {
    // Decode: one mat-vec over all q/k/v rows (each alone is latency bound); q, k and v are
    // then views of its output row, which rope and qk_norm update in place as they would buf.q.
    w.qkv.apply(enc, buf.xn, buf.qkv);
    q_out = row_part(buf.qkv, 0, w.q.out);
    k_out = row_part(buf.qkv, w.q.out, w.k.out);
    v_out = row_part(buf.qkv, w.q.out + w.k.out, w.v.out);
  } else {
    w.q.apply(enc, buf.xn, buf.q, buf.weight_workspace);
    w.k.apply(enc, buf.xn, buf.k, buf.weight_workspace);
    w.v.apply(enc, buf.xn, buf.v, buf.weight_workspace);
  }
  const Buffer q = heads(q_out, c.n_heads, c.head_dim);
  const Buffer k = heads(k_out, c.n_kv_heads, c.head_dim);
  const Buffer v = heads(v_out, c.n_kv_heads, c.head_dim);
  if (f.qk_norm) {
    if (!w.q_norm.valid() || !w.k_norm.valid()) missing(layer, "q_norm/k_norm for qk-norm");
    ops::qk_norm(enc, q, w.q_norm, q, eps, ctx.norm_weight);
    ops::qk_norm(enc, k, w.k_norm, k, eps, ctx.norm_weight);
  }
  const bool sliding = c.layer_type(layer) == io::AttentionKind::Sliding;
  const Buffer& inv_freq = sliding ? rope.local_inv_freq : rope.global_inv_freq;
  const float rope_scale = sliding ? rope.local_scale : rope.global_scale;
  // RoPE on q and k and the cache write of k and v: one dispatch (three tiny kernels at decode,
  // each ~2.6 us of a step on the H100: docs/perf.md, issue 7).
  ops::rope_kv_append(enc, q, k, v, where.positions, inv_freq, f.rope_layout, rope_scale, cache.k,
                      cache.v, cache.ring);

  const Buffer attn = heads(buf.attn, c.n_heads, c.head_dim);
  const std::int64_t kv_len = where.pos0 + n;
  const std::int64_t window = sliding && c.sliding_window ? *c.sliding_window : 0;
  if (n == 1) {
    ops::DecodeOptions o;
    o.scale = f.attn_scale;
    o.softcap = f.attn_softcap;
    o.window = window;
    o.workspace = buf.decode_workspace;
    ops::attention_decode(enc, q, cache.k, cache.v, kv_len, attn, o);
  } else {
    ops::AttentionOptions o;
    o.scale = f.attn_scale;
    o.softcap = f.attn_softcap;
    o.window = window;
    ops::attention_prefill_cached(enc, q, cache.k, cache.v, kv_len, where.pos0, attn, o);
  }
  w.o.apply(enc, buf.attn, buf.proj, buf.weight_workspace);
}

// Dense gated MLP: buf.xn -> buf.proj.
void encode_mlp(CommandEncoder& enc, const BlockContext& ctx, const MlpWeights& w,
                const ChunkBuffers& buf) {
  Buffer gate = buf.gate, up = buf.up;
  if (buf.n_tokens == 1 && w.gate_up.valid() && buf.gate_up.valid()) {
    // Decode: one mat-vec over the gate and up rows; the activation lands in the gate half.
    w.gate_up.apply(enc, buf.xn, buf.gate_up);
    gate = row_part(buf.gate_up, 0, w.gate.out);
    up = row_part(buf.gate_up, w.gate.out, w.up.out);
  } else {
    w.gate.apply(enc, buf.xn, buf.gate, buf.weight_workspace);
    w.up.apply(enc, buf.xn, buf.up, buf.weight_workspace);
  }
  encode_activation(enc, ctx.features.activation, gate, up, gate);
  w.down.apply(enc, gate, buf.proj, buf.weight_workspace);
}

// Routed experts (Qwen3-MoE): softmax router, top-k, gated expert MLPs, weighted sum.
void encode_moe(CommandEncoder& enc, const BlockContext& ctx, const MoeWeights& w,
                const ChunkBuffers& buf) {
  const io::ModelConfig& c = ctx.config;
  // Router logits in f32: routing is a discrete top-k choice, and logits rounded to bf16 (8-bit
  // mantissa) turn near-ties into other experts than an f32 reference picks.
  if (buf.router_in.valid()) {
    ops::cast(enc, buf.xn, buf.router_in);
    w.router.apply(enc, buf.router_in, buf.router_logits);
  } else {
    w.router.apply(enc, buf.xn, buf.router_logits);
  }
  ops::moe_route(enc, buf.router_logits, c.n_experts_per_tok, ops::MoeScoring::Softmax,
                 c.norm_topk_prob, buf.expert_ids, buf.expert_weights);
  w.gate.apply(enc, buf.xn, buf.expert_ids, buf.expert_gate);
  w.up.apply(enc, buf.xn, buf.expert_ids, buf.expert_up);
  encode_activation(enc, ctx.features.activation, buf.expert_gate, buf.expert_up, buf.expert_gate);
  w.down.apply(enc, buf.expert_gate, buf.expert_ids, buf.expert_out);
  ops::moe_combine(enc, buf.expert_out, buf.expert_weights, buf.proj);
}

}  // namespace

ForwardScratch ForwardScratch::create(Device& device, const io::ModelConfig& c, DType dtype,
                                      std::int64_t max_tokens, const ModelWeights& weights) {
  if (max_tokens < 1) {
    throw Error(ErrorKind::InvalidArgument,
                "ForwardScratch: max_tokens must be >= 1, got " + std::to_string(max_tokens));
  }
  ForwardScratch s;
  s.max_tokens = max_tokens;
  const std::int64_t m = max_tokens;
  s.x = device.alloc(dtype, {m, c.hidden_size});
  s.xn = device.alloc(dtype, {m, c.hidden_size});
  s.q = device.alloc(dtype, {m, c.n_heads * c.head_dim});
  s.attn = device.alloc(dtype, {m, c.n_heads * c.head_dim});
  s.k = device.alloc(dtype, {m, c.n_kv_heads * c.head_dim});
  s.v = device.alloc(dtype, {m, c.n_kv_heads * c.head_dim});
  s.proj = device.alloc(dtype, {m, c.hidden_size});
  if (any_dense_layer(c)) {
    s.gate = device.alloc(dtype, {m, c.intermediate_size});
    s.up = device.alloc(dtype, {m, c.intermediate_size});
  }
  const std::int64_t qkv_width = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
  const std::int64_t gate_up_width = 2 * c.intermediate_size;
  bool fused_qkv = false, fused_gate_up = false;
  for (std::size_t i = 0; i < weights.layers.size(); ++i) {
    const LayerWeights& l = weights.layers[i];
    const auto layer = static_cast<std::int64_t>(i);
    check_fused_rows(layer, "q/k/v", l.attn.qkv, qkv_width);
    fused_qkv = fused_qkv || l.attn.qkv.valid();
    if (l.mlp) check_fused_rows(layer, "gate/up", l.mlp->gate_up, gate_up_width);
    fused_gate_up = fused_gate_up || (l.mlp && l.mlp->gate_up.valid());
  }
  // One row: only decode steps apply the fused projections.
  if (fused_qkv) s.qkv = device.alloc(dtype, {1, qkv_width});
  if (fused_gate_up) s.gate_up = device.alloc(dtype, {1, gate_up_width});
  if (any_moe_layer(c)) {
    const std::int64_t k = c.n_experts_per_tok;
    s.router_logits = device.alloc(DType::F32, {m, c.n_experts});
    if (dtype != DType::F32) s.router_in = device.alloc(DType::F32, {m, c.hidden_size});
    s.expert_ids = device.alloc(DType::I32, {m, k});
    s.expert_weights = device.alloc(DType::F32, {m, k});
    s.expert_gate = device.alloc(dtype, {m, k, c.moe_intermediate_size});
    s.expert_up = device.alloc(dtype, {m, k, c.moe_intermediate_size});
    s.expert_out = device.alloc(dtype, {m, k, c.hidden_size});
  }
  // The CPU decodes in one pass and needs no workspace.
  if (device.backend() != Backend::Cpu) {
    s.decode_workspace = device.alloc(DType::F32, {ops::attention_decode_workspace_elems(
                                                      c.n_heads, c.head_dim, kMaxDecodeChunks)});
  }
  return s;
}

ChunkBuffers chunk_buffers(const ForwardScratch& s, const io::ModelConfig& c, std::int64_t n) {
  if (n < 1 || n > s.max_tokens) {
    throw Error(ErrorKind::InvalidArgument, "chunk_buffers: " + std::to_string(n) +
                                                " tokens outside [1, " +
                                                std::to_string(s.max_tokens) + "]");
  }
  const std::int64_t k = c.n_experts_per_tok;
  ChunkBuffers b;
  b.n_tokens = n;
  b.x = head_view(s.x, {n, c.hidden_size});
  b.xn = head_view(s.xn, {n, c.hidden_size});
  b.q = head_view(s.q, {n, c.n_heads * c.head_dim});
  b.attn = head_view(s.attn, {n, c.n_heads * c.head_dim});
  b.k = head_view(s.k, {n, c.n_kv_heads * c.head_dim});
  b.v = head_view(s.v, {n, c.n_kv_heads * c.head_dim});
  b.proj = head_view(s.proj, {n, c.hidden_size});
  b.gate = head_view(s.gate, {n, c.intermediate_size});
  b.up = head_view(s.up, {n, c.intermediate_size});
  b.qkv = s.qkv;
  b.gate_up = s.gate_up;
  b.router_logits = head_view(s.router_logits, {n, c.n_experts});
  if (s.router_in.valid()) b.router_in = head_view(s.router_in, {n, c.hidden_size});
  b.expert_ids = head_view(s.expert_ids, {n, k});
  b.expert_weights = head_view(s.expert_weights, {n, k});
  b.expert_gate = head_view(s.expert_gate, {n, k, c.moe_intermediate_size});
  b.expert_up = head_view(s.expert_up, {n, k, c.moe_intermediate_size});
  b.expert_out = head_view(s.expert_out, {n, k, c.hidden_size});
  b.decode_workspace = s.decode_workspace;
  b.weight_workspace = s.weight_workspace;
  return b;
}

void encode_embedding(CommandEncoder& enc, const BlockContext& ctx, const EmbeddingWeights& emb,
                      const Buffer& ids, const Buffer& x) {
  const float scale = ctx.features.embedding_scale;
  if (emb.quant) {
    ops::embedding_quantized(enc, *emb.quant, ids, x, scale);
  } else if (emb.dense.valid()) {
    ops::embedding(enc, emb.dense, ids, x, scale);
  } else {
    throw Error(ErrorKind::InvalidArgument, "encode_embedding: the model has no embedding table");
  }
}

void encode_norm(CommandEncoder& enc, const BlockContext& ctx, const Buffer& x,
                 const Buffer& weight, const Buffer& out) {
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  if (ctx.norm_weight == ops::NormWeight::OnePlus) {
    ops::rms_norm_gemma(enc, x, weight, out, eps);
  } else {
    ops::rms_norm(enc, x, weight, out, eps);
  }
}

void encode_layer(CommandEncoder& enc, const BlockContext& ctx, std::int64_t layer,
                  const LayerWeights& w, const LayerCache& cache, const RopeBuffers& rope,
                  const ChunkPositions& where, const ChunkBuffers& buf, const LayerLinks& links) {
  const BlockFeatures& f = ctx.features;
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  if (!w.attn_norm.valid() || !w.ffn_norm.valid()) missing(layer, "input/pre-FFN norm");
  if (f.sandwich_norms && (!w.post_attn_norm.valid() || !w.post_ffn_norm.valid())) {
    missing(layer, "post-attention/post-FFN norm (sandwich norms)");
  }

  if (links.next_norm && !links.next_norm->valid()) missing(layer + 1, "input norm");

  // Attention: x += attn(norm(x)) (Gemma: x += post_norm(attn(norm(x)))), and in the same pass
  // xn = ffn_norm(x) for the MLP.
  if (!links.input_normed) encode_norm(enc, ctx, buf.x, w.attn_norm, buf.xn);
  encode_attention(enc, ctx, layer, w.attn, cache, rope, where, buf);
  if (f.sandwich_norms) {
    // xn is free again (q/k/v have been projected from it).
    encode_norm(enc, ctx, buf.proj, w.post_attn_norm, buf.xn);
    ops::add_rms_norm(enc, buf.xn, buf.x, w.ffn_norm, buf.x, buf.xn, eps, ctx.norm_weight);
  } else {
    ops::add_rms_norm(enc, buf.proj, buf.x, w.ffn_norm, buf.x, buf.xn, eps, ctx.norm_weight);
  }

  // MLP: x += mlp(xn) (Gemma: x += post_norm(mlp(xn))).
  if (w.moe) {
    encode_moe(enc, ctx, *w.moe, buf);
  } else if (w.mlp) {
    encode_mlp(enc, ctx, *w.mlp, buf);
  } else {
    missing(layer, "MLP or experts");
  }
  Buffer delta = buf.proj;
  if (f.sandwich_norms) {
    encode_norm(enc, ctx, buf.proj, w.post_ffn_norm, buf.xn);
    delta = buf.xn;
  }
  if (links.next_norm) {
    ops::add_rms_norm(enc, delta, buf.x, *links.next_norm, buf.x, buf.xn, eps, ctx.norm_weight);
  } else {
    ops::add(enc, buf.x, delta, buf.x);
  }
}

void encode_logits(CommandEncoder& enc, const BlockContext& ctx, const ModelWeights& weights,
                   const Buffer& x, const Buffer& xn, const Buffer& logits) {
  encode_norm(enc, ctx, x, weights.final_norm, xn);
  weights.lm_head.apply(enc, xn, logits);
  if (ctx.features.final_softcap > 0.0f) {
    ops::softcap(enc, logits, ctx.features.final_softcap, logits);
  }
}

}  // namespace mlxn::engine
