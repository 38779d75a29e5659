// ops::apply_penalties on CUDA: one thread per (row, pair), each penalizing one logit in place.
// A decode step has a few dozen to a few thousand pairs, so one small launch does it.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kernels.h"
#include "ops/penalties_params.h"

namespace mlxn::cuda {
namespace {

// Explicitly rounded operations (no contraction into FMA), so the result is bit-identical to
// the CPU kernel's. Ids within a row are distinct, so no two threads touch the same logit.
template <class T>
__global__ void __launch_bounds__(kElementwiseThreads)
    penalties_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::PenaltiesParams>(args);
  T* logits = static_cast<T*>(args.ptr[0]);
  const int* pairs = static_cast<const int*>(args.ptr[1]);
  const long long total = p.rows * p.n_valid;
  for (long long i = global_thread(); i < total; i += grid_stride()) {
    const long long r = i / p.n_valid;
    const long long j = i - r * p.n_valid;
    const long long id = pairs[(r * p.n + j) * 2];
    const int count = pairs[(r * p.n + j) * 2 + 1];
    // Padding and foreign ids are skipped (documented in include/mlxn/ops/penalties.h).
    if (id < 0 || id >= p.vocab || count <= 0) continue;
    T& slot = logits[r * p.vocab + id];
    float x = to_f32(slot);
    x = x > 0.0f ? __fdiv_rn(x, p.repetition) : __fmul_rn(x, p.repetition);
    const float sub = __fadd_rn(__fmul_rn(static_cast<float>(count), p.frequency), p.presence);
    slot = from_f32<T>(__fsub_rn(x, sub));
  }
}

template <class T>
LaunchConfig penalties_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::PenaltiesParams>(args);
  const unsigned int blocks =
      blocks_for(p.rows * p.n_valid, kElementwiseThreads, kMaxElementwiseBlocks);
  return {reinterpret_cast<const void*>(&penalties_kernel<T>), dim3(blocks),
          dim3(kElementwiseThreads), 0};
}

}  // namespace

ConfigureFn penalties_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &penalties_config<float>;
    case DType::F16:
      return &penalties_config<__half>;
    case DType::BF16:
      return &penalties_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
