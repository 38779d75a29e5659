// Attention op entry points: validate shapes, dtypes and positions, fill AttentionParams, then
// dispatch the backend's prefill or decode (+ merge) kernels.
#include "mlxn/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "ops/attention_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + what);
}

// Query heads of one KV group a CUDA decode block serves: 1, 4 or 8, the smallest covering the
// group (spec "group"; a kernel holds that many heads' state in registers). Groups above 8 take
// several blocks.
std::int64_t decode_heads_per_block(std::int64_t group) {
  return group == 1 ? 1 : group <= 4 ? 4 : 8;
}
// Enough decode blocks to fill an H100/H200 (132 SMs) four times, what the registers of a
// 4-head block allow at once. Measured at context 4096 (Llama-3-8B, MLX 4-bit, docs/perf.md):
// 528 beat 264 (fewer passes a chunk) and 1056 (a second wave, and a longer merge).
constexpr std::int64_t kDecodeTargetBlocks = 528;
// Chunks shorter than this are not worth a merge. A block walks its chunk 16 rows a pass (at
// head_dim 128: 8 row groups, 2 rows in flight each), each pass a dependent round trip to memory,
// so at batch 1 the step's latency is the passes a chunk takes: 16-row chunks instead of 64 took
// the Llama-3-8B decode attention at 600 cached tokens from 10 chunks to 33 (docs/perf.md).
constexpr std::int64_t kDecodeMinChunk = 16;

struct Dims {
  std::int64_t n_q, n_heads, head_dim;
};

// q/out: [n_q, n_heads, head_dim], or [n_heads, head_dim] when `allow_2d` (decode).
Dims query_dims(const char* op, const Buffer& q, const Buffer& out, bool allow_2d) {
  detail::require_float(op, "q", q);
  detail::require_same_dtype(op, "out", out, q.dtype());
  const Shape& s = q.shape();
  Dims d{};
  if (s.size() == 3) {
    d = {s[0], s[1], s[2]};
  } else if (allow_2d && s.size() == 2) {
    d = {1, s[0], s[1]};
  } else {
    fail(op, "q has shape " + shape_to_string(s) +
                 (allow_2d ? ", expected [n_heads, head_dim] or [1, n_heads, head_dim]"
                           : ", expected [n_q, n_heads, head_dim]"));
  }
  if (allow_2d && d.n_q != 1) fail(op, "decode takes one query token, q has " + shape_to_string(s));
  if (out.shape() != s) {
    fail(op, "out has shape " + shape_to_string(out.shape()) + ", q " + shape_to_string(s));
  }
  if (!attention_head_dim_supported(d.head_dim)) {
    fail(op, "head_dim " + std::to_string(d.head_dim) + " is not one of 64, 80, 96, 128, 256");
  }
  if (d.n_heads < 1 || d.n_heads > 65535) {
    fail(op, "n_heads " + std::to_string(d.n_heads) + " outside [1, 65535]");
  }
  return d;
}

void check_kv_pair(const char* op, const Buffer& k, const Buffer& v) {
  detail::require_float(op, "k", k);
  detail::require_float(op, "v", v);
  detail::require_same_dtype(op, "v", v, k.dtype());
  if (k.shape().size() != 3) {
    fail(op, "k has shape " + shape_to_string(k.shape()) + ", expected rank 3");
  }
  if (v.shape() != k.shape()) {
    fail(op, "v has shape " + shape_to_string(v.shape()) + ", k " + shape_to_string(k.shape()));
  }
}

void check_group(const char* op, const Dims& d, std::int64_t n_kv_heads, std::int64_t head_dim) {
  if (head_dim != d.head_dim) {
    fail(op, "k/v head_dim " + std::to_string(head_dim) + " != q head_dim " +
                 std::to_string(d.head_dim));
  }
  if (n_kv_heads < 1 || d.n_heads % n_kv_heads != 0) {
    fail(op, "n_heads " + std::to_string(d.n_heads) + " is not a multiple of n_kv_heads " +
                 std::to_string(n_kv_heads));
  }
}

