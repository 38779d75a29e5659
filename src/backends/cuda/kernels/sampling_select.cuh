// Device building blocks of argmax, top-k and sampling: block reductions and scans, a row loop
// that every thread runs the same number of times (so warp collectives are legal inside it),
// warp-aggregated histograms, and the radix descent that finds a rank or a cumulative-mass
// boundary in the descending order of a row without sorting it.
#pragma once

#include "backends/cuda/kernels/common.cuh"
#include "ops/sampling_params.h"

namespace mlxn::cuda::rowsel {

using ops::order_key;
using ops::rank_word;

constexpr unsigned kFull = 0xffffffffu;
// One block per row; the block never exceeds this (launch bounds of every select kernel).
constexpr int kMaxThreads = 1024;
// Rows beyond this are strided over by the blocks.
constexpr long long kMaxRowBlocks = 1ll << 20;

__device__ __forceinline__ int lane_id() {
  return threadIdx.x & 31;
}
__device__ __forceinline__ int warp_id() {
  return threadIdx.x >> 5;
}
__device__ __forceinline__ int n_warps() {
  return (blockDim.x + 31) >> 5;
}

/// Threads for a row of `cols` elements of `elem_bytes`: one 16-byte pack each, in whole warps,
/// at most kMaxThreads.
inline unsigned int threads_for(long long cols, int elem_bytes) {
  const long long per = 16 / elem_bytes;
  long long t = (cols + per - 1) / per;
  t = (t + 31) / 32 * 32;
  if (t < 32) t = 32;
  if (t > kMaxThreads) t = kMaxThreads;
  return static_cast<unsigned int>(t);
}

inline unsigned int row_blocks(long long rows) {
  long long b = rows < 1 ? 1 : rows;
  if (b > kMaxRowBlocks) b = kMaxRowBlocks;
  return static_cast<unsigned int>(b);
}

/// Shared state of one block's selection work (~2.5 KB).
struct Smem {
  unsigned cnt[256];
  float mass[256];
  unsigned long long red64[32];
  float redf[32];
  unsigned redu[32];
  // Result of a descent level, written by warp 0.
  int bin;
  unsigned c;
  float a;
  unsigned tie;
  long long found;
};

struct MaxOp {
  template <class V>
  __device__ V operator()(V a, V b) const {
    return a > b ? a : b;
  }
};
struct SumOp {
  template <class V>
  __device__ V operator()(V a, V b) const {
    return a + b;
  }
};

/// `v` reduced over the block with `op`, returned to every thread. The warps' partials are
/// combined in warp order, so the result does not depend on timing.
template <class V, class Op>
__device__ V block_all_reduce(V v, Op op, V* scratch) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(kFull, v, off));
  if (lane_id() == 0) scratch[warp_id()] = v;
  __syncthreads();
  V r = scratch[0];
  for (int w = 1; w < n_warps(); ++w) r = op(r, scratch[w]);
  __syncthreads();  // scratch may be reused as soon as this returns
  return r;
}

/// Exclusive prefix sum of `v` over the block in thread order; `total` gets the block's sum.
__device__ __forceinline__ unsigned block_exclusive_scan(unsigned v, unsigned* scratch,
                                                         unsigned& total) {
  unsigned incl = v;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const unsigned t = __shfl_up_sync(kFull, incl, off);
    if (lane_id() >= off) incl += t;
  }
  if (lane_id() == 31) scratch[warp_id()] = incl;
  __syncthreads();
  unsigned before = 0, all = 0;
  for (int w = 0; w < n_warps(); ++w) {
    const unsigned s = scratch[w];
    if (w < warp_id()) before += s;
    all += s;
  }
  __syncthreads();
  total = all;
  return before + incl - v;
}

/// Calls f(index, x, ok) for the elements of `row` in chunks of blockDim packs, where every
/// thread makes the same number of calls (ok = false past the end, x = 0 then), so f may use
/// warp collectives. Within a chunk thread t holds the elements after those of threads < t.
/// `vec` (16-byte packs) requires a 16-byte aligned row and cols a multiple of the pack.
template <class T, class F>
__device__ __forceinline__ void for_each_chunk(const T* row, long long cols, bool vec, F&& f) {
  constexpr int V = 16 / sizeof(T);
  if (vec) {
    const long long n_packs = cols / V;
    for (long long base = 0; base < n_packs; base += blockDim.x) {
      const long long pk = base + threadIdx.x;
      const bool ok = pk < n_packs;
      Pack<T, V> p;
      if (ok) p = load_pack<T, V>(row + pk * V);
#pragma unroll
      for (int j = 0; j < V; ++j) f(pk * V + j, ok ? to_f32(p.v[j]) : 0.0f, ok);
    }
  } else {
    for (long long base = 0; base < cols; base += blockDim.x) {
      const long long i = base + threadIdx.x;
      const bool ok = i < cols;
      f(i, ok ? to_f32(row[i]) : 0.0f, ok);
    }
  }
}

