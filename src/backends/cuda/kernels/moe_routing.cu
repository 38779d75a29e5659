// MoE routing kernels: moe_route (one warp per token: top-k experts by repeated warp argmax over
// the router logits held in shared memory, then softmax or sigmoid weights) and moe_combine (the
// weighted sum of the k expert outputs per token, 16-byte packs along hidden).
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/sampling_kernels.h"
#include "ops/moe_routing_params.h"
#include "ops/sampling_params.h"

namespace mlxn::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kRouteWarps = 4;
constexpr long long kMaxRouteBlocks = 65535;

template <class T>
__global__ void __launch_bounds__(kRouteWarps * 32)
    moe_route_kernel(const __grid_constant__ DeviceArgs args) {
  // Order keys of each warp's token; a chosen expert's key is set to 0, below every real key.
  __shared__ unsigned keys[kRouteWarps][ops::kMaxExperts];
  const auto& p = params_as<ops::MoeRouteParams>(args);
  const T* logits = static_cast<const T*>(args.ptr[0]);
  int* ids = static_cast<int*>(args.ptr[1]);
  float* weights = static_cast<float*>(args.ptr[2]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int E = p.n_experts, K = p.k;
  unsigned* kw = keys[warp];
  // Warp-uniform loop: all lanes of a warp handle the same token.
  for (long long t = static_cast<long long>(blockIdx.x) * kRouteWarps + warp; t < p.n_tokens;
       t += static_cast<long long>(gridDim.x) * kRouteWarps) {
    const T* row = logits + t * E;
    for (int e = lane; e < E; e += 32) kw[e] = ops::order_key(to_f32(row[e]));
    __syncwarp();
    int my_id = 0;
    float my_x = 0.0f, x_max = 0.0f;
    for (int j = 0; j < K; ++j) {
      unsigned long long best = 0;
      for (int e = lane; e < E; e += 32) {
        const unsigned long long w = ops::rank_word(kw[e], static_cast<unsigned>(e));
        best = w > best ? w : best;
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        const unsigned long long o = __shfl_xor_sync(kFull, best, off);
        best = o > best ? o : best;
      }
      const unsigned id = ops::rank_word_index(best);
      const float x = ops::key_value(static_cast<unsigned>(best >> 32));
      if (j == 0) x_max = x;
      if (lane == j) {
        my_id = static_cast<int>(id);
        my_x = x;
      }
      __syncwarp();
      if (lane == static_cast<int>(id & 31u)) kw[id] = 0;  // the owner of the slot retires it
      __syncwarp();
    }
    float w = 0.0f;
    if (p.scoring == ops::kScoringSoftmax) {
      float all = 0.0f;
      for (int e = lane; e < E; e += 32) all += expf(to_f32(row[e]) - x_max);
      all = warp_sum(all);
      if (lane < K) w = expf(my_x - x_max) / all;
    } else if (lane < K) {
      w = 1.0f / (1.0f + expf(-my_x));
    }
    if (p.renormalize) w = w / warp_sum(w);
    if (lane < K) {
      ids[t * K + lane] = my_id;
      weights[t * K + lane] = w * p.scale;
    }
    __syncwarp();  // kw is rewritten for the next token
  }
}

template <class T>
LaunchConfig moe_route_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::MoeRouteParams>(args);
  long long blocks = (p.n_tokens + kRouteWarps - 1) / kRouteWarps;
  if (blocks < 1) blocks = 1;
  if (blocks > kMaxRouteBlocks) blocks = kMaxRouteBlocks;
  return {reinterpret_cast<const void*>(&moe_route_kernel<T>),
          dim3(static_cast<unsigned int>(blocks)), dim3(kRouteWarps * 32), 0};
}

constexpr int kCombineThreads = 256;
constexpr long long kMaxTokenBlocks = 65535;

