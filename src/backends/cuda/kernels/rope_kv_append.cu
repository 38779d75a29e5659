// rope_kv_append: rope of q and k in place and the append of the rotated k and of v to the
// head-major caches, in one launch (a decode step's three smallest kernels). The float math is
// rope.cu's and kv_cache_append.cu's expression for expression, so the results equal the
// three-kernel sequence bit for bit.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/rope_angle.cuh"
#include "backends/cuda/kernels/rope_kv_append_kernels.h"
#include "ops/rope_kv_append_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr long long kMaxTokenBlocks = 1ll << 20;  // grid.x; further tokens are strided over
constexpr long long kMaxRowBlocks = 65535;        // grid.y limit
// Rows are split over grid.y only while tokens alone leave the GPU short of blocks: a decode step
// (one token) spreads its rows over many small blocks, whose memory latencies then overlap; a
// prefill keeps one row block per token, and a thread reuses each sine/cosine for several rows.
constexpr long long kTargetBlocks = 1024;

// The rows of a token, in this order: the n_heads heads of q and the n_kv_heads heads of k (both
// rotated; k's also appended) and the n_kv_heads heads of v (appended only). Block: x over the
// pairs of a row (and over the dims of a copied row), y over rows; grid: x over tokens, y over row
// slices. A decode step of Llama-3-8B (32 q heads, 8 kv heads, head_dim 128) runs 12 blocks of
// 64 x 4 threads: one row per thread row, one sine/cosine and one pair per thread. Every element is
// read and written by one thread only (the rotated k is appended by the thread that rotated it,
// the pass-through dims are never written in place), so there is no hazard inside the kernel.
// tx is a multiple of 32: a warp shares threadIdx.y, so the row-kind branches are warp-uniform.
template <class Ts, class Td>
__global__ void __launch_bounds__(kThreads)
    rope_kv_append_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::RopeKvAppendParams>(args);
  Ts* q = static_cast<Ts*>(args.ptr[0]);
  Ts* k = static_cast<Ts*>(args.ptr[1]);
  const Ts* v = static_cast<const Ts*>(args.ptr[2]);
  const int* positions = static_cast<const int*>(args.ptr[3]);
  const float* inv_freq = static_cast<const float*>(args.ptr[4]);
  Td* k_cache = static_cast<Td*>(args.ptr[5]);
  Td* v_cache = static_cast<Td*>(args.ptr[6]);
  const long long half = p.rotary_dim / 2;
  const bool neox = p.layout == ops::kRopeNeox;
  const long long n_rot = p.n_heads + p.n_kv_heads;  // rotated rows: q heads, then k heads
  const long long n_rows = n_rot + p.n_kv_heads;     // then v heads
  const long long row_start = static_cast<long long>(blockIdx.y) * blockDim.y + threadIdx.y;
  const long long row_step = static_cast<long long>(gridDim.y) * blockDim.y;

  for (long long t = blockIdx.x; t < p.n_tokens; t += gridDim.x) {
    const int pos_t = positions[t];  // the same for the whole block: branches on it are uniform
    const long long pos = pos_t;
    // The cache slot of this token's k and v rows, or -1 where they are not appended
    // (kv_cache_append's rules).
    long long slot = -1;
    if (p.n_kv_heads > 0) {
      if (pos < 0 || (!p.ring && pos >= p.capacity)) {
        if (threadIdx.x == 0 && threadIdx.y == 0 && blockIdx.y == 0) {
          report_status(args, ops::kStatusKvPositionOutOfRange, t);
        }
      } else {
        slot = p.ring ? pos % p.capacity : pos;
      }
    }
    if (slot >= 0 && p.ring && p.n_tokens > 1) {
      // Skip a token that a later position of this call overwrites anyway (and must win).
      bool superseded = false;
      for (long long i = threadIdx.y * blockDim.x + threadIdx.x; i < p.n_tokens;
           i += blockDim.x * blockDim.y) {
        const long long other = positions[i];
        superseded |= other > pos && other % p.capacity == slot;
      }
      if (__syncthreads_or(superseded)) slot = -1;
    }

    if (row_start < n_rot) {  // threads of v rows need no sine or cosine
      const float pf = static_cast<float>(pos_t);
      for (long long i = threadIdx.x; i < half; i += blockDim.x) {
        float sn, cs;
        rope_sin_cos(pf, inv_freq[i], p.scale, sn, cs);
        const long long u = neox ? i : 2 * i;
        const long long w = neox ? i + half : 2 * i + 1;
        for (long long r = row_start; r < n_rot; r += row_step) {
          const bool is_q = r < p.n_heads;
          const long long h = is_q ? r : r - p.n_heads;
          Ts* x =
              is_q ? q + (t * p.n_heads + h) * p.head_dim : k + (t * p.n_kv_heads + h) * p.head_dim;
          const float xu = to_f32(x[u]);
          const float xv = to_f32(x[w]);
          const Ts ou = from_f32<Ts>(xu * cs - xv * sn);
          const Ts ow = from_f32<Ts>(xv * cs + xu * sn);
          x[u] = ou;
          x[w] = ow;
          if (!is_q && slot >= 0) {
            // kv_cache_append's conversion of the stored (rounded) k.
            Td* dst = k_cache + (h * p.capacity + slot) * p.head_dim;
            dst[u] = from_f32<Td>(to_f32(ou));
            dst[w] = from_f32<Td>(to_f32(ow));
          }
        }
      }
    }
    if (slot >= 0) {
      // The rest of the appended rows: k's pass-through dims (unchanged by rope) and all of v.
      for (long long r = row_start; r < n_rows; r += row_step) {
        if (r < p.n_heads) continue;
        const bool is_k = r < n_rot;
        const long long h = is_k ? r - p.n_heads : r - n_rot;
        const Ts* src = (is_k ? k : v) + (t * p.n_kv_heads + h) * p.head_dim;
        Td* dst = (is_k ? k_cache : v_cache) + (h * p.capacity + slot) * p.head_dim;
        for (long long d = (is_k ? p.rotary_dim : 0) + threadIdx.x; d < p.head_dim;
             d += blockDim.x) {
          dst[d] = from_f32<Td>(to_f32(src[d]));
        }
      }
    }
  }
}

