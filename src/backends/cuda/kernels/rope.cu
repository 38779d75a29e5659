// RoPE kernel: rotates pairs of x: [n_tokens, n_heads, head_dim] by positions[t] * inv_freq[i]
// (interleaved or NeoX pairs, partial rotary dims copied), for f32/f16/bf16.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/rope_angle.cuh"
#include "backends/cuda/kernels/rope_kernels.h"
#include "ops/rope_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr long long kMaxTokenBlocks = 1ll << 20;  // grid.x; further tokens are strided over
constexpr long long kMaxHeadBlocks = 65535;       // grid.y limit
// Heads are split over grid.y only while tokens alone leave the GPU short of blocks, so that a
// thread normally reuses each sine/cosine for several heads.
constexpr long long kTargetBlocks = 1024;

// Block: x over the pairs of a head, y over heads; grid: x over tokens, y over head slices. A
// thread computes the sine and cosine of its pair once per token and applies them to each of its
// heads. Both elements of a pair are read before either is written, so out may be x (in place).
// Consecutive threads take consecutive pairs: loads and stores of a warp are contiguous.
template <class T>
__global__ void __launch_bounds__(kThreads) rope_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::RopeParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const int* pos = static_cast<const int*>(args.ptr[1]);
  const float* inv_freq = static_cast<const float*>(args.ptr[2]);
  T* out = static_cast<T*>(args.ptr[3]);
  const long long half = p.rotary_dim / 2;
  const bool neox = p.layout == ops::kRopeNeox;
  const bool copy_tail = static_cast<const void*>(x) != static_cast<const void*>(out);
  const long long head_start = static_cast<long long>(blockIdx.y) * blockDim.y + threadIdx.y;
  const long long head_step = static_cast<long long>(gridDim.y) * blockDim.y;
  for (long long t = blockIdx.x; t < p.n_tokens; t += gridDim.x) {
    const float pf = static_cast<float>(pos[t]);
    const T* xt = x + t * p.x_token_stride;
    T* ot = out + t * p.out_token_stride;
    for (long long i = threadIdx.x; i < half; i += blockDim.x) {
      float sn, cs;
      rope_sin_cos(pf, inv_freq[i], p.scale, sn, cs);
      const long long u = neox ? i : 2 * i;
      const long long v = neox ? i + half : 2 * i + 1;
      for (long long h = head_start; h < p.n_heads; h += head_step) {
        const T* xh = xt + h * p.head_dim;
        T* oh = ot + h * p.head_dim;
        const float xu = to_f32(xh[u]);
        const float xv = to_f32(xh[v]);
        oh[u] = from_f32<T>(xu * cs - xv * sn);
        oh[v] = from_f32<T>(xv * cs + xu * sn);
      }
    }
    if (copy_tail) {
      for (long long h = head_start; h < p.n_heads; h += head_step) {
        for (long long d = p.rotary_dim + threadIdx.x; d < p.head_dim; d += blockDim.x) {
          ot[h * p.head_dim + d] = xt[h * p.head_dim + d];
        }
      }
    }
  }
}

template <class T>
LaunchConfig rope_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::RopeParams>(args);
  const long long half = p.rotary_dim / 2;
  long long tx = (half + 31) / 32 * 32;
  if (tx > 128) tx = 128;
  if (tx < 32) tx = 32;
  const long long ty = kThreads / tx;
  long long token_blocks = p.n_tokens < 1 ? 1 : p.n_tokens;
  if (token_blocks > kMaxTokenBlocks) token_blocks = kMaxTokenBlocks;
  long long head_blocks = (p.n_heads + ty - 1) / ty;
  const long long wanted = (kTargetBlocks + token_blocks - 1) / token_blocks;
  if (head_blocks > wanted) head_blocks = wanted;
  if (head_blocks > kMaxHeadBlocks) head_blocks = kMaxHeadBlocks;
  if (head_blocks < 1) head_blocks = 1;
  return {reinterpret_cast<const void*>(&rope_kernel<T>),
          dim3(static_cast<unsigned int>(token_blocks), static_cast<unsigned int>(head_blocks)),
          dim3(static_cast<unsigned int>(tx), static_cast<unsigned int>(ty)), 0, true};
}

}  // namespace

ConfigureFn rope_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &rope_config<float>;
    case DType::F16:
      return &rope_config<__half>;
    case DType::BF16:
      return &rope_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