// out[t, h] = sum_j w[t, j] * e[t, j, h] (+ g * shared[t, h]). grid.x covers hidden (packs),
// grid.y strides over tokens.
template <class T, bool kShared, bool kGate>
__global__ void __launch_bounds__(kCombineThreads)
    moe_combine_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::MoeCombineParams>(args);
  const T* e = static_cast<const T*>(args.ptr[0]);
  const float* w = static_cast<const float*>(args.ptr[1]);
  const T* shared = kShared ? static_cast<const T*>(args.ptr[2]) : nullptr;
  const T* gate = kGate ? static_cast<const T*>(args.ptr[3]) : nullptr;
  T* out = static_cast<T*>(args.ptr[kGate ? 4 : (kShared ? 3 : 2)]);
  const long long H = p.hidden, K = p.k;
  constexpr int V = 16 / sizeof(T);
  const bool vec = H % V == 0 && aligned16(e) && aligned16(out) && (!kShared || aligned16(shared));
  const long long units = vec ? H / V : H;
  const long long u0 = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const long long u_stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long t = blockIdx.y; t < p.n_tokens; t += gridDim.y) {
    float g = 1.0f;
    if constexpr (kGate) g = 1.0f / (1.0f + expf(-to_f32(gate[t])));
    // The grid is sized for packs; the scalar path (a misaligned view) strides over the rest.
    for (long long u = u0; u < units; u += u_stride) {
      if (vec) {
        float acc[V];
#pragma unroll
        for (int i = 0; i < V; ++i) acc[i] = 0.0f;
        for (long long j = 0; j < K; ++j) {
          const float wj = w[t * K + j];
          const Pack<T, V> ev = load_pack<T, V>(e + (t * K + j) * H + u * V);
#pragma unroll
          for (int i = 0; i < V; ++i) acc[i] += wj * to_f32(ev.v[i]);
        }
        if constexpr (kShared) {
          const Pack<T, V> sv = load_pack<T, V>(shared + t * H + u * V);
#pragma unroll
          for (int i = 0; i < V; ++i) acc[i] += g * to_f32(sv.v[i]);
        }
        Pack<T, V> o;
#pragma unroll
        for (int i = 0; i < V; ++i) o.v[i] = from_f32<T>(acc[i]);
        store_pack<T, V>(out + t * H + u * V, o);
      } else {
        float acc = 0.0f;
        for (long long j = 0; j < K; ++j) acc += w[t * K + j] * to_f32(e[(t * K + j) * H + u]);
        if constexpr (kShared) acc += g * to_f32(shared[t * H + u]);
        out[t * H + u] = from_f32<T>(acc);
      }
    }
  }
}

template <class T, bool kShared, bool kGate>
LaunchConfig moe_combine_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::MoeCombineParams>(args);
  constexpr int V = 16 / sizeof(T);
  // Sized for the vector path; the scalar path (odd hidden) needs V times more threads.
  const bool maybe_vec = p.hidden % V == 0;
  const long long units = maybe_vec ? p.hidden / V : p.hidden;
  long long tokens = p.n_tokens < 1 ? 1 : p.n_tokens;
  if (tokens > kMaxTokenBlocks) tokens = kMaxTokenBlocks;
  const unsigned int bx = blocks_for(units, kCombineThreads, 1ll << 30);
  return {reinterpret_cast<const void*>(&moe_combine_kernel<T, kShared, kGate>),
          dim3(bx, static_cast<unsigned int>(tokens)), dim3(kCombineThreads), 0};
}

template <class T>
ConfigureFn combine_for(bool shared, bool gate) {
  if (gate) return &moe_combine_config<T, true, true>;
  return shared ? &moe_combine_config<T, true, false> : &moe_combine_config<T, false, false>;
}

}  // namespace

ConfigureFn moe_route_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &moe_route_config<float>;
    case DType::F16:
      return &moe_route_config<__half>;
    case DType::BF16:
      return &moe_route_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

ConfigureFn moe_combine_configure(DType dtype, bool shared, bool gate) {
  if (gate && !shared) return nullptr;
  switch (dtype) {
    case DType::F32:
      return combine_for<float>(shared, gate);
    case DType::F16:
      return combine_for<__half>(shared, gate);
    case DType::BF16:
      return combine_for<__nv_bfloat16>(shared, gate);
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