AttentionParams base_params(const Dims& d, std::int64_t n_kv_heads, DType io, DType kv,
                            const AttentionOptions& o, const char* op) {
  if (o.window < 0) fail(op, "window is negative");
  if (!(o.softcap >= 0.0f) || !std::isfinite(o.softcap)) fail(op, "softcap must be finite, >= 0");
  if (!(o.scale >= 0.0f) || !std::isfinite(o.scale)) fail(op, "scale must be finite, >= 0");
  AttentionParams p{};
  p.n_q = d.n_q;
  p.n_heads = static_cast<std::int32_t>(d.n_heads);
  p.n_kv_heads = static_cast<std::int32_t>(n_kv_heads);
  p.head_dim = static_cast<std::int32_t>(d.head_dim);
  p.q_token_stride = d.n_heads * d.head_dim;
  p.out_token_stride = d.n_heads * d.head_dim;
  p.window = o.window;
  p.causal = o.causal ? 1 : 0;
  p.scale = o.scale > 0.0f ? o.scale : 1.0f / std::sqrt(static_cast<float>(d.head_dim));
  p.softcap = o.softcap;
  p.io_dtype = static_cast<std::int32_t>(io);
  p.kv_dtype = static_cast<std::int32_t>(kv);
  p.n_chunks = 1;
  return p;
}

Specialization spec_of(DType io, DType kv, std::int64_t head_dim) {
  return Specialization().set("io", io).set("kv", kv).set("head_dim", head_dim);
}

// Cache-layout fields of p; checks that every key a query needs is still in the cache.
void set_cache_layout(const char* op, AttentionParams& p, const Buffer& k_cache,
                      std::int64_t kv_len, std::int64_t q_pos0) {
  const std::int64_t capacity = k_cache.shape()[1];
  if (capacity < 1) fail(op, "cache capacity is 0");
  if (kv_len < 1) fail(op, "kv_len " + std::to_string(kv_len) + " < 1");
  if (q_pos0 < 0 || q_pos0 + p.n_q > kv_len) {
    fail(op, "queries at positions [" + std::to_string(q_pos0) + ", " +
                 std::to_string(q_pos0 + p.n_q) + ") are not all below kv_len " +
                 std::to_string(kv_len) + " (append K/V before attending)");
  }
  // The ring holds positions [kv_len - capacity, kv_len). The first query needs keys from
  // q_pos0 - window + 1 (or from 0 without a window, or all of them when not causal).
  const std::int64_t oldest_kept = std::max<std::int64_t>(0, kv_len - capacity);
  const std::int64_t oldest_needed =
      p.window > 0 ? std::max<std::int64_t>(0, q_pos0 - p.window + 1) : 0;
  if (oldest_needed < oldest_kept) {
    fail(op, "position " + std::to_string(oldest_needed) +
                 " is needed but was overwritten in the ring (capacity " +
                 std::to_string(capacity) + ", kv_len " + std::to_string(kv_len) + ", window " +
                 std::to_string(p.window) + "): capacity must be >= window + n_q - 1");
  }
  p.n_slots = std::min(kv_len, capacity);
  p.kv_len = kv_len;
  p.capacity = capacity;
  p.q_pos0 = q_pos0;
  p.kv_token_stride = p.head_dim;
  p.kv_head_stride = capacity * p.head_dim;
}

}  // namespace

bool attention_head_dim_supported(std::int64_t head_dim) {
  return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128 || head_dim == 256;
}

std::int64_t attention_decode_workspace_elems(std::int64_t n_heads, std::int64_t head_dim,
                                              std::int64_t n_chunks) {
  return n_heads * n_chunks * (head_dim + 2);
}

void attention_prefill(CommandEncoder& enc, const Buffer& q, const Buffer& k, const Buffer& v,
                       const Buffer& out, const AttentionOptions& o) {
  constexpr const char* op = "attention_prefill";
  const Dims d = query_dims(op, q, out, false);
  check_kv_pair(op, k, v);
  const Shape& ks = k.shape();
  check_group(op, d, ks[1], ks[2]);
  if (d.n_q > ks[0]) {
    fail(op, "n_q " + std::to_string(d.n_q) + " > n_kv " + std::to_string(ks[0]) +
                 " (the queries are the last n_q key tokens)");
  }
  AttentionParams p = base_params(d, ks[1], q.dtype(), k.dtype(), o, op);
  if (d.n_q == 0) return;
  p.n_slots = ks[0];
  p.kv_len = ks[0];
  p.capacity = ks[0];
  p.q_pos0 = ks[0] - d.n_q;
  p.kv_token_stride = ks[1] * ks[2];
  p.kv_head_stride = ks[2];
  const Kernel& kernel =
      enc.device().kernels().get("attention_prefill", spec_of(q.dtype(), k.dtype(), d.head_dim));
  enc.dispatch(kernel, {Arg::in(q), Arg::in(k), Arg::in(v), Arg::out(out)}, p, op);
}

