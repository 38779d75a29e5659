// Parameter struct of the attention ops (prefill, decode, decode merge), shared by the CPU and
// CUDA kernels (plain data, no host types).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// Scaled dot-product attention of n_q query tokens (n_heads heads each) against key rows
/// ("slots") of n_kv_heads heads. Query head h reads KV head h / (n_heads / n_kv_heads).
///
/// Element (token t, head h, d) of q lives at q[t * q_token_stride + h * head_dim + d]; of out at
/// out[t * out_token_stride + h * head_dim + d]; key slot s of KV head g at
/// k[g * kv_head_stride + s * kv_token_stride + d] (v likewise). Both K/V layouts are strides:
/// token-major fresh K/V [n_kv, n_kv_heads, D] and the head-major cache [n_kv_heads, capacity, D].
///
/// Positions: query i sits at q_pos0 + i. Slots [0, n_slots) are valid; slot s holds position
/// s when kv_len <= capacity, else (a ring that wrapped) the latest position below kv_len that is
/// congruent to s modulo capacity: s + capacity * ((kv_len - 1 - s) / capacity).
/// Key position kp is visible to query position qp iff (!causal || kp <= qp) and
/// (window == 0 || kp > qp - window). Logit: s = scale * q.k, then softcap * tanh(s / softcap)
/// when softcap > 0. A query that sees no key outputs zeros.
///
/// Prefill bindings: q, k, v, out. Decode bindings: q, k, v, dst. With n_chunks == 1, dst is out;
/// else dst is the f32 workspace of per (head, chunk) partials over the chunk's slots
/// [c * chunk_size, (c + 1) * chunk_size): the accumulator sum_s exp(s - max) * v_s at
/// ws[(h * n_chunks + c) * head_dim + d] and (max, sum_s exp(s - max)) at
/// ws[n_heads * n_chunks * head_dim + (h * n_chunks + c) * 2 + {0, 1}] (max = -inf, sum = 0 and
/// acc = 0 when the chunk sees no key). attention_decode_merge (bindings ws, out) combines them by
/// log-sum-exp.
/// Spec: io (dtype of q and out), kv (dtype of k and v), head_dim; decode also group (query heads
/// per CUDA block: 1, 4 or 8).
///
/// kv_len and q_pos0 travel in the params for now; graph replay of decode steps will need them
/// (and n_chunks / chunk_size derived from the capacity instead of kv_len) read from device
/// memory instead, so one captured step serves every position.
struct AttentionParams {
  std::int64_t n_q;
  std::int64_t n_slots;
  std::int64_t kv_len;
  std::int64_t capacity;
  std::int64_t q_pos0;
  std::int64_t window;
  std::int64_t q_token_stride;
  std::int64_t out_token_stride;
  std::int64_t kv_token_stride;
  std::int64_t kv_head_stride;
  std::int64_t chunk_size;  // decode: slots per chunk
  std::int32_t n_heads;
  std::int32_t n_kv_heads;
  std::int32_t head_dim;
  std::int32_t n_chunks;  // decode: number of KV chunks (1 = no merge pass)
  std::int32_t causal;
  std::int32_t
      io_dtype;  // DType of q/out as an integer (the CUDA kernels branch on it at run time)
  std::int32_t kv_dtype;  // DType of k/v as an integer
  float scale;
  float softcap;
};

/// Position held by slot s (see AttentionParams). Host and device code.
#if defined(__CUDACC__)
__host__ __device__
#endif
    inline std::int64_t
    attention_slot_position(std::int64_t s, std::int64_t kv_len, std::int64_t capacity) {
  return kv_len <= capacity ? s : s + capacity * ((kv_len - 1 - s) / capacity);
}

}  // namespace mlxn::ops
