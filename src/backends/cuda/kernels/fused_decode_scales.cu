// fused_decode_scales: a weight's bf16 scales and biases copied, bits unchanged, into the order
// the fused decode step's units read them (mlxn/ops/fused_decode.h). It runs once a weight, at
// model load, so it is a plain copy: one thread per 8-byte record of out (the two scales and two
// biases of one row of one 128-code step).
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/fused_decode_scales_kernels.h"
#include "ops/fused_decode_params.h"

namespace mlxn::cuda {
namespace {

constexpr long long kTileRows = 16;
constexpr long long kUnitCodes = 2048;
constexpr long long kStepsPerUnit = 16;   // 128 codes a step
constexpr long long kGroupsPerUnit = 32;  // 64 codes a group

// Record i of out is (t, u, s, r) with i = ((t * units + u) * 16 + s) * 16 + r: consecutive
// threads take consecutive rows of a step, so the stores are coalesced and each warp reads two
// rows' worth of 4-byte pairs.
__global__ void __launch_bounds__(kElementwiseThreads)
    fused_decode_scales_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::FusedDecodeScalesParams>(args);
  const auto* scales = static_cast<const unsigned short*>(args.ptr[0]);
  const auto* biases = static_cast<const unsigned short*>(args.ptr[1]);
  auto* out = static_cast<unsigned short*>(args.ptr[2]);
  const long long units = p.k / kUnitCodes, groups = p.k / 64;
  const long long total = p.n * p.k / 128;
  // A view of out may start at any bf16; the 8-byte store only where every record is aligned.
  const bool vec = (reinterpret_cast<unsigned long long>(out) & 7u) == 0;
  for (long long i = global_thread(); i < total; i += grid_stride()) {
    const long long r = i % kTileRows;
    const long long s = (i / kTileRows) % kStepsPerUnit;
    const long long tu = i / (kTileRows * kStepsPerUnit);
    const long long t = tu / units, u = tu % units;
    const long long at = (t * kTileRows + r) * groups + u * kGroupsPerUnit + 2 * s;
    const unsigned short v0 = scales[at], v1 = scales[at + 1];
    const unsigned short v2 = biases[at], v3 = biases[at + 1];
    unsigned short* dst = out + 4 * i;
    if (vec) {
      *reinterpret_cast<uint2*>(dst) = make_uint2(v0 | (static_cast<unsigned int>(v1) << 16),
                                                  v2 | (static_cast<unsigned int>(v3) << 16));
    } else {
      dst[0] = v0;
      dst[1] = v1;
      dst[2] = v2;
      dst[3] = v3;
    }
  }
}

LaunchConfig fused_decode_scales_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::FusedDecodeScalesParams>(args);
  return {reinterpret_cast<const void*>(&fused_decode_scales_kernel),
          dim3(blocks_for(p.n * p.k / 128, kElementwiseThreads, kMaxElementwiseBlocks)),
          dim3(kElementwiseThreads), 0, true};
}

}  // namespace

ConfigureFn fused_decode_scales_configure() {
  return &fused_decode_scales_config;
}

}  // namespace mlxn::cuda