void attention_prefill_cached(CommandEncoder& enc, const Buffer& q, const Buffer& k_cache,
                              const Buffer& v_cache, std::int64_t kv_len, std::int64_t q_pos0,
                              const Buffer& out, const AttentionOptions& o) {
  constexpr const char* op = "attention_prefill_cached";
  const Dims d = query_dims(op, q, out, false);
  check_kv_pair(op, k_cache, v_cache);
  check_group(op, d, k_cache.shape()[0], k_cache.shape()[2]);
  AttentionParams p = base_params(d, k_cache.shape()[0], q.dtype(), k_cache.dtype(), o, op);
  if (d.n_q == 0) return;
  set_cache_layout(op, p, k_cache, kv_len, q_pos0);
  const Kernel& kernel = enc.device().kernels().get(
      "attention_prefill", spec_of(q.dtype(), k_cache.dtype(), d.head_dim));
  enc.dispatch(kernel, {Arg::in(q), Arg::in(k_cache), Arg::in(v_cache), Arg::out(out)}, p, op);
}

void attention_decode(CommandEncoder& enc, const Buffer& q, const Buffer& k_cache,
                      const Buffer& v_cache, std::int64_t kv_len, const Buffer& out,
                      const DecodeOptions& o) {
  constexpr const char* op = "attention_decode";
  const Dims d = query_dims(op, q, out, true);
  check_kv_pair(op, k_cache, v_cache);
  const std::int64_t n_kv_heads = k_cache.shape()[0];
  check_group(op, d, n_kv_heads, k_cache.shape()[2]);
  AttentionParams p = base_params(d, n_kv_heads, q.dtype(), k_cache.dtype(), o, op);
  set_cache_layout(op, p, k_cache, kv_len, kv_len - 1);
  if (o.n_chunks < 0) fail(op, "n_chunks is negative");

  std::int64_t n_chunks = o.n_chunks;
  if (n_chunks == 0) {
    if (enc.device().backend() == Backend::Cpu) {
      n_chunks = 1;
    } else {
      const std::int64_t group = d.n_heads / n_kv_heads;
      const std::int64_t per_block = decode_heads_per_block(group);
      const std::int64_t blocks_per_chunk = n_kv_heads * ((group + per_block - 1) / per_block);
      n_chunks = (kDecodeTargetBlocks + blocks_per_chunk - 1) / blocks_per_chunk;
      n_chunks = std::min(n_chunks, (p.n_slots + kDecodeMinChunk - 1) / kDecodeMinChunk);
      // No more chunks than a given workspace holds (it is sized for a maximum of chunks).
      const std::int64_t per_chunk = attention_decode_workspace_elems(d.n_heads, d.head_dim, 1);
      if (o.workspace.valid()) n_chunks = std::min(n_chunks, o.workspace.numel() / per_chunk);
    }
  }
  n_chunks = std::clamp<std::int64_t>(n_chunks, 1, std::min<std::int64_t>(p.n_slots, 65535));
  p.chunk_size = (p.n_slots + n_chunks - 1) / n_chunks;
  // Recount so that no chunk is empty (e.g. 10 slots over 4 chunks of 3 leaves 4 chunks, fine;
  // 9 slots over 6 chunks of 2 would leave the 6th empty).
  n_chunks = (p.n_slots + p.chunk_size - 1) / p.chunk_size;
  p.n_chunks = static_cast<std::int32_t>(n_chunks);

  KernelRegistry& registry = enc.device().kernels();
  const Specialization spec = spec_of(q.dtype(), k_cache.dtype(), d.head_dim);
  const Kernel& partial = registry.get(
      "attention_decode",
      Specialization(spec).set("group", decode_heads_per_block(d.n_heads / n_kv_heads)));
  if (n_chunks == 1) {
    enc.dispatch(partial, {Arg::in(q), Arg::in(k_cache), Arg::in(v_cache), Arg::out(out)}, p, op);
    return;
  }
  const std::int64_t ws_elems = attention_decode_workspace_elems(d.n_heads, d.head_dim, n_chunks);
  Buffer ws = o.workspace;
  if (ws.valid()) {
    detail::require_same_dtype(op, "workspace", ws, DType::F32);
    if (ws.numel() < ws_elems) {
      fail(op, "workspace has " + std::to_string(ws.numel()) + " f32 elements, needs " +
                   std::to_string(ws_elems));
    }
    ws = ws.slice(0, ws_elems);
  } else {
    ws = enc.device().alloc(DType::F32, {ws_elems});
  }
  const Kernel& merge = registry.get("attention_decode_merge", spec);
  enc.dispatch(partial, {Arg::in(q), Arg::in(k_cache), Arg::in(v_cache), Arg::out(ws)}, p, op);
  // The merge reads what the partial pass wrote: ordered on a stream, but not in a graph or on
  // the CPU's worker without a barrier.
  enc.barrier();
  enc.dispatch(merge, {Arg::in(ws), Arg::out(out)}, p, "attention_decode_merge");
}

}  // namespace mlxn::ops