/// Sum of `x` over the lanes in `peers` (lanes with the same bin), valid in the lowest peer.
/// A log-depth tree over the peers (after Westphal, "Voting and shuffling to optimize atomic
/// operations"); all 32 lanes must call it.
__device__ __forceinline__ float reduce_peers(unsigned peers, float x) {
  const int lane = lane_id();
  unsigned rel = __popc(peers & ((1u << lane) - 1u));
  peers &= 0xfffffffeu << lane;
  while (__any_sync(kFull, peers != 0)) {
    const int next = __ffs(peers);
    const float t = __shfl_sync(kFull, x, (next - 1) & 31);
    if (next) x += t;
    peers &= ~__ballot_sync(kFull, rel & 1u);
    rel >>= 1;
  }
  return x;
}

/// Adds one element to bin `bin` (-1: none) of the histogram, with weight w when kMass. Lanes
/// of a warp that hit the same bin are combined first: a row's values cluster in a few bins of
/// the high digit, and unaggregated shared atomics on one address would serialize.
template <bool kMass>
__device__ __forceinline__ void hist_add(Smem& sm, int bin, float w) {
  const unsigned peers = __match_any_sync(kFull, bin);
  float s = 0.0f;
  if constexpr (kMass) s = reduce_peers(peers, w);
  if (bin >= 0 && lane_id() == __ffs(peers) - 1) {
    atomicAdd(&sm.cnt[bin], static_cast<unsigned>(__popc(peers)));
    if constexpr (kMass) atomicAdd(&sm.mass[bin], s);
  }
}

/// What a descent is looking for in the descending order of a row:
/// Rank: the element of rank `rank` (0-based). MassLess / MassLessEq: the number of leading
/// ranks j >= 1 whose cumulative mass W(j) is < target (<= target).
enum class Fit { Rank, MassLess, MassLessEq };

struct Goal {
  Fit fit;
  unsigned rank;
  float target;
  // Whether the first c ranks, of mass a, lie entirely before the boundary.
  __device__ __forceinline__ bool fits(float a, unsigned c) const {
    switch (fit) {
      case Fit::Rank:
        return c <= rank;
      case Fit::MassLess:
        return a < target;
      default:
        return a <= target;
    }
  }
};

/// Where a descent ended. leaf: `key` is the exact key holding the boundary, `c` and `a` the count
/// and mass of the elements with larger keys, `tie` the number of elements with this key. Not a
/// leaf: rounding made every element of the prefix fit; `c` and `a` then include them all.
struct Descent {
  bool leaf;
  unsigned key;
  unsigned c;
  float a;
  unsigned tie;
};

/// Warp 0's walk over the 256 bins from the top: each lane sums 8 bins, a warp scan finds the
/// first lane whose bins do not all fit, and that lane walks its bins one by one.
__device__ __forceinline__ void walk_bins(Smem& sm, const Goal& g, float a0, unsigned c0) {
  const int lane = lane_id();
  const int hi = 255 - 8 * lane;
  unsigned lc = 0;
  float lm = 0.0f;
#pragma unroll
  for (int b = 0; b < 8; ++b) {
    lc += sm.cnt[hi - b];
    lm += sm.mass[hi - b];
  }
  unsigned ic = lc;
  float im = lm;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const unsigned tc = __shfl_up_sync(kFull, ic, off);
    const float tm = __shfl_up_sync(kFull, im, off);
    if (lane >= off) {
      ic += tc;
      im += tm;
    }
  }
  unsigned ec = __shfl_up_sync(kFull, ic, 1);
  float em = __shfl_up_sync(kFull, im, 1);
  if (lane == 0) {
    ec = 0;
    em = 0.0f;
  }
  const unsigned bad = __ballot_sync(kFull, !g.fits(a0 + im, c0 + ic));
  if (bad == 0) {
    if (lane == 31) {
      sm.bin = -1;
      sm.c = c0 + ic;
      sm.a = a0 + im;
    }
    return;
  }
  if (lane != __ffs(bad) - 1) return;
  float a = a0 + em;
  unsigned c = c0 + ec;
  int last = -1;  // lowest non-empty bin of this lane
  for (int b = 0; b < 8; ++b) {
    if (sm.cnt[hi - b] != 0) last = hi - b;
  }
  int found = -1;
  for (int b = hi; b >= hi - 7 && last >= 0; --b) {
    const unsigned n = sm.cnt[b];
    if (n == 0) continue;
    // The last non-empty bin takes the boundary when rounding made the others all fit.
    if (!g.fits(a + sm.mass[b], c + n) || b == last) {
      found = b;
      break;
    }
    a += sm.mass[b];
    c += n;
  }
  sm.bin = found;
  sm.c = c;
  sm.a = a;
  sm.tie = found >= 0 ? sm.cnt[found] : 0;
}

