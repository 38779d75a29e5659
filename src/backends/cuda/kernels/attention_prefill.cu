// Prefill attention: a tiled flash-attention kernel (online softmax, K/V tiles in shared memory,
// f32 accumulation) with tile skipping for causal and sliding-window masks. SIMT for now; the
// f16/bf16 path is the place for tensor cores (mma.sync) once it can be validated on the GPU.
#include <cstdint>

#include "backends/cuda/kernels/attention_common.cuh"
#include "backends/cuda/kernels/attention_kernels.h"

namespace mlxn::cuda {
namespace {

using ops::AttentionParams;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kBK = 32;  // keys per tile: one per lane in the score phase

// Tile geometry for head dim D. Each warp owns RW query rows; lane c scores key c of the tile
// against them, then lane owns output columns lane, lane + 32, ... (DJ of them) in the P.V phase.
template <int D>
struct PrefillShape {
  static constexpr int RW = D > 128 ? 4 : 8;
  static constexpr int BQ = RW * kWarps;
  static constexpr int DJ = (D + 31) / 32;
  // K rows padded by one float: lane c reading Ks[c][d] then hits bank (c * (D + 1) + d) % 32,
  // distinct over c for every D here (D + 1 is odd or D is a multiple of 32).
  static constexpr int KS = D + 1;
  static constexpr int Q_FLOATS = BQ * D;
  static constexpr int K_FLOATS = kBK * KS;
  static constexpr int V_FLOATS = kBK * D;
  static constexpr int P_FLOATS = kWarps * RW * kBK;
  static constexpr std::size_t kSmemBytes =
      sizeof(float) * (Q_FLOATS + K_FLOATS + V_FLOATS + P_FLOATS);
  static_assert(D % 4 == 0, "Q rows are read as float4");
  static_assert((Q_FLOATS + K_FLOATS + V_FLOATS) % 4 == 0, "P rows are read as float4");
};

// Loads keys [kb, kb + n_valid) of one KV head into Ks (row stride KS) and Vs (row stride D) as
// f32, zero-filling the rest of the tile (zeros, not garbage: P = 0 times NaN would be NaN).
template <class T, int D>
__device__ __forceinline__ void load_kv_tile(const T* k, const T* v, long long token_stride,
                                             long long kb, int n_valid, bool vec, float* Ks,
                                             float* Vs) {
  constexpr int E = 16 / sizeof(T);
  constexpr int NPACK = D / E;
  static_assert(D % E == 0, "head_dim is a whole number of 16-byte packs");
  for (int i = threadIdx.x; i < kBK * NPACK; i += kThreads) {
    const int r = i / NPACK, c = (i % NPACK) * E;
    float kf[E], vf[E];
    if (r < n_valid) {
      const long long off = (kb + r) * token_stride + c;
      load_f32<T, E>(k + off, vec, kf);
      load_f32<T, E>(v + off, vec, vf);
    } else {
#pragma unroll
      for (int j = 0; j < E; ++j) kf[j] = vf[j] = 0.0f;
    }
#pragma unroll
    for (int j = 0; j < E; ++j) {
      Ks[r * PrefillShape<D>::KS + c + j] = kf[j];
      Vs[r * D + c + j] = vf[j];
    }
  }
}

template <int D>
__device__ __forceinline__ void load_kv_tile_any(const AttentionParams& p, const void* k,
                                                 const void* v, long long kb, int n_valid,
                                                 float* Ks, float* Vs) {
  const long long off = (long long)(blockIdx.y / (p.n_heads / p.n_kv_heads)) * p.kv_head_stride;
  if (p.kv_dtype == kDTypeF16) {
    const __half* kh = static_cast<const __half*>(k) + off;
    const __half* vh = static_cast<const __half*>(v) + off;
    const bool vec = aligned16(kh) && aligned16(vh) && p.kv_token_stride % 8 == 0;
    load_kv_tile<__half, D>(kh, vh, p.kv_token_stride, kb, n_valid, vec, Ks, Vs);
  } else if (p.kv_dtype == kDTypeBF16) {
    const __nv_bfloat16* kh = static_cast<const __nv_bfloat16*>(k) + off;
    const __nv_bfloat16* vh = static_cast<const __nv_bfloat16*>(v) + off;
    const bool vec = aligned16(kh) && aligned16(vh) && p.kv_token_stride % 8 == 0;
    load_kv_tile<__nv_bfloat16, D>(kh, vh, p.kv_token_stride, kb, n_valid, vec, Ks, Vs);
  } else {
    const float* kh = static_cast<const float*>(k) + off;
    const float* vh = static_cast<const float*>(v) + off;
    const bool vec = aligned16(kh) && aligned16(vh) && p.kv_token_stride % 4 == 0;
    load_kv_tile<float, D>(kh, vh, p.kv_token_stride, kb, n_valid, vec, Ks, Vs);
  }
}

// grid (ceil(n_q / BQ), n_heads), block kThreads, dynamic smem PrefillShape<D>::kSmemBytes.
template <int D>
__global__ void __launch_bounds__(kThreads)
    prefill_kernel(const __grid_constant__ DeviceArgs args) {
  using S = PrefillShape<D>;
  constexpr int RW = S::RW, BQ = S::BQ, DJ = S::DJ, KS = S::KS;
  extern __shared__ float4 smem_f4[];
  float* Qs = reinterpret_cast<float*>(smem_f4);  // [BQ][D], pre-scaled queries
  float* Ks = Qs + S::Q_FLOATS;                   // [kBK][KS]
  float* Vs = Ks + S::K_FLOATS;                   // [kBK][D]
  float* Ps = Vs + S::V_FLOATS;                   // [kWarps][RW][kBK], this tile's probabilities

  const auto& p = params_as<AttentionParams>(args);
  const int h = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  // Under a causal mask later query tiles see more keys: start them first.
  const long long q0 = ((long long)gridDim.x - 1 - blockIdx.x) * BQ;
  const int nq_tile = (int)min((long long)BQ, p.n_q - q0);

  for (int i = threadIdx.x; i < BQ * D; i += kThreads) {
    const int r = i / D, d = i % D;
    Qs[i] = r < nq_tile ? load_any(args.ptr[0], (q0 + r) * p.q_token_stride + (long long)h * D + d,
                                   p.io_dtype) *
                              p.scale
                        : 0.0f;
  }

  // Slots this tile of queries can see. Where slot == position (no ring wrap) the causal and
  // window bounds cut the slot range and every tile outside it is skipped; a wrapped ring is
  // scanned whole (its capacity is about the window anyway) and masked per key.
  const long long qpos_lo = p.q_pos0 + q0, qpos_hi = p.q_pos0 + q0 + nq_tile - 1;
  long long s_begin = 0, s_end = p.n_slots;
  if (p.kv_len <= p.capacity) {
    if (p.causal) s_end = min(s_end, qpos_hi + 1);
    if (p.window > 0) s_begin = max(s_begin, qpos_lo - p.window + 1);
  }

  float m[RW], l[RW], o[RW][DJ];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int j = 0; j < DJ; ++j) o[r][j] = 0.0f;
  }
  float* Pw = Ps + warp * RW * kBK;

