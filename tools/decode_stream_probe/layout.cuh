// What the decode-stream probe's kernel and host share: the weight unit's layout, a product's
// description, the kernel's modes, the tag of LL words and the shared memory a block needs.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>

namespace probe {

// A unit: 16 rows x 2,048 codes of 4-bit MLX affine weights, group 64, bf16 scales and biases.
// First its codes, 16 steps of 128 codes, each step a kilobyte in the DecodeTiles order of
// src/ops/quant_decode_tiles.h (lane l's 16 bytes of row l / 4 at 16 l, of row l / 4 + 8 at
// 512 + 16 l); then, for each step and each of the 16 rows, the step's two scales and two biases
// (8 bytes, so that a lane takes a row's four with one conflict-free load). One bulk copy a unit.
constexpr int kUnitCodes = 2048;
constexpr int kGroup = 64;
constexpr int kUnitGroups = kUnitCodes / kGroup;      // 32
constexpr int kCodeBytes = 16 * kUnitCodes / 2;       // 16,384
constexpr int kUnitBytes = kCodeBytes + 16 * 16 * 8;  // 18,432
constexpr int kComputeWarps = 16;                     // one step of a unit each
constexpr int kThreads = 32 * (kComputeWarps + 1);    // + the streaming warp
constexpr int kMaxK = 14336;                          // the longest input (down's)
constexpr int kMinStages = 2, kMaxStages = 10;        // a warp holds two units; shared memory

enum InputKind : int { kPlain = 0, kSiluMul = 1, kRmsNorm = 2 };

/// How the streaming warp fills a stage: one bulk copy of the unit, nine bulk copies of 2 KB, or
/// 16-byte cp.async from all 32 lanes.
enum CopyMode : int { kBulkUnit = 0, kBulkPieces = 1, kLaneCopies = 2 };

/// What a launch runs. Only kAll computes the chain; the others take a part away to time the
/// rest, and their results are wrong wherever an input was not waited for or not staged.
enum Mode : int {
  kAll = 0,             // flags, staging, products, weight stream
  kNoFlags,             // no waits for the previous product
  kFlagsNoStaging,      // inputs never staged
  kNoFlagsNoStaging,    // neither
  kRingOnly,            // the copies alone: units waited for and released, not multiplied
  kProductsOnly,        // no copies: every unit multiplied from stage 0, nothing staged
  kProductsAndStaging,  // no copies, inputs staged
  kModeCount
};
__host__ __device__ constexpr bool waits_flags(Mode m) {
  return m == kAll || m == kFlagsNoStaging;
}
__host__ __device__ constexpr bool stages_inputs(Mode m) {
  return m == kAll || m == kNoFlags || m == kProductsAndStaging;
}
__host__ __device__ constexpr bool streams(Mode m) {
  return m != kProductsOnly && m != kProductsAndStaging;
}
__host__ __device__ constexpr bool multiplies(Mode m) {
  return m != kRingOnly;
}

/// One product of the chain: out = W in' (n rows, k columns), in' = in transformed by in_kind.
struct Op {
  const unsigned char* w;  // units [tile][k / 2048]
  const __nv_bfloat16* in;
  __nv_bfloat16* out;  // room for n LL words' halves: 4 n bytes
  int n, k, in_kind;
};

/// The tag of product o's LL words in launch `epoch`: never 0 (buffers start zeroed) and
/// different in every launch, so a word left by an earlier launch never passes.
__host__ __device__ constexpr unsigned int ll_tag(unsigned int epoch, int o) {
  return epoch * 256u + static_cast<unsigned int>(o) + 1u;
}

/// Dynamic shared memory of a block: the ring, the staged input, the tile partials (double
/// buffered), the norm's per-warp sums, the input's group sums, the ring's two barrier arrays.
constexpr std::size_t smem_bytes(int stages) {
  return static_cast<std::size_t>(stages) * kUnitBytes + kMaxK * sizeof(__nv_bfloat16) +
         (2 * kComputeWarps * 16 + kComputeWarps + kMaxK / kGroup) * sizeof(float) +
         2 * static_cast<std::size_t>(stages) * sizeof(unsigned long long);
}

}  // namespace probe
