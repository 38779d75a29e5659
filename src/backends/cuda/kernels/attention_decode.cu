// Decode attention (one query token per head) over the head-major KV cache, split over KV chunks:
// a partial pass per (chunk, KV head) and a log-sum-exp merge over the chunks.
#include "backends/cuda/kernels/attention_common.cuh"
#include "backends/cuda/kernels/attention_kernels.h"

namespace mlxn::cuda {
namespace {

using ops::AttentionParams;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
// A block serves G query heads of one KV group (G = 1, 4 or 8 from the spec's "group": the
// smallest that covers the group, so registers hold no unused heads). Each K/V row is read once
// per block, so groups up to 8 (Llama-3: 4) read the cache once; bigger groups (MQA) take
// ceil(group / 8) blocks.
constexpr int kMergeThreads = 128;
// Slots a row group loads before folding any of them in (see the chunk loop).
constexpr int kRowsInFlight = 2;

constexpr int pow2_at_least(int n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// How a K/V row of D elements of T maps onto threads: a "row group" of TG lanes reads one row in
// 16-byte packs (E elements), lane t taking packs t, t + TG, ... (NP of them, some lanes idle
// where D / E is not a power of two). Consecutive row groups read consecutive rows, so a warp
// streams 32 / TG adjacent rows of the head-major cache.
template <class T, int D>
struct DecodeShape {
  static constexpr int E = 16 / sizeof(T);
  static constexpr int NPACK = D / E;
  static_assert(D % E == 0, "head_dim is a whole number of 16-byte packs");
  static constexpr int TG = pow2_at_least(NPACK) < 32 ? pow2_at_least(NPACK) : 32;
  static constexpr int NP = (NPACK + TG - 1) / TG;
  static constexpr int EPT = NP * E;  // elements per thread
  static constexpr int GROUPS = kThreads / TG;
};

// grid (n_chunks, n_kv_heads * ceil(group / kMaxGroup)), block kThreads.
// Each row group walks the chunk's slots with stride GROUPS keeping an online softmax (max m,
// sum l, accumulator acc over its EPT elements) per query head; row groups then merge within the
// warp by shuffles and across warps through shared memory.
template <class T, int D, int kMaxGroup>
__global__ void __launch_bounds__(kThreads) decode_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  using S = DecodeShape<T, D>;
  constexpr int E = S::E, TG = S::TG, NP = S::NP, EPT = S::EPT;
  __shared__ float sm_acc[kWarps][kMaxGroup][D];
  __shared__ float sm_m[kWarps][kMaxGroup];
  __shared__ float sm_l[kWarps][kMaxGroup];

  const auto& p = params_as<AttentionParams>(args);
  const int group = p.n_heads / p.n_kv_heads;
  const int n_sub = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / n_sub;
  const int sub = blockIdx.y % n_sub;
  const int h0 = kvh * group + sub * kMaxGroup;  // first query head of this block
  const int gh = min(kMaxGroup, group - sub * kMaxGroup);
  const int chunk = blockIdx.x;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int t = threadIdx.x % TG;
  const int grp = threadIdx.x / TG;

  const T* k = static_cast<const T*>(args.ptr[1]) + kvh * p.kv_head_stride;
  const T* v = static_cast<const T*>(args.ptr[2]) + kvh * p.kv_head_stride;
  const bool vec = aligned16(k) && aligned16(v) && p.kv_token_stride % E == 0;

  // This thread's slice of each query head, pre-scaled (scale * q.k == (scale * q).k).
  float qr[kMaxGroup][EPT];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
#pragma unroll
    for (int pp = 0; pp < NP; ++pp) {
      const int pk = t + TG * pp;
#pragma unroll
      for (int j = 0; j < E; ++j) {
        qr[h][pp * E + j] =
            h < gh && pk < S::NPACK
                ? load_any(args.ptr[0], (long long)(h0 + h) * D + pk * E + j, p.io_dtype) * p.scale
                : 0.0f;
      }
    }
  }

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][EPT];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int j = 0; j < EPT; ++j) acc[h][j] = 0.0f;
  }

  const long long c0 = (long long)chunk * p.chunk_size;
  const long long c1 = min((long long)p.n_slots, c0 + (long long)p.chunk_size);
  // Folds one slot (its K/V elements in kf/vf) into the online softmax of every head.
  auto absorb = [&](bool active, const float(&kf)[EPT], const float(&vf)[EPT]) {
    float dot[kMaxGroup];
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      float d = 0.0f;
#pragma unroll
      for (int j = 0; j < EPT; ++j) d = fmaf(qr[h][j], kf[j], d);
      dot[h] = d;
    }
