// argmax and top-k kernels: one block per row; top-k finds the k-th largest key with a radix
// descent, gathers the k winners (ties by lower index) and sorts them in shared memory.
#include "backends/cuda/kernels/sampling_kernels.h"
#include "backends/cuda/kernels/sampling_select.cuh"

namespace mlxn::cuda {
namespace {

using namespace rowsel;

template <class T>
__device__ __forceinline__ bool row_vec_ok(const T* x, long long cols) {
  return cols % (16 / sizeof(T)) == 0 && aligned16(x);
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads)
    argmax_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ Smem sm;
  const auto& p = params_as<ops::ArgmaxParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  int* idx = static_cast<int*>(args.ptr[1]);
  float* val = static_cast<float*>(args.ptr[2]);
  const bool vec = row_vec_ok(x, p.cols);
  for (long long r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const T* row = x + r * p.cols;
    const unsigned long long best = row_max_word(sm, row, p.cols, vec);
    if (threadIdx.x == 0) {
      const unsigned i = ops::rank_word_index(best);
      idx[r] = static_cast<int>(i);
      val[r] = to_f32(row[i]);
    }
  }
}

// Candidates of one row: the rank words of the k winners, sorted in place.
constexpr int kMaxK = static_cast<int>(ops::kMaxTopK);

template <class T>
__global__ void __launch_bounds__(kMaxThreads)
    top_k_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ Smem sm;
  __shared__ unsigned long long cand[kMaxK];
  __shared__ unsigned n_above;
  const auto& p = params_as<ops::TopKParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  float* values = static_cast<float*>(args.ptr[1]);
  int* indices = static_cast<int*>(args.ptr[2]);
  const int k = static_cast<int>(p.k);
  int n_sort = 1;  // power of two >= k
  while (n_sort < k) n_sort <<= 1;
  const bool vec = row_vec_ok(x, p.cols);
  auto no_weight = [](float) { return 0.0f; };
  for (long long r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const T* row = x + r * p.cols;
    // 1. The key of rank k-1: `c` elements lie above it, and k - c of its ties are taken.
    const Descent d =
        descend<false>(sm, row, p.cols, vec, Goal{Fit::Rank, unsigned(k - 1), 0.0f}, no_weight);
    const unsigned above = d.c;
    const unsigned need = static_cast<unsigned>(k) - above;
    for (int i = threadIdx.x; i < n_sort; i += blockDim.x) cand[i] = 0;  // 0 sorts last
    if (threadIdx.x == 0) n_above = 0;
    __syncthreads();
    // 2. Gather: every key above the boundary, and the first `need` ties in index order (a block
    //    scan over each chunk ranks the ties).
    constexpr int V = 16 / sizeof(T);
    const int per = vec ? V : 1;
    const long long n_units = vec ? p.cols / V : p.cols;
    unsigned tie_base = 0;
    for (long long ub = 0; ub < n_units; ub += blockDim.x) {
      const long long u = ub + threadIdx.x;
      const bool ok = u < n_units;
      unsigned keys[V];
      if (ok) {
        if (vec) {
          const Pack<T, V> pk = load_pack<T, V>(row + u * V);
#pragma unroll
          for (int j = 0; j < V; ++j) keys[j] = order_key(to_f32(pk.v[j]));
        } else {
          keys[0] = order_key(to_f32(row[u]));
        }
      }
      unsigned ties = 0;
      for (int j = 0; j < per && ok; ++j) {
        if (keys[j] > d.key) {
          const unsigned slot = atomicAdd(&n_above, 1u);
          if (slot < above) cand[slot] = rank_word(keys[j], static_cast<unsigned>(u * per + j));
        } else if (keys[j] == d.key) {
          ++ties;
        }
      }
      unsigned total;
      unsigned rank = tie_base + block_exclusive_scan(ties, sm.redu, total);
      for (int j = 0; j < per && ok && ties != 0; ++j) {
        if (keys[j] != d.key) continue;
        if (rank < need) {
          cand[above + rank] = rank_word(keys[j], static_cast<unsigned>(u * per + j));
        }
        ++rank;
      }
      tie_base += total;
    }
    __syncthreads();
    // 3. Bitonic sort of the n_sort words, descending.
    for (int size = 2; size <= n_sort; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < n_sort / 2; i += blockDim.x) {
          const int lo = 2 * i - (i & (stride - 1));
          const int hi = lo + stride;
          const bool desc = (lo & size) == 0;
          const unsigned long long a = cand[lo], b = cand[hi];
          if ((a < b) == desc) {
            cand[lo] = b;
            cand[hi] = a;
          }
        }
        __syncthreads();
      }
    }
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
      values[r * k + j] = ops::key_value(static_cast<unsigned>(cand[j] >> 32));
      indices[r * k + j] = static_cast<int>(ops::rank_word_index(cand[j]));
    }
    __syncthreads();  // cand and n_above are reset for the next row
  }
}

template <class T>
LaunchConfig argmax_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::ArgmaxParams>(args);
  return {reinterpret_cast<const void*>(&argmax_kernel<T>), dim3(row_blocks(p.rows)),
          dim3(threads_for(p.cols, sizeof(T))), 0, true};
}

template <class T>
LaunchConfig top_k_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::TopKParams>(args);
  return {reinterpret_cast<const void*>(&top_k_kernel<T>), dim3(row_blocks(p.rows)),
          dim3(threads_for(p.cols, sizeof(T))), 0, true};
}

}  // namespace

ConfigureFn argmax_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &argmax_config<float>;
    case DType::F16:
      return &argmax_config<__half>;
    case DType::BF16:
      return &argmax_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

ConfigureFn top_k_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &top_k_config<float>;
    case DType::F16:
      return &top_k_config<__half>;
    case DType::BF16:
      return &top_k_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
