// Dense expert-routed matmul (ops::matmul_id) for decode and small prefill: one block per
// (token-slot assignment, tile of output rows). Each warp (or group of warps, when there are few
// rows) streams one row of the chosen expert with 16-byte loads and accumulates in f32; only the
// experts the router picked are ever read, so a decode step moves top_k experts' bytes, not all.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/matmul_kernels.h"
#include "ops/matmul_id_params.h"
#include "ops/op_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps
constexpr int kWarps = kThreads / 32;
constexpr long long kMaxGridY = 65535;

/// Weight rows per block: one warp per row when the launch has rows enough to fill the GPU,
/// else several warps split each row's k (more loads in flight when there are few rows).
__host__ __device__ inline int rows_per_block(const ops::MatmulIdParams& p) {
  const long long rows = p.n * p.m * p.top_k;
  return rows >= 4096 ? 8 : rows >= 1024 ? 4 : 2;
}

// out[a, row] = x_a . w[ids[a], row, :] for this block's rows, a over blockIdx.y (strided).
template <class T>
__global__ void __launch_bounds__(kThreads)
    dense_matmul_id_kernel(const __grid_constant__ DeviceArgs args) {
  __shared__ float partial[kWarps];
  const auto& p = params_as<ops::MatmulIdParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* w = static_cast<const T*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  const int* ids = static_cast<const int*>(args.ptr[3]);
  constexpr int V = 16 / sizeof(T);
  const int rpb = rows_per_block(p);
  const int warps_per_row = kWarps / rpb;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long long row0 = static_cast<long long>(blockIdx.x) * rpb;
  const long long row = row0 + warp / warps_per_row;
  const int part = warp % warps_per_row;  // which slice of k this warp takes
  const bool live = row < p.n;
  // Every x row and weight row starts 16-byte aligned when k (hence every stride) is a multiple
  // of V and both bases are aligned; the test is uniform over the launch.
  const bool vec = p.k % V == 0 && aligned16(x) && aligned16(w);
  const long long n_assign = p.m * p.top_k;

  for (long long a = blockIdx.y; a < n_assign; a += gridDim.y) {
    const long long e = ids[a];
    if (e < 0 || e >= p.n_experts) {
      // Uniform over the block (one a per iteration), so no barrier below is skipped unevenly.
      // One block reports; every block zeroes its outputs so nothing stale is left behind.
      if (threadIdx.x == 0 && blockIdx.x == 0) {
        report_status(args, ops::kStatusExpertIdOutOfRange, static_cast<unsigned long long>(a));
      }
      if (threadIdx.x < rpb && row0 + threadIdx.x < p.n) {
        out[a * p.n + row0 + threadIdx.x] = from_f32<T>(0.0f);
      }
      continue;
    }
    const T* xr = x + (a / p.top_k) * p.x_token_stride + (a % p.top_k) * p.x_slot_stride;
    const T* wr = w + (e * p.n + (live ? row : 0)) * p.k;
    float acc = 0.0f;
    if (live) {
      if (vec) {
        const long long n_vec = p.k / V;
        const int stride = 32 * warps_per_row;
        long long c = static_cast<long long>(part) * 32 + lane;
        // Four independent 16-byte weight loads per lane per iteration keep enough bytes in
        // flight to stream the expert at memory speed; x is re-read by every warp from L1/L2.
        for (; c + 3 * stride < n_vec; c += 4 * stride) {
          Pack<T, V> wv[4], xv[4];
#pragma unroll
          for (int u = 0; u < 4; ++u) wv[u] = load_pack<T, V>(wr + (c + u * stride) * V);
#pragma unroll
          for (int u = 0; u < 4; ++u) xv[u] = load_pack<T, V>(xr + (c + u * stride) * V);
#pragma unroll
          for (int u = 0; u < 4; ++u) {
#pragma unroll
            for (int j = 0; j < V; ++j) acc = fmaf(to_f32(xv[u].v[j]), to_f32(wv[u].v[j]), acc);
          }
        }
        for (; c < n_vec; c += stride) {
          const Pack<T, V> wv = load_pack<T, V>(wr + c * V);
          const Pack<T, V> xv = load_pack<T, V>(xr + c * V);
#pragma unroll
          for (int j = 0; j < V; ++j) acc = fmaf(to_f32(xv.v[j]), to_f32(wv.v[j]), acc);
        }
      } else {
        for (long long c = static_cast<long long>(part) * 32 + lane; c < p.k;
             c += 32 * warps_per_row) {
          acc = fmaf(to_f32(xr[c]), to_f32(wr[c]), acc);
        }
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) partial[warp] = acc;
    __syncthreads();
    if (threadIdx.x < rpb) {
      const long long r = row0 + threadIdx.x;
      if (r < p.n) {
        float s = 0.0f;
        for (int i = 0; i < warps_per_row; ++i) s += partial[threadIdx.x * warps_per_row + i];
        out[a * p.n + r] = from_f32<T>(s);
      }
    }
    __syncthreads();  // partial is reused by the next assignment
  }
}

template <class T>
LaunchConfig dense_matmul_id_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::MatmulIdParams>(args);
  const int rpb = rows_per_block(p);
  long long bx = (p.n + rpb - 1) / rpb;
  long long by = p.m * p.top_k;
  if (bx < 1) bx = 1;
  if (by < 1) by = 1;
  if (by > kMaxGridY) by = kMaxGridY;
  return {reinterpret_cast<const void*>(&dense_matmul_id_kernel<T>),
          dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)), dim3(kThreads), 0};
}

}  // namespace

ConfigureFn dense_matmul_id_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &dense_matmul_id_config<float>;
    case DType::F16:
      return &dense_matmul_id_config<__half>;
    case DType::BF16:
      return &dense_matmul_id_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