#pragma unroll
    for (int off = TG / 2; off > 0; off >>= 1) {
#pragma unroll
      for (int h = 0; h < kMaxGroup; ++h) dot[h] += __shfl_xor_sync(0xffffffffu, dot[h], off);
    }
    if (!active) return;
#pragma unroll
      for (int h = 0; h < kMaxGroup; ++h) {
        if (h >= gh) continue;
        const float x = attn_softcap(p, dot[h]);
        if (x > m[h]) {
          const float corr = exp_diff(m[h], x);
          l[h] = l[h] * corr + 1.0f;
#pragma unroll
        for (int j = 0; j < EPT; ++j) acc[h][j] = fmaf(acc[h][j], corr, vf[j]);
        m[h] = x;
      } else {
        const float w = expf(x - m[h]);
        l[h] += w;
#pragma unroll
        for (int j = 0; j < EPT; ++j) acc[h][j] = fmaf(w, vf[j], acc[h][j]);
      }
    }
  };
  // The loop bound is uniform over the block, so every lane reaches every shuffle; lanes of an
  // invisible or out-of-range slot load zeros and skip the update. Each row group requests
  // kRowsInFlight slots before using any: a pass is one round trip to memory, and at a long
  // context a chunk takes many passes (docs/perf.md, issue 7).
  for (long long base = c0; base < c1; base += S::GROUPS * kRowsInFlight) {
    bool active[kRowsInFlight];
    float kf[kRowsInFlight][EPT], vf[kRowsInFlight][EPT];
#pragma unroll
    for (int u = 0; u < kRowsInFlight; ++u) {
      const long long s = base + grp + (long long)u * S::GROUPS;
      active[u] = s < c1 &&
                  attn_visible(p, p.q_pos0, ops::attention_slot_position(s, p.kv_len, p.capacity));
#pragma unroll
      for (int pp = 0; pp < NP; ++pp) {
        const int pk = t + TG * pp;
        if (active[u] && pk < S::NPACK) {
          const long long off = s * p.kv_token_stride + pk * E;
          load_f32<T, E>(k + off, vec, kf[u] + pp * E);
          load_f32<T, E>(v + off, vec, vf[u] + pp * E);
        } else {
#pragma unroll
          for (int j = 0; j < E; ++j) kf[u][pp * E + j] = vf[u][pp * E + j] = 0.0f;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kRowsInFlight; ++u) absorb(active[u], kf[u], vf[u]);
  }

  // Merge the row groups of each warp: lanes t and t ^ off (off >= TG) hold the same elements.
#pragma unroll
  for (int off = TG; off < 32; off <<= 1) {
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[h], off);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[h], off);
      const float big = fmaxf(m[h], m2);
      const float a = exp_diff(m[h], big), b = exp_diff(m2, big);
      l[h] = l[h] * a + l2 * b;
#pragma unroll
      for (int j = 0; j < EPT; ++j) {
        const float acc2 = __shfl_xor_sync(0xffffffffu, acc[h][j], off);
        acc[h][j] = acc[h][j] * a + acc2 * b;
      }
      m[h] = big;
    }
  }
  if (lane < TG) {  // the warp's first row group (t == lane) publishes the warp's state
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h >= gh) continue;
#pragma unroll
      for (int pp = 0; pp < NP; ++pp) {
        const int pk = t + TG * pp;
        if (pk < S::NPACK) {
#pragma unroll
          for (int j = 0; j < E; ++j) sm_acc[warp][h][pk * E + j] = acc[h][pp * E + j];
        }
      }
      if (lane == 0) {
        sm_m[warp][h] = m[h];
        sm_l[warp][h] = l[h];
      }
    }
  }
  __syncthreads();

  // Merge the warps; write out (one chunk) or this chunk's partial.
  for (int idx = threadIdx.x; idx < gh * D; idx += kThreads) {
    const int h = idx / D, d = idx % D;
    float big = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) big = fmaxf(big, sm_m[w][h]);
    float sum = 0.0f, a = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float wt = exp_diff(sm_m[w][h], big);
      sum += wt * sm_l[w][h];
      a += wt * sm_acc[w][h][d];
    }
    const long long hq = h0 + h;
    if (p.n_chunks == 1) {
      store_any(args.ptr[3], hq * D + d, p.io_dtype, sum > 0.0f ? a / sum : 0.0f);
    } else {
      float* ws = static_cast<float*>(args.ptr[3]);
      const long long item = hq * p.n_chunks + chunk;
      ws[item * D + d] = a;
      if (d == 0) {
        float* ml = ws + (long long)p.n_heads * p.n_chunks * D + item * 2;
        ml[0] = big;
        ml[1] = sum;
      }
    }
  }
}