  for (long long kb = s_begin; kb < s_end; kb += kBK) {
    // Everyone is done with the previous tile's Ks/Vs (and, the first time, Qs is complete).
    __syncthreads();
    load_kv_tile_any<D>(p, args.ptr[1], args.ptr[2], kb, (int)min((long long)kBK, s_end - kb), Ks,
                        Vs);
    __syncthreads();

    // Scores of this warp's rows against key `lane`.
    float s[RW];
#pragma unroll
    for (int r = 0; r < RW; ++r) s[r] = 0.0f;
    const float* kr = Ks + lane * KS;
#pragma unroll 4
    for (int d = 0; d < D; d += 4) {
      const float k0 = kr[d], k1 = kr[d + 1], k2 = kr[d + 2], k3 = kr[d + 3];
#pragma unroll
      for (int r = 0; r < RW; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(Qs + (warp * RW + r) * D + d);
        s[r] = fmaf(qv.x, k0, fmaf(qv.y, k1, fmaf(qv.z, k2, fmaf(qv.w, k3, s[r]))));
      }
    }

    // Online softmax per row; P goes to this warp's slice of shared memory.
    const long long key = kb + lane;
    const bool key_ok = key < s_end;
    const long long kpos = key_ok ? ops::attention_slot_position(key, p.kv_len, p.capacity) : 0;
    float corr[RW];
#pragma unroll
    for (int r = 0; r < RW; ++r) {
      const int row = warp * RW + r;
      const bool vis = key_ok && row < nq_tile && attn_visible(p, qpos_lo + row, kpos);
      const float x = vis ? attn_softcap(p, s[r]) : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(x));
      const float pr = exp_diff(x, m_new);
      corr[r] = exp_diff(m[r], m_new);
      l[r] = l[r] * corr[r] + warp_sum(pr);
      m[r] = m_new;
      Pw[r * kBK + lane] = pr;
    }
    __syncwarp();