/// Finds the boundary `g` in the descending order_key order of `row` with four 8-bit digit
/// passes (histograms of count and, when kMass, of weight(x)). Block-uniform result.
template <bool kMass, class T, class W>
__device__ Descent descend(Smem& sm, const T* row, long long cols, bool vec, const Goal& g,
                           W weight) {
  unsigned prefix = 0, pmask = 0, c = 0;
  float a = 0.0f;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) {
      sm.cnt[i] = 0;
      sm.mass[i] = 0.0f;
    }
    __syncthreads();
    for_each_chunk(row, cols, vec, [&](long long, float x, bool ok) {
      const unsigned key = order_key(x);
      const bool in = ok && (key & pmask) == prefix;
      const int bin = in ? static_cast<int>((key >> shift) & 255u) : -1;
      float w = 0.0f;
      if constexpr (kMass) w = in ? weight(x) : 0.0f;
      hist_add<kMass>(sm, bin, w);
    });
    __syncthreads();
    if (warp_id() == 0) walk_bins(sm, g, a, c);
    __syncthreads();
    const int bin = sm.bin;
    c = sm.c;
    a = sm.a;
    if (bin < 0) return {false, prefix, c, a, 0};
    prefix |= static_cast<unsigned>(bin) << shift;
    pmask |= 255u << shift;
    // The next level's first barrier orders these reads before warp 0 writes sm again.
  }
  return {true, prefix, c, a, sm.tie};
}

/// Largest i in [0, tie] with g.fits(a + i * w) (monotone in i; 0 when a alone does not fit):
/// how many of `tie` equal-weight elements fit. A binary search, so a huge tie group of tiny
/// weights costs 17 steps, not a walk.
__device__ __forceinline__ unsigned fitting_in_tie(const Goal& g, float a, float w, unsigned tie) {
  if (!g.fits(a, 0)) return 0;
  unsigned lo = 0, hi = tie;
  while (lo < hi) {
    const unsigned mid = lo + (hi - lo + 1) / 2;
    if (g.fits(a + static_cast<float>(mid) * w, 0)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

/// Index of the `t`-th (0-based) element of `row` whose order key is `key`, in index order; -1
/// when there are not that many. Stops at the chunk that holds it.
template <class T>
__device__ long long find_occurrence(Smem& sm, const T* row, long long cols, bool vec, unsigned key,
                                     unsigned t) {
  constexpr int V = 16 / sizeof(T);
  const int per = vec ? V : 1;
  const long long n_units = vec ? cols / V : cols;
  if (threadIdx.x == 0) sm.found = -1;
  __syncthreads();
  unsigned base = 0;
  for (long long ub = 0; ub < n_units; ub += blockDim.x) {
    const long long u = ub + threadIdx.x;
    const bool ok = u < n_units;
    float xs[V];
    if (ok) {
      if (vec) {
        const Pack<T, V> p = load_pack<T, V>(row + u * V);
#pragma unroll
        for (int j = 0; j < V; ++j) xs[j] = to_f32(p.v[j]);
      } else {
        xs[0] = to_f32(row[u]);
      }
    }
    unsigned mine = 0;
    for (int j = 0; j < per && ok; ++j) mine += order_key(xs[j]) == key ? 1u : 0u;
    unsigned total;
    const unsigned before = base + block_exclusive_scan(mine, sm.redu, total);
    if (mine != 0 && before <= t && t < before + mine) {
      unsigned seen = before;
      for (int j = 0; j < per; ++j) {
        if (order_key(xs[j]) != key) continue;
        if (seen == t) {
          sm.found = u * per + j;
          break;
        }
        ++seen;
      }
    }
    base += total;
    if (base > t) break;  // block-uniform: every thread has the same base
  }
  __syncthreads();
  const long long r = sm.found;
  __syncthreads();
  return r;
}

/// The largest rank word of the row: its maximum at the lowest index.
template <class T>
__device__ unsigned long long row_max_word(Smem& sm, const T* row, long long cols, bool vec) {
  unsigned long long best = 0;
  for_each_chunk(row, cols, vec, [&](long long i, float x, bool ok) {
    if (ok) {
      const unsigned long long w = rank_word(order_key(x), static_cast<unsigned>(i));
      best = w > best ? w : best;
    }
  });
  return block_all_reduce(best, MaxOp{}, sm.red64);
}

}  // namespace mlxn::cuda::rowsel
