// The decode-stream probe's kernel: one persistent block an SM runs a chain of 4-bit mat-vecs,
// one warp streaming every weight unit of the chain into a shared-memory ring while 16 warps
// wait for each product's input, stage it and multiply. Also the weights' generator.
#pragma once

#include <cuda_bf16.h>

#include "layout.cuh"
#include "products.cuh"
#include "ptx.cuh"

namespace probe {

/// Columns of a timed launch's per-block row of thread 0's cycles.
enum PhaseColumn : int {
  kPhaseFlags,    // waiting for the previous product's completion counter
  kPhaseStaging,  // staging the input, its closing barrier included
  kPhaseRing,     // waiting for units to land in the ring
  kPhaseTiles,    // the tiles' closing barriers
  kPhaseTotal,    // the whole run
  kPhaseLoads,    // staging's parts: inputs arrived and transformed,
  kPhaseNorm,     //   the norm's reduction,
  kPhaseStores,   //   stores and group sums
  kPhaseColumns
};

/// Runs products [0, nops). done[o] counts the blocks that finished product o over every launch
/// (never reset): launch `epoch` waits for (epoch + 1) x grid before reading product o's output,
/// so every launch must count every block in on every product. ll != 0 (with kAll): outputs are
/// LL words tagged ll_tag(epoch, o) and inputs are read until their tags match, instead of the
/// counters. Launched alone a product (nops = 1) with programmatic dependent launch, the compute
/// warps wait for the previous kernel before staging while the streaming warp starts at once.
/// kTimed: thread 0 adds up its cycles by phase into phases[blockIdx.x][kPhaseColumns].
template <bool kTimed>
__global__ void __launch_bounds__(kThreads, 1)
    chain_kernel(const Op* ops, int nops, int stages, unsigned int* done, unsigned int epoch,
                 Mode mode, CopyMode copy_mode, int late_norm, int ll, unsigned long long* phases) {
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* ring = smem;
  auto* xs = reinterpret_cast<__nv_bfloat16*>(smem + static_cast<size_t>(stages) * kUnitBytes);
  auto* partial = reinterpret_cast<float*>(xs + kMaxK);  // [2][kComputeWarps][16]
  float* red = partial + 2 * kComputeWarps * 16;         // [kComputeWarps]
  float* gsum = red + kComputeWarps;                     // [kMaxK / kGroup]
  auto* full = reinterpret_cast<unsigned long long*>(gsum + kMaxK / kGroup);
  unsigned long long* empty = full + stages;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      mbar_init(&full[s], copy_mode == kLaneCopies ? 32 : 1);
      mbar_init(&empty[s], kComputeWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  const unsigned int grid = gridDim.x;

  if (warp == kComputeWarps) {  // the streaming warp: every unit of every product, in order
    if ((copy_mode != kLaneCopies && lane != 0) || !streams(mode)) return;
    int stage = 0;
    unsigned int phase = 0;  // of the ring's current pass
    for (int o = 0; o < nops; ++o) {
      const Op op = ops[o];
      const int tiles = op.n / 16, nk = op.k / kUnitCodes;
      for (int tile = blockIdx.x; tile < tiles; tile += grid) {
        for (int kk = 0; kk < nk; ++kk) {
          const int s = stage;
          mbar_wait(&empty[s], phase ^ 1u);
          if (++stage == stages) stage = 0, phase ^= 1u;
          unsigned char* dst = ring + static_cast<size_t>(s) * kUnitBytes;
          const unsigned char* src = op.w + (static_cast<size_t>(tile) * nk + kk) * kUnitBytes;
          if (copy_mode == kLaneCopies) {
            for (int p = lane; p < kUnitBytes / 16; p += 32) {
              copy16_async(dst + 16 * p, src + 16 * p);
            }
            async_arrive(&full[s]);
          } else {
            mbar_expect(&full[s], kUnitBytes);
            const int piece = copy_mode == kBulkPieces ? kUnitBytes / 9 : kUnitBytes;
            for (int off = 0; off < kUnitBytes; off += piece) {
              bulk_copy(dst + off, src + off, piece, &full[s]);
            }
          }
        }
      }
    }
    return;
  }

  asm volatile("griddepcontrol.wait;" ::: "memory");  // a no-op unless launched dependent
  int stage = 0;
  unsigned int phase = 0, tiles_done = 0;
  // Thread 0's sums live in shared memory: in registers they cost every thread 16 and made the
  // timed kernel spill.
  __shared__ long long clk[kTimed ? kPhaseColumns : 1];
  const bool timed = kTimed && threadIdx.x == 0;
  if (timed) {
#pragma unroll
    for (int c = 0; c < kPhaseColumns; ++c) clk[c] = 0;
  }
  const long long t_begin = kTimed ? clock64() : 0;
  for (int o = 0; o < nops; ++o) {
    const Op op = ops[o];
    const long long t0 = kTimed ? clock64() : 0;
    if (o > 0 && waits_flags(mode) && !ll) {
      if (threadIdx.x == 0) {
        const unsigned int target = (epoch + 1) * grid;
        while (load_acquire(&done[o - 1]) < target) {
        }
      }
      compute_sync();  // the acquire, then the barrier, orders every thread's reads after it
    }
    const long long t1 = kTimed ? clock64() : 0;
    if (timed) clk[kPhaseFlags] += t1 - t0;
    if (stages_inputs(mode)) {
      const StageClock sc =
          stage_input<kTimed>(op, xs, red, gsum, late_norm != 0,
                              ll && o > 0 && mode == kAll ? ll_tag(epoch, o - 1) : 0u);
      if (timed) {
        clk[kPhaseLoads] += sc.loads;
        clk[kPhaseNorm] += sc.norm;
        clk[kPhaseStores] += sc.stores;
      }
    }
    compute_sync();
    if (timed) clk[kPhaseStaging] += clock64() - t1;
    const int tiles = op.n / 16, nk = op.k / kUnitCodes;
    for (int tile = blockIdx.x; tile < tiles; tile += grid, ++tiles_done) {
      // A warp takes its step of two units at once (separate accumulators), so that two
      // independent mma chains are in flight: one unit at a time left ~60% of issue slots idle.
      float acc_a = 0.0f, acc_b = 0.0f, acc2_a = 0.0f, acc2_b = 0.0f;
      for (int kk = 0; kk < nk; kk += 2) {
        const bool two = kk + 1 < nk;
        const int s0 = stage;
        const unsigned int ph0 = phase;
        if (++stage == stages) stage = 0, phase ^= 1u;
        const int s1 = stage;
        const unsigned int ph1 = phase;
        if (two && ++stage == stages) stage = 0, phase ^= 1u;
        const __nv_bfloat16* xu = xs + kk * kUnitCodes;
        const float* gu = gsum + kk * kUnitGroups;
        if (!streams(mode)) {
          unit_step(ring, xu, gu, warp, lane, acc_a, acc_b);
          if (two) unit_step(ring, xu + kUnitCodes, gu + kUnitGroups, warp, lane, acc2_a, acc2_b);
          continue;
        }
        const long long tw = kTimed ? clock64() : 0;
        mbar_wait(&full[s0], ph0);
        if (two) mbar_wait(&full[s1], ph1);
        if (timed) clk[kPhaseRing] += clock64() - tw;
        if (multiplies(mode)) {
          unit_step(ring + static_cast<size_t>(s0) * kUnitBytes, xu, gu, warp, lane, acc_a, acc_b);
          if (two) {
            unit_step(ring + static_cast<size_t>(s1) * kUnitBytes, xu + kUnitCodes,
                      gu + kUnitGroups, warp, lane, acc2_a, acc2_b);
          }
        }
        __syncwarp();
        if (lane == 0) {
          mbar_arrive(&empty[s0]);
          if (two) mbar_arrive(&empty[s1]);
        }
      }
      // Only lanes with t4 == 0 hold sums (unit_step); the tile's 16 warps add through shared
      // memory, double-buffered by tile parity: the next tile's writes go to the other half, and
      // the one after waits behind the next tile's barrier, after these reads.
      float* part = partial + (tiles_done & 1u) * kComputeWarps * 16;
      if ((lane & 3) == 0) {
        part[warp * 16 + (lane >> 2)] = acc_a + acc2_a;
        part[warp * 16 + (lane >> 2) + 8] = acc_b + acc2_b;
      }
      const long long tb = kTimed ? clock64() : 0;
      compute_sync();
      if (timed) clk[kPhaseTiles] += clock64() - tb;
      if (threadIdx.x < 16) {
        float sum = 0.0f;
        for (int w = 0; w < kComputeWarps; ++w) sum += part[w * 16 + threadIdx.x];
        if (late_norm && op.in_kind == kRmsNorm) {
          float total = 0.0f;
          for (int w = 0; w < kComputeWarps; ++w) total += red[w];
          sum *= rsqrtf(total / op.k + 1e-5f);
        }
        if (ll) {
          // Rows 2 r and 2 r + 1 in one word with this product's tag.
          const float next = __shfl_down_sync(0x0000FFFFu, sum, 1, 16);
          if ((threadIdx.x & 1) == 0) {
            const unsigned long long w =
                pack_bf2(sum, next) | (static_cast<unsigned long long>(ll_tag(epoch, o)) << 32);
            store_word64(reinterpret_cast<unsigned long long*>(op.out) + tile * 8 + threadIdx.x / 2,
                         w);
          }
        } else {
          op.out[tile * 16 + threadIdx.x] = __float2bfloat16(sum);
        }
      }
    }
    compute_sync();  // the block's outputs and its reads of xs are done
    // LL readers never read the counter, so their launches count without a fence.
    if (threadIdx.x == 0) {
      if (!ll) __threadfence();
      atomicAdd(&done[o], 1u);
    }
  }
  if (timed) {
    clk[kPhaseTotal] = clock64() - t_begin;
#pragma unroll
    for (int c = 0; c < kPhaseColumns; ++c) {
      phases[kPhaseColumns * blockIdx.x + c] = static_cast<unsigned long long>(clk[c]);
    }
  }
}

/// Deterministic weights of `units` units: random codes, scales s ~ gain / sqrt(21.25 k) (so
/// that the product of a unit-RMS input has RMS ~gain: codes uniform in 0..15 have variance
/// 21.25 about the bias), biases ~ -7.5 s.
__device__ __forceinline__ unsigned int mix(unsigned long long x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return static_cast<unsigned int>(x);
}
__global__ void fill_weights(unsigned char* w, long long units, int k, float gain,
                             unsigned long long seed) {
  const long long words = units * (kUnitBytes / 4);
  const float s0 = gain / sqrtf(21.25f * k);
  for (long long i = blockIdx.x * 256LL + threadIdx.x; i < words; i += 256LL * gridDim.x) {
    const long long unit = i / (kUnitBytes / 4);
    const int off = static_cast<int>(i % (kUnitBytes / 4)) * 4;
    const unsigned int r = mix(seed ^ (static_cast<unsigned long long>(i) * 0x9E3779B97F4A7C15ULL));
    unsigned int v = r;
    if (off >= kCodeBytes) {  // a record's first word is two scales, its second two biases
      const bool bias = (off - kCodeBytes) % 8 == 4;
      __nv_bfloat16 h[2];
      for (int j = 0; j < 2; ++j) {
        const float f = 0.75f + 0.5f * (((r >> (16 * j)) & 0xFFFF) / 65535.0f);
        h[j] = __float2bfloat16(bias ? -7.5f * s0 * f : s0 * f);
      }
      v = static_cast<unsigned int>(__bfloat16_as_ushort(h[0])) |
          (static_cast<unsigned int>(__bfloat16_as_ushort(h[1])) << 16);
    }
    reinterpret_cast<unsigned int*>(w + unit * kUnitBytes)[off / 4] = v;
  }
}

}  // namespace probe