    // O = O * corr + P V over this tile (P of invalid keys is 0 and their V rows are zeros).
#pragma unroll
    for (int r = 0; r < RW; ++r) {
#pragma unroll
      for (int j = 0; j < DJ; ++j) o[r][j] *= corr[r];
    }
    for (int c = 0; c < kBK; c += 4) {
      float4 pv[RW];
#pragma unroll
      for (int r = 0; r < RW; ++r) pv[r] = *reinterpret_cast<const float4*>(Pw + r * kBK + c);
#pragma unroll
      for (int j = 0; j < DJ; ++j) {
        const int d = lane + 32 * j;
        if (D % 32 != 0 && d >= D) continue;
        const float v0 = Vs[c * D + d], v1 = Vs[(c + 1) * D + d];
        const float v2 = Vs[(c + 2) * D + d], v3 = Vs[(c + 3) * D + d];
#pragma unroll
        for (int r = 0; r < RW; ++r) {
          o[r][j] =
              fmaf(pv[r].x, v0, fmaf(pv[r].y, v1, fmaf(pv[r].z, v2, fmaf(pv[r].w, v3, o[r][j]))));
        }
      }
    }
    // The next iteration's first __syncthreads orders these Pw reads before its Pw writes.
  }

#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int row = warp * RW + r;
    if (row >= nq_tile) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
    for (int j = 0; j < DJ; ++j) {
      const int d = lane + 32 * j;
      if (d < D) {
        store_any(args.ptr[3], (q0 + row) * p.out_token_stride + (long long)h * D + d, p.io_dtype,
                  o[r][j] * inv);
      }
    }
  }
}

template <int D>
LaunchConfig prefill_config(const DeviceArgs& args) {
  using S = PrefillShape<D>;
  const auto& p = params_as<AttentionParams>(args);
  const void* func = reinterpret_cast<const void*>(&prefill_kernel<D>);
  if (S::kSmemBytes > 48 * 1024) {
    // Opt in to more than the default 48 KiB of dynamic shared memory. Set on every configure
    // (cheap next to a prefill) because the attribute belongs to the current device.
    cudaFuncSetAttribute(func, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(S::kSmemBytes));
  }
  const long long tiles = (p.n_q + S::BQ - 1) / S::BQ;
  return {
      func,
      dim3(static_cast<unsigned int>(tiles < 1 ? 1 : tiles), static_cast<unsigned int>(p.n_heads)),
      dim3(kThreads), S::kSmemBytes};
}

}  // namespace

ConfigureFn attention_prefill_configure(std::int64_t head_dim) {
  switch (head_dim) {
    case 64:
      return &prefill_config<64>;
    case 80:
      return &prefill_config<80>;
    case 96:
      return &prefill_config<96>;
    case 128:
      return &prefill_config<128>;
    case 256:
      return &prefill_config<256>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