template <class Ts, class Td>
LaunchConfig rope_kv_append_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::RopeKvAppendParams>(args);
  const long long half = p.rotary_dim / 2;
  long long tx = (half + 31) / 32 * 32;
  if (tx > 128) tx = 128;
  if (tx < 32) tx = 32;
  const long long ty = kThreads / tx;
  const long long n_rows = p.n_heads + 2 * p.n_kv_heads;
  long long token_blocks = p.n_tokens < 1 ? 1 : p.n_tokens;
  if (token_blocks > kMaxTokenBlocks) token_blocks = kMaxTokenBlocks;
  long long row_blocks = (n_rows + ty - 1) / ty;
  const long long wanted = (kTargetBlocks + token_blocks - 1) / token_blocks;
  if (row_blocks > wanted) row_blocks = wanted;
  if (row_blocks > kMaxRowBlocks) row_blocks = kMaxRowBlocks;
  if (row_blocks < 1) row_blocks = 1;
  return {reinterpret_cast<const void*>(&rope_kv_append_kernel<Ts, Td>),
          dim3(static_cast<unsigned int>(token_blocks), static_cast<unsigned int>(row_blocks)),
          dim3(static_cast<unsigned int>(tx), static_cast<unsigned int>(ty)), 0, true};
}

template <class Ts>
ConfigureFn config_for(DType dst) {
  switch (dst) {
    case DType::F32:
      return &rope_kv_append_config<Ts, float>;
    case DType::F16:
      return &rope_kv_append_config<Ts, __half>;
    case DType::BF16:
      return &rope_kv_append_config<Ts, __nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn rope_kv_append_configure(DType src, DType dst) {
  switch (src) {
    case DType::F32:
      return config_for<float>(dst);
    case DType::F16:
      return config_for<__half>(dst);
    case DType::BF16:
      return config_for<__nv_bfloat16>(dst);
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