// grid (n_heads), block kMergeThreads: out[h, d] = sum_c e^(m_c - M) acc_c[d] / sum_c e^(m_c - M)
// l_c. The chunks are split over slices of the block (a slice covers the head's dims, 4 a thread)
// so that each thread has only a few chunks to fold: at a long context there are up to a few
// hundred, and a thread walking all of them in turn made the merge a long chain of round trips.
__global__ void __launch_bounds__(kMergeThreads)
    decode_merge_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ float sm_max[kMergeThreads / 32];
  __shared__ float sm_acc[kMergeThreads][4];
  __shared__ float sm_l[kMergeThreads];
  const auto& p = params_as<AttentionParams>(args);
  const float* ws = static_cast<const float*>(args.ptr[0]);
  const long long hq = blockIdx.x;
  const int n_chunks = p.n_chunks;
  const int dim = p.head_dim;  // a multiple of 4, at most 256
  const float* ml = ws + (long long)p.n_heads * n_chunks * dim + hq * n_chunks * 2;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  float big = -INFINITY;
  for (int c = tid; c < n_chunks; c += kMergeThreads) big = fmaxf(big, ml[2 * c]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) big = fmaxf(big, __shfl_xor_sync(0xffffffffu, big, off));
  if (lane == 0) sm_max[warp] = big;
  __syncthreads();
#pragma unroll
  for (int w = 0; w < kMergeThreads / 32; ++w) big = fmaxf(big, sm_max[w]);

  const int quads = dim / 4;
  const int slices = kMergeThreads / quads;
  const int q = tid % quads, slice = tid / quads;
  float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, l = 0.0f;
  if (slice < slices) {
#pragma unroll 4
    for (int c = slice; c < n_chunks; c += slices) {
      const float wt = exp_diff(ml[2 * c], big);
      l += wt * ml[2 * c + 1];
      const float* v = ws + (hq * n_chunks + c) * dim + 4 * q;
#pragma unroll
      for (int j = 0; j < 4; ++j) a[j] = fmaf(wt, v[j], a[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) sm_acc[tid][j] = a[j];
  sm_l[tid] = l;
  __syncthreads();
  if (slice == 0) {
    float sum = 0.0f, r[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < slices; ++s) {
      sum += sm_l[s * quads + q];
#pragma unroll
      for (int j = 0; j < 4; ++j) r[j] += sm_acc[s * quads + q][j];
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      store_any(args.ptr[1], hq * dim + 4 * q + j, p.io_dtype, sum > 0.0f ? r[j] / sum : 0.0f);
    }
  }
}

template <class T, int D, int kMaxGroup>
LaunchConfig decode_config(const DeviceArgs& args) {
  const auto& p = params_as<AttentionParams>(args);
  const int group = p.n_heads / p.n_kv_heads;
  const unsigned int n_sub = (group + kMaxGroup - 1) / kMaxGroup;
  return {reinterpret_cast<const void*>(&decode_kernel<T, D, kMaxGroup>),
          dim3(static_cast<unsigned int>(p.n_chunks), p.n_kv_heads * n_sub), dim3(kThreads), 0,
          true};
}

LaunchConfig merge_config(const DeviceArgs& args) {
  const auto& p = params_as<AttentionParams>(args);
  return {reinterpret_cast<const void*>(&decode_merge_kernel),
          dim3(static_cast<unsigned int>(p.n_heads)), dim3(kMergeThreads), 0, true};
}

template <class T, int G>
ConfigureFn decode_for(std::int64_t head_dim) {
  switch (head_dim) {
    case 64:
      return &decode_config<T, 64, G>;
    case 80:
      return &decode_config<T, 80, G>;
    case 96:
      return &decode_config<T, 96, G>;
    case 128:
      return &decode_config<T, 128, G>;
    case 256:
      return &decode_config<T, 256, G>;
    default:
      return nullptr;
  }
}

template <class T>
ConfigureFn decode_for(std::int64_t head_dim, int heads_per_block) {
  switch (heads_per_block) {
    case 1:
      return decode_for<T, 1>(head_dim);
    case 4:
      return decode_for<T, 4>(head_dim);
    case 8:
      return decode_for<T, 8>(head_dim);
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn attention_decode_configure(DType kv, std::int64_t head_dim, int heads_per_block) {
  switch (kv) {
    case DType::F32:
      return decode_for<float>(head_dim, heads_per_block);
    case DType::F16:
      return decode_for<__half>(head_dim, heads_per_block);
    case DType::BF16:
      return decode_for<__nv_bfloat16>(head_dim, heads_per_block);
    default:
      return nullptr;
  }
}

ConfigureFn attention_decode_merge_configure() {
  return &merge_config;
}

}  // namespace mlxn::cuda
