// Dtype conversion kernels among f32, f16 and bf16 (all nine pairs), round to nearest even.
#include <type_traits>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kernels.h"
#include "ops/op_params.h"

namespace mlxn::cuda {
namespace {

// Elements per thread and iteration: 8 makes both sides whole 16-byte words for every pair
// (8 x 2 bytes = one word, 8 x 4 bytes = two).
constexpr int kCastVec = 8;

template <class Src, class Dst>
__device__ __forceinline__ Dst convert(Src v) {
  if constexpr (std::is_same_v<Src, Dst>) {
    return v;  // a copy keeps the bits, NaN payloads included
  } else {
    // Widening to f32 is exact, so this is a single rounding (RNE) even for f16 <-> bf16.
    return from_f32<Dst>(to_f32<Src>(v));
  }
}

template <class Src, class Dst>
__global__ void __launch_bounds__(kElementwiseThreads)
    cast_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::CastParams>(args);
  const Src* in = static_cast<const Src*>(args.ptr[0]);
  Dst* out = static_cast<Dst*>(args.ptr[1]);
  const long long n = p.n;
  const long long tid = global_thread();
  const long long stride = grid_stride();
  if (aligned16(in) && aligned16(out)) {
    const long long n_vec = n / kCastVec;
    for (long long i = tid; i < n_vec; i += stride) {
      const Pack<Src, kCastVec> s = load_pack<Src, kCastVec>(in + i * kCastVec);
      Pack<Dst, kCastVec> d;
#pragma unroll
      for (int j = 0; j < kCastVec; ++j) d.v[j] = convert<Src, Dst>(s.v[j]);
      store_pack<Dst, kCastVec>(out + i * kCastVec, d);
    }
    const long long i = n_vec * kCastVec + tid;
    if (i < n) out[i] = convert<Src, Dst>(in[i]);
  } else {
    for (long long i = tid; i < n; i += stride) out[i] = convert<Src, Dst>(in[i]);
  }
}

template <class Src, class Dst>
LaunchConfig cast_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::CastParams>(args);
  const unsigned int blocks =
      blocks_for((p.n + kCastVec - 1) / kCastVec, kElementwiseThreads, kMaxElementwiseBlocks);
  return {reinterpret_cast<const void*>(&cast_kernel<Src, Dst>), dim3(blocks),
          dim3(kElementwiseThreads), 0};
}

template <class Src>
ConfigureFn cast_from(DType dst) {
  switch (dst) {
    case DType::F32:
      return &cast_config<Src, float>;
    case DType::F16:
      return &cast_config<Src, __half>;
    case DType::BF16:
      return &cast_config<Src, __nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn cast_configure(DType src, DType dst) {
  switch (src) {
    case DType::F32:
      return cast_from<float>(dst);
    case DType::F16:
      return cast_from<__half>(dst);
    case DType::BF16:
      return cast_from<__nv_bfloat16>(dst);
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
