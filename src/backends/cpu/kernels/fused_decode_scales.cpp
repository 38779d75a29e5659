// CPU reference kernel of fused_decode_scales: a weight's bf16 scales and biases copied, bits
// unchanged, into the order the fused decode step's units read them (mlxn/ops/fused_decode.h).
#include <cstdint>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/fused_decode_params.h"

namespace mlxn::cpu {
namespace {

constexpr std::int64_t kTileRows = 16;
constexpr std::int64_t kUnitCodes = 2048;
constexpr std::int64_t kStepsPerUnit = 16;   // 128 codes a step
constexpr std::int64_t kGroupsPerUnit = 32;  // 64 codes a group

// Bindings scales, biases (bf16 [n, k / 64]), out (bf16 [n k / 32]). One task per (tile, unit):
// its 16 steps x 16 rows x 4 bf16 are one contiguous 2 KB run of out.
void fused_decode_scales(const KernelArgs& a) {
  const auto& p = a.params_as<ops::FusedDecodeScalesParams>();
  const auto* scales = a.ptr<const std::uint16_t>(0);
  const auto* biases = a.ptr<const std::uint16_t>(1);
  auto* out = a.ptr<std::uint16_t>(2);
  const std::int64_t units = p.k / kUnitCodes, groups = p.k / 64;
  parallel_for((p.n / kTileRows) * units, 16, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t tu = lo; tu < hi; ++tu) {
      const std::int64_t t = tu / units, u = tu % units;
      std::uint16_t* dst = out + tu * kStepsPerUnit * kTileRows * 4;
      for (std::int64_t s = 0; s < kStepsPerUnit; ++s) {
        const std::int64_t g0 = u * kGroupsPerUnit + 2 * s;
        for (std::int64_t r = 0; r < kTileRows; ++r, dst += 4) {
          const std::int64_t at = (t * kTileRows + r) * groups + g0;
          dst[0] = scales[at];
          dst[1] = scales[at + 1];
          dst[2] = biases[at];
          dst[3] = biases[at + 1];
        }
      }
    }
  });
}

}  // namespace

KernelFn fused_decode_scales_kernel() {
  return &fused_decode_scales;
}

}  // namespace mlxn::cpu
