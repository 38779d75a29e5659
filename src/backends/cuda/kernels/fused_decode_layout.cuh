// What the fused decode step's device code shares: the unit's layout in the ring, the block's
// warps, shared-memory carve-up, and the named barrier of the compute warps.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>

#include "ops/fused_decode_params.h"

namespace mlxn::cuda::fd {

// A unit: 16 rows (a DecodeTiles tile) x 2,048 codes of 4-bit MLX weights, group 64. In the
// ring: its codes (16 DecodeTiles steps of 1 KB, lane l's 16 bytes of row l / 4 at 16 l and of
// row l / 4 + 8 at 512 + 16 l), then for each step and row of the tile the step's two scales and
// two biases (8 bytes: a lane takes a row's four with one conflict-free load), copied from the
// unit scales (ops::fused_decode_scales). Two bulk copies a unit.
constexpr int kUnitCodes = 2048;
constexpr int kGroup = 64;
constexpr int kUnitGroups = kUnitCodes / kGroup;  // 32
/// The staged input is quantized to int8 in runs of 32 elements, one scale a run.
constexpr int kRun = 32;
constexpr int kUnitRuns = kUnitCodes / kRun;  // 64
constexpr int kStepCodes = 128;
constexpr int kStepsPerUnit = kUnitCodes / kStepCodes;  // 16
constexpr int kCodeBytes = 16 * kUnitCodes / 2;         // 16,384
constexpr int kScaleBytes = 16 * kStepsPerUnit * 8;     // 2,048
constexpr int kUnitBytes = kCodeBytes + kScaleBytes;    // 18,432

constexpr int kComputeWarps = kStepsPerUnit;         // one step of a unit each
constexpr int kComputeThreads = 32 * kComputeWarps;  // 512
constexpr int kThreads = kComputeThreads + 32;       // + the streaming warp
constexpr int kMaxK = 16384;                         // ops::kFusedDecodeMaxK
constexpr int kHeadDim = 128;                        // ops::kFusedDecodeHeadDim
constexpr int kMaxStages = 10;
/// Tiles of a residual product (o, down: x += W in) whose x rows a block reads before its
/// products start, so that the tile's epilogue does not wait an L2 round trip (Llama-3-8B: 2).
constexpr int kResidTiles = 4;

/// Dynamic shared memory of a block with `stages` ring stages: the ring, the staged input (two
/// planes of int8 values, then the runs' scales; also the attention's per-warp accumulators), the
/// tiles' partial sums (double buffered; also the attention's per-warp maxima and sums), the norm's
/// per-warp sums, the input's group sums, the residual rows of x read ahead, the ring's barriers.
struct Smem {
  // The staged input: two planes of kMaxK int8 values, then the runs' scales.
  static constexpr std::size_t kXq2Offset = kMaxK;
  static constexpr std::size_t kXscaleOffset = 2 * kMaxK;
  static constexpr std::size_t kXs = kXscaleOffset + kMaxK / kRun * 4;
  static constexpr std::size_t kPartial = 2 * kComputeWarps * 16 * 4;
  static constexpr std::size_t kRed = kComputeWarps * 4;
  static constexpr std::size_t kGsum = kMaxK / kGroup * 4;
  static constexpr std::size_t kResid = kResidTiles * 16 * 4;
  static constexpr std::size_t bytes(int stages) {
    return static_cast<std::size_t>(stages) * kUnitBytes + kXs + kPartial + kRed + kGsum + kResid +
           2 * static_cast<std::size_t>(stages) * 8;
  }
};
static_assert(kUnitCodes == ops::kFdUnitCodes && kMaxK == ops::kFdMaxK &&
                  kHeadDim == ops::kFdHeadDim,
              "the public limits (mlxn/ops/fused_decode.h)");
static_assert(Smem::kXs >= 4 * kComputeWarps * kHeadDim * 4, "a pass of 4 heads' accumulators");
/// The kernel's static shared memory (ptxas: 128 bytes), beside the dynamic carve-up.
constexpr std::size_t kStaticSmem = 128;
static_assert(Smem::bytes(kMaxStages) + kStaticSmem <= 227 * 1024, "ten stages fit an sm_90 block");
static_assert(Smem::kPartial >= 2 * kComputeWarps * 4 * 4, "maxima and sums of 4 heads");

/// The compute warps' barrier (not the streaming warp, which never joins one).
__device__ __forceinline__ void compute_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kComputeThreads) : "memory");
}

/// A weight in the device table, as the kernel reads it.
struct Matrix {
  const unsigned char* codes;
  const unsigned char* scales;
  int n, k;
};
__device__ __forceinline__ Matrix matrix_of(const ops::FusedDecodeMatrixRef& r) {
  return Matrix{reinterpret_cast<const unsigned char*>(r.codes),
                reinterpret_cast<const unsigned char*>(r.scales), static_cast<int>(r.n),
                static_cast<int>(r.k)};
}

}  // namespace mlxn::cuda::fd
