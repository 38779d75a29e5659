// Activation kernels: unary (scalar_mul, silu, gelu tanh/erf, softcap) and gated (silu_mul,
// gelu_mul, sigmoid_mul) for f32/f16/bf16, with 16-byte vector loads and f32 math.
#include "backends/cuda/kernels/activations_kernels.h"
#include "backends/cuda/kernels/common.cuh"
#include "ops/activations_params.h"

namespace mlxn::cuda {
namespace {

// Accurate libdevice functions (no fast-math intrinsics): these ops are memory-bound, and the
// f32 results must stay within 1e-5 of a float64 reference.
__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));  // expf overflows to inf for x < -88: the result is then 0
}

struct ScalarMul {
  __device__ __forceinline__ static float apply(float x, float s) { return x * s; }
};
struct Silu {
  __device__ __forceinline__ static float apply(float x, float) { return x * sigmoid(x); }
};
struct GeluTanh {
  __device__ __forceinline__ static float apply(float x, float) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    // 0.5 * (1 + tanh(z)) = 1 / (1 + exp(-2z)): no cancellation for negative x, where 1 + tanh(z)
    // would lose most of its digits.
    const float z = kSqrt2OverPi * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * z));
  }
};
struct GeluErf {
  __device__ __forceinline__ static float apply(float x, float) {
    // 1 + erf(t) = erfc(-t), exact where 1 + erf(t) would cancel (negative x).
    return 0.5f * x * erfcf(x * -0.7071067811865476f);
  }
};
struct Softcap {
  __device__ __forceinline__ static float apply(float x, float c) { return c * tanhf(x / c); }
};
struct Sigmoid {
  __device__ __forceinline__ static float apply(float x, float) { return sigmoid(x); }
};

// out[i] = Op(x[i], s). No __restrict__: out may alias x (each element is read before the same
// thread writes it).
template <class T, class Op>
__global__ void __launch_bounds__(kElementwiseThreads)
    unary_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::ActivationParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  T* out = static_cast<T*>(args.ptr[1]);
  const long long n = p.n;
  const float s = p.s;
  const long long tid = global_thread();
  const long long stride = grid_stride();
  if (aligned16(x) && aligned16(out)) {  // uniform over the launch
    constexpr int V = 16 / sizeof(T);
    const long long n_vec = n / V;
    for (long long i = tid; i < n_vec; i += stride) {
      const Pack<T, V> v = load_pack<T, V>(x + i * V);
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = from_f32<T>(Op::apply(to_f32(v.v[j]), s));
      store_pack<T, V>(out + i * V, r);
    }
    // Fewer than V elements remain and the grid has at least V threads: one pass covers them.
    const long long i = n_vec * V + tid;
    if (i < n) out[i] = from_f32<T>(Op::apply(to_f32(x[i]), s));
  } else {
    for (long long i = tid; i < n; i += stride) out[i] = from_f32<T>(Op::apply(to_f32(x[i]), s));
  }
}

// out[i] = Op(gate[i]) * up[i]; out may alias gate or up.
template <class T, class Op>
__global__ void __launch_bounds__(kElementwiseThreads)
    gated_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::ActivationParams>(args);
  const T* gate = static_cast<const T*>(args.ptr[0]);
  const T* up = static_cast<const T*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  const long long n = p.n;
  const long long tid = global_thread();
  const long long stride = grid_stride();
  if (aligned16(gate) && aligned16(up) && aligned16(out)) {
    constexpr int V = 16 / sizeof(T);
    const long long n_vec = n / V;
    for (long long i = tid; i < n_vec; i += stride) {
      const Pack<T, V> g = load_pack<T, V>(gate + i * V);
      const Pack<T, V> u = load_pack<T, V>(up + i * V);
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        r.v[j] = from_f32<T>(Op::apply(to_f32(g.v[j]), 0.0f) * to_f32(u.v[j]));
      }
      store_pack<T, V>(out + i * V, r);
    }
    const long long i = n_vec * V + tid;
    if (i < n) out[i] = from_f32<T>(Op::apply(to_f32(gate[i]), 0.0f) * to_f32(up[i]));
  } else {
    for (long long i = tid; i < n; i += stride) {
      out[i] = from_f32<T>(Op::apply(to_f32(gate[i]), 0.0f) * to_f32(up[i]));
    }
  }
}

template <class T, class Op, bool kGated>
LaunchConfig activation_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::ActivationParams>(args);
  constexpr int V = 16 / sizeof(T);
  const unsigned int blocks =
      blocks_for((p.n + V - 1) / V, kElementwiseThreads, kMaxElementwiseBlocks);
  const void* func;  // only the arity in use is instantiated
  if constexpr (kGated) {
    func = reinterpret_cast<const void*>(&gated_kernel<T, Op>);
  } else {
    func = reinterpret_cast<const void*>(&unary_kernel<T, Op>);
  }
  return {func, dim3(blocks), dim3(kElementwiseThreads), 0, true};
}

template <class Op, bool kGated>
ConfigureFn for_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &activation_config<float, Op, kGated>;
    case DType::F16:
      return &activation_config<__half, Op, kGated>;
    case DType::BF16:
      return &activation_config<__nv_bfloat16, Op, kGated>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn activation_configure(ActivationOp op, DType dtype) {
  switch (op) {
    case ActivationOp::ScalarMul:
      return for_dtype<ScalarMul, false>(dtype);
    case ActivationOp::Silu:
      return for_dtype<Silu, false>(dtype);
    case ActivationOp::GeluTanh:
      return for_dtype<GeluTanh, false>(dtype);
    case ActivationOp::GeluErf:
      return for_dtype<GeluErf, false>(dtype);
    case ActivationOp::Softcap:
      return for_dtype<Softcap, false>(dtype);
    case ActivationOp::SiluMul:
      return for_dtype<Silu, true>(dtype);
    case ActivationOp::GeluTanhMul:
      return for_dtype<GeluTanh, true>(dtype);
    case ActivationOp::GeluErfMul:
      return for_dtype<GeluErf, true>(dtype);
    case ActivationOp::SigmoidMul:
      return for_dtype<Sigmoid, true>(dtype);
  }
  return nullptr;
}

}  // namespace mlxn::cuda
