// Measures how close one persistent kernel gets to the read bandwidth on the mat-vec chain of a
// Llama-3-8B decode step (issue 7, docs/perf.md): 32 layers of qkv (6144 x 4096), o (4096 x
// 4096), gate/up (28672 x 4096) and down (4096 x 14336), then the head (128256 x 4096), MLX
// affine 4-bit, group 64, bf16 scales and biases, each product's input the output of the one
// before (RMS-normalized before qkv, gate/up and the head; SiLU(gate) x up before down).
//
// Why: separate kernels cost each decode token ~2.6 µs at every one of ~320 dependent launches,
// and the grid-barrier probe (tools/grid_barrier_probe.cu) showed a barrier costs about what a
// graph-replayed launch does. What neither removes is the gap in the weight stream at every
// dependency. Here one warp of each block streams the weights of the whole chain, in order, into
// a ring of shared-memory stages with bulk copies, and never waits for activations: while the
// other warps wait on the flag that says the previous product is complete, the next product's
// weights are already arriving. If this streams near the read ceiling with the flags in place, a
// persistent decode kernel is worth building; if not, it is not.
//
// Weights are laid out for the ring: a unit is 16 rows x 2,048 codes (16 KB of codes in the
// DecodeTiles order of ops/quant_decode_tiles.h, then for each step of 128 codes and each row the
// step's two scales and two biases): 18 KB, one bulk copy. A block takes tiles blockIdx,
// blockIdx + grid, ...; each tile's units in k order; its 16 compute warps each take one of a
// unit's 16 steps of 128 codes, in two units at once, and multiply them on the tensor cores as
// the engine's mma mat-vec does (matmul_mlx_mma_matvec.cuh), with x staged once an op in the B
// fragment's order and the group sums of x computed while staging. The products are checked
// against a double-precision host reference computed from the GPU's own inputs (layers 0 and 31
// and the head), so the timing is of a kernel that is right. Modes that drop the flags, the
// staging, the products or the copies (chain_kernel) say which part costs what; results on the
// H100 are in docs/perf.md (issue 7, step 24). Built by CMake as `mlxn_decode_stream_probe` with
// the CUDA backend, or alone:
// clang-format off
//   nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/dsp tools/decode_stream_probe.cu
//   /tmp/dsp              checks, then the timing table
//   /tmp/dsp profile M    two launches of mode M, for ncu
// clang-format on
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#define CHECK(x)                                                                              \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

namespace {

constexpr int kUnitCodes = 2048;                  // k of a unit
constexpr int kGroup = 64;                        // codes a scale covers
constexpr int kUnitGroups = kUnitCodes / kGroup;  // 32
constexpr int kCodeBytes = 16 * kUnitCodes / 2;   // 16,384
// Then, for each step of 128 codes and each of the 16 rows, the step's two scales and two biases
// (8 bytes, so that a lane takes a row's four with one load): 2 KB.
constexpr int kUnitBytes = kCodeBytes + 16 * 16 * 8;  // 18,432
constexpr int kComputeWarps = 16;                     // one step of a unit each
constexpr int kThreads = 32 * (kComputeWarps + 1);    // + the streaming warp
constexpr int kMaxK = 14336;

enum InputKind : int { kPlain = 0, kSiluMul = 1, kRmsNorm = 2 };
// How the streaming warp fills a stage: one bulk copy of the unit, nine bulk copies of 2 KB, or
// 16-byte cp.async from all 32 lanes.
enum CopyMode : int { kBulkUnit = 0, kBulkPieces = 1, kLaneCopies = 2 };

struct Op {
  const unsigned char* w;  // units [tile][k / 2048]
  const __nv_bfloat16* in;
  __nv_bfloat16* out;
  int n, k, in_kind;
};

__device__ __forceinline__ unsigned int smem_addr(const void* p) {
  return static_cast<unsigned int>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(unsigned long long* b, unsigned int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(b)), "r"(count));
}
__device__ __forceinline__ void mbar_arrive(unsigned long long* b) {
  asm volatile("{ .reg .b64 st; mbarrier.arrive.shared::cta.b64 st, [%0]; }" ::"r"(smem_addr(b))
               : "memory");
}
__device__ __forceinline__ void mbar_expect(unsigned long long* b, unsigned int bytes) {
  asm volatile("{ .reg .b64 st; mbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1; }" ::"r"(
                   smem_addr(b)),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned long long* b, unsigned int parity) {
  unsigned int done = 0;
  do {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, "
        "p; }"
        : "=r"(done)
        : "r"(smem_addr(b)), "r"(parity)
        : "memory");
  } while (!done);
}
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned int bytes,
                                          unsigned long long* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::
          "r"(smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
}
__device__ __forceinline__ void copy16_async(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(dst)), "l"(src)
               : "memory");
}
// Arrives on the barrier once every cp.async this thread issued so far has landed.
__device__ __forceinline__ void async_arrive(unsigned long long* b) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_addr(b))
               : "memory");
}
// 64-bit relaxed accesses at gpu scope: each is single-copy atomic, so a word that carries its
// own completion tag needs no fence (the LL protocol of NCCL).
__device__ __forceinline__ void store_word64(unsigned long long* p, unsigned long long v) {
  asm volatile("st.relaxed.gpu.global.b64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}
__device__ __forceinline__ void load_words64(const unsigned long long* p, unsigned long long& a,
                                             unsigned long long& b) {
  asm volatile("ld.relaxed.gpu.global.v2.b64 {%0, %1}, [%2];"
               : "=l"(a), "=l"(b)
               : "l"(p)
               : "memory");
}
__device__ __forceinline__ void compute_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(32 * kComputeWarps) : "memory");
}
__device__ __forceinline__ unsigned int load_acquire(const unsigned int* p) {
  unsigned int v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], unsigned int a0, unsigned int a1,
                                               unsigned int a2, unsigned int a3, unsigned int b0,
                                               unsigned int b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// Codes i and i + 4 of a word as the exact bf16 pair (128 + q_i, 128 + q_{i+4}).
__device__ __forceinline__ unsigned int code_pair(unsigned int word, int shift) {
  return ((word >> shift) & 0x000F000Fu) | 0x43004300u;
}
__device__ __forceinline__ unsigned int word_of(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// acc_a / acc_b (rows g, g + 8) += step `s` of the unit in shared memory against x (the unit's
// 2,048 elements, each 8 stored in the order 0 4 1 5 2 6 3 7, which is the order of the mma's B
// fragment: a lane's 16-byte load is its two B registers for both halves of a word, with no
// permutes); gsum holds the sums of x over the unit's 32 scale groups, computed once an op while
// staging (the engine's kernel takes them with a second mma against ones in every tile). Lane
// (g, t4): codes [32 t4, 32 t4 + 32) of its two rows; the step's two scale groups are C columns 0
// and 1, which lanes with t4 == 0 own.
__device__ __forceinline__ void unit_step(const unsigned char* unit, const __nv_bfloat16* x,
                                          const float* gsum, int s, int lane, float& acc_a,
                                          float& acc_b) {
  const int g = lane >> 2, t4 = lane & 3;
  const uint4 qa = *reinterpret_cast<const uint4*>(unit + s * 1024 + 16 * lane);
  const uint4 qb = *reinterpret_cast<const uint4*>(unit + s * 1024 + 512 + 16 * lane);
  const bool xcol = g == (32 * t4) / kGroup;
  const __nv_bfloat16* xt = x + s * 128 + 32 * t4;
  float c[2][4] = {};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const unsigned int wa = word_of(qa, i), wb = word_of(qb, i);
    const uint4 xw = xcol ? *reinterpret_cast<const uint4*>(xt + 8 * i) : make_uint4(0, 0, 0, 0);
    mma_bf16_16816(c[0], code_pair(wa, 0), code_pair(wb, 0), code_pair(wa, 4), code_pair(wb, 4),
                   xw.x, xw.y);
    mma_bf16_16816(c[1], code_pair(wa, 8), code_pair(wb, 8), code_pair(wa, 12), code_pair(wb, 12),
                   xw.z, xw.w);
  }
  if (t4 == 0) {
    const unsigned char* cols = unit + kCodeBytes + s * 128;
    const uint2 ra = *reinterpret_cast<const uint2*>(cols + 8 * g);
    const uint2 rb = *reinterpret_cast<const uint2*>(cols + 64 + 8 * g);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const float xsum = gsum[2 * s + j];
      const float sa = __uint_as_float(j ? ra.x & 0xFFFF0000u : ra.x << 16);
      const float ba = __uint_as_float(j ? ra.y & 0xFFFF0000u : ra.y << 16);
      const float sb = __uint_as_float(j ? rb.x & 0xFFFF0000u : rb.x << 16);
      const float bb = __uint_as_float(j ? rb.y & 0xFFFF0000u : rb.y << 16);
      acc_a = fmaf(sa, fmaf(-128.0f, xsum, c[0][j] + c[1][j]), fmaf(ba, xsum, acc_a));
      acc_b = fmaf(sb, fmaf(-128.0f, xsum, c[0][2 + j] + c[1][2 + j]), fmaf(bb, xsum, acc_b));
    }
  }
}

// Two bf16 of a word as floats (exact), and two floats rounded into a word.
__device__ __forceinline__ float2 unpack_bf2(unsigned int w) {
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
}
__device__ __forceinline__ unsigned int pack_bf2(float lo, float hi) {
  return static_cast<unsigned int>(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
         (static_cast<unsigned int>(__bfloat16_as_ushort(__float2bfloat16_rn(hi))) << 16);
}
__device__ __forceinline__ float silu(float g) {
  return __fdividef(g, 1.0f + __expf(-g));
}

// The compute warps stage the op's input in shared memory (bf16, transformed by its kind). Every
// thread requests all of its 16-byte pieces before using any, so staging costs one L2 round trip
// (a first version looped one element at a time and held the ring still for ~56 of them). The
// pieces stay in registers as words: a first version cast &a[j] to bf16 pairs, which put the
// array in local memory, and with 216 KB of shared memory little L1 is left to hold it.
// late_norm: RMS-normalized inputs are staged as they are, each warp's sum of squares left in
// red[], and the products scaled by the RMS factor after the fact (the product is linear), so that
// staging holds no block barrier for the reduction; the tile's closing barrier covers it.
// sub (timing, thread 0 only, may be null): cycles to the inputs' arrival, the norm's reduction,
// and the stores and group sums.
// ll_tag != 0: the input is in LL words (a bf16 pair and, above it, the tag of the product
// that wrote it) and is read until every word carries ll_tag; that read is the only wait.
__device__ void stage_input(const Op& op, __nv_bfloat16* xs, float* red, float* gsum,
                            bool late_norm, long long* sub, unsigned int ll_tag) {
  const long long c0 = sub ? clock64() : 0;
  constexpr int kNt = 32 * kComputeWarps;
  constexpr int kPer = (kMaxK / 8 + kNt - 1) / kNt;  // pieces a thread at most
  const int t = threadIdx.x, pieces = op.k / 8;
  // Every block reads the same x: each starts at its own whole group (8 pieces), so that the
  // grid's requests spread over the vector's lines (measured: no change; kept as harmless).
  const int rot = static_cast<int>((blockIdx.x * 61u) % static_cast<unsigned int>(pieces / 8)) * 8;
  auto piece = [&](int i) { return i + rot < pieces ? i + rot : i + rot - pieces; };
  const auto* in = reinterpret_cast<const uint4*>(op.in);
  const bool silu_mul = op.in_kind == kSiluMul;
  uint4 a[kPer], b[kPer];
  if (ll_tag == 0) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int i = t + j * kNt;
      a[j] = b[j] = make_uint4(0, 0, 0, 0);
      if (i < pieces) {
        a[j] = __ldcg(in + piece(i));
        if (silu_mul) b[j] = __ldcg(in + pieces + piece(i));
      }
    }
  } else {
    const auto* words = reinterpret_cast<const unsigned long long*>(op.in);
    auto low = [](unsigned long long w) { return static_cast<unsigned int>(w); };
    bool ready = false;
    while (!ready) {
      ready = true;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int i = t + j * kNt;
        a[j] = b[j] = make_uint4(0, 0, 0, 0);
        if (i < pieces) {
          unsigned long long w[8] = {};
          const unsigned long long* g = words + 4LL * piece(i);
          load_words64(g, w[0], w[1]);
          load_words64(g + 2, w[2], w[3]);
          if (silu_mul) {
            load_words64(g + 4LL * pieces, w[4], w[5]);
            load_words64(g + 4LL * pieces + 2, w[6], w[7]);
          }
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            if ((e < 4 || silu_mul) && static_cast<unsigned int>(w[e] >> 32) != ll_tag) {
              ready = false;
            }
          }
          a[j] = make_uint4(low(w[0]), low(w[1]), low(w[2]), low(w[3]));
          b[j] = make_uint4(low(w[4]), low(w[5]), low(w[6]), low(w[7]));
        }
      }
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    unsigned int w[4] = {a[j].x, a[j].y, a[j].z, a[j].w};
    const unsigned int u[4] = {b[j].x, b[j].y, b[j].z, b[j].w};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = unpack_bf2(w[e]);
      if (silu_mul) {
        const float2 up = unpack_bf2(u[e]);
        w[e] = pack_bf2(silu(f.x) * up.x, silu(f.y) * up.y);
      } else {
        ss = fmaf(f.x, f.x, fmaf(f.y, f.y, ss));  // pieces past the end are zeros
      }
    }
    a[j] = make_uint4(w[0], w[1], w[2], w[3]);
  }
  const long long c1 = sub ? clock64() : 0;
  float inv = 1.0f;
  if (op.in_kind == kRmsNorm) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((t & 31) == 0) red[t >> 5] = ss;
  }
  if (op.in_kind == kRmsNorm && !late_norm) {
    compute_sync();
    float total = 0.0f;
    for (int w = 0; w < kComputeWarps; ++w) total += red[w];
    inv = rsqrtf(total / op.k + 1e-5f);
  }
  const long long c2 = sub ? clock64() : 0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = t + j * kNt;
    uint4 v = a[j];
    if (op.in_kind == kRmsNorm && !late_norm) {
      unsigned int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        w[e] = pack_bf2(f.x * inv, f.y * inv);
      }
      v = make_uint4(w[0], w[1], w[2], w[3]);
    }
    // Group sums of the staged (rounded) x: a group is 8 pieces, held by 8 consecutive lanes.
    float sum = 0.0f;
    {
      const unsigned int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = unpack_bf2(w[e]);
        sum += f.x + f.y;
      }
    }
    for (int o = 1; o < 8; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (i < pieces) {
      // Elements 0 4 1 5 2 6 3 7 of the piece: the B fragment order (see unit_step).
      reinterpret_cast<uint4*>(xs)[piece(i)] =
          make_uint4(__byte_perm(v.x, v.z, 0x5410u), __byte_perm(v.x, v.z, 0x7632u),
                     __byte_perm(v.y, v.w, 0x5410u), __byte_perm(v.y, v.w, 0x7632u));
      if ((i & 7) == 0) gsum[piece(i) >> 3] = sum;
    }
  }
  if (sub) {
    sub[0] += c1 - c0;
    sub[1] += c2 - c1;
    sub[2] += clock64() - c2;
  }
}

// One launch runs ops [0, nops). done[i] counts the blocks that finished op i over every launch
// (never reset): launch `epoch` waits for (epoch + 1) x grid before reading op i's output.
// mode 0 honours the flags; 1 skips their waits and 2 also skips staging the input; 3 also skips
// the products (the ring alone); 4 computes from stage 0 without any copies (the products alone);
// 5 honours the flags but skips staging; 6 is 4 with staging (the products and their inputs, no
// weight stream).
// Modes 1-4 are for timing only: their results are wrong.
// The tag of product o's output words in launch `epoch`: never 0 (buffers start zeroed), and
// different in every launch, so a word left by an earlier one never passes.
__device__ __forceinline__ unsigned int ll_tag(unsigned int epoch, int o) {
  return epoch * 256u + static_cast<unsigned int>(o) + 1u;
}

template <bool kTimed>
__global__ void __launch_bounds__(kThreads, 1)
    chain_kernel(const Op* ops, int nops, int stages, unsigned int* done, unsigned int epoch,
                 int mode, int copy_mode, int late_norm, unsigned long long* phases, int ll) {
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
  const unsigned int grid = gridDim.x;

  if (warp == kComputeWarps) {  // the streaming warp: every unit of every op, in order
    if ((copy_mode != kLaneCopies && lane != 0) || mode == 4 || mode == 6) return;
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
            for (int p = lane; p < kUnitBytes / 16; p += 32)
              copy16_async(dst + 16 * p, src + 16 * p);
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

  int stage = 0;
  unsigned int phase = 0, tiles_done = 0;
  // Where thread 0's cycles go (phases != nullptr): flag waits, staging, waits for the ring,
  // tile barriers, and the whole of its run.
  long long t_flag = 0, t_stage = 0, t_ring = 0, t_tile = 0, t_sub[3] = {0, 0, 0};
  const long long t_begin = kTimed ? clock64() : 0;
  const bool timed = kTimed && threadIdx.x == 0;
  for (int o = 0; o < nops; ++o) {
    const Op op = ops[o];
    const long long t0 = kTimed ? clock64() : 0;
    if (o > 0 && (mode == 0 || mode == 5) && !ll) {
      if (threadIdx.x == 0) {
        const unsigned int target = (epoch + 1) * grid;
        while (load_acquire(&done[o - 1]) < target) {
        }
        __threadfence();
      }
      compute_sync();
    }
    const long long t1 = kTimed ? clock64() : 0;
    if (timed) t_flag += t1 - t0;
    if (mode < 2 || mode == 6)
      stage_input(op, xs, red, gsum, late_norm != 0, timed ? t_sub : nullptr,
                  ll && o > 0 && mode == 0 ? ll_tag(epoch, o - 1) : 0u);
    compute_sync();
    if (timed) t_stage += clock64() - t1;
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
        if (mode == 4 || mode == 6) {
          unit_step(ring, xu, gu, warp, lane, acc_a, acc_b);
          if (two) unit_step(ring, xu + kUnitCodes, gu + kUnitGroups, warp, lane, acc2_a, acc2_b);
          continue;
        }
        const long long tw = kTimed ? clock64() : 0;
        mbar_wait(&full[s0], ph0);
        if (two) mbar_wait(&full[s1], ph1);
        if (timed) t_ring += clock64() - tw;
        if (mode != 3) {
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
      acc_a += acc2_a;
      acc_b += acc2_b;
      acc_a += __shfl_xor_sync(0xffffffffu, acc_a, 1);
      acc_a += __shfl_xor_sync(0xffffffffu, acc_a, 2);
      acc_b += __shfl_xor_sync(0xffffffffu, acc_b, 1);
      acc_b += __shfl_xor_sync(0xffffffffu, acc_b, 2);
      float* part = partial + (tiles_done & 1u) * kComputeWarps * 16;
      if ((lane & 3) == 0) {
        part[warp * 16 + (lane >> 2)] = acc_a;
        part[warp * 16 + (lane >> 2) + 8] = acc_b;
      }
      const long long tb = kTimed ? clock64() : 0;
      compute_sync();
      if (timed) t_tile += clock64() - tb;
      // Double-buffered by tile parity: the next tile's writes go to the other half, and the
      // one after waits behind the next tile's barrier, after these reads.
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
    // Every launch counts every block in on every product, LL or not: a launch's flag waits
    // expect (epoch + 1) x grid. LL readers never read the counter, so theirs needs no fence.
    if (threadIdx.x == 0) {
      if (!ll) __threadfence();
      atomicAdd(&done[o], 1u);
    }
  }
  if (timed) {
    unsigned long long* row = phases + 8 * blockIdx.x;
    row[5] = t_sub[0];
    row[6] = t_sub[1];
    row[7] = t_sub[2];
    row[0] = t_flag;
    row[1] = t_stage;
    row[2] = t_ring;
    row[3] = t_tile;
    row[4] = clock64() - t_begin;
  }
}

// Deterministic weights: random codes, scales s ~ gain / sqrt(21.25 k) (so that the product of a
// unit-RMS input has RMS ~gain), biases ~ -7.5 s.
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
    unsigned int v;
    if (off < kCodeBytes) {
      v = r;
    } else {
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

}  // namespace

// ---- host ----

float bf(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
float round_bf(double v) {
  return __bfloat162float(__float2bfloat16(static_cast<float>(v)));
}

struct HostOp {
  int n, k, in_kind;
  float gain;
  unsigned char* w;
  const __nv_bfloat16* in;
  __nv_bfloat16* out;
  size_t bytes() const { return static_cast<size_t>(n / 16) * (k / kUnitCodes) * kUnitBytes; }
};

// The product of op `o` in double from the GPU's own input, against the GPU's output.
// n bf16 from a device buffer, plain or in LL words (a bf16 pair in each word's low half).
std::vector<__nv_bfloat16> download(const void* p, int n, bool ll_words) {
  std::vector<__nv_bfloat16> v(n);
  if (!ll_words) {
    CHECK(cudaMemcpy(v.data(), p, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
    return v;
  }
  std::vector<unsigned long long> words(n / 2);
  CHECK(cudaMemcpy(words.data(), p, words.size() * 8, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n / 2; ++i) {
    v[2 * i] = __ushort_as_bfloat16(static_cast<unsigned short>(words[i]));
    v[2 * i + 1] = __ushort_as_bfloat16(static_cast<unsigned short>(words[i] >> 16));
  }
  return v;
}

// ll: the last launch wrote LL words (and op `index`'s input is in them unless it is op 0).
bool check_op(const HostOp& op, int index, bool ll = false) {
  std::vector<unsigned char> w(op.bytes());
  const int in_len = op.in_kind == kSiluMul ? 2 * op.k : op.k;
  CHECK(cudaMemcpy(w.data(), op.w, w.size(), cudaMemcpyDeviceToHost));
  const std::vector<__nv_bfloat16> in = download(op.in, in_len, ll && index > 0);
  const std::vector<__nv_bfloat16> out = download(op.out, op.n, ll);
  std::vector<double> x(op.k);
  double ss = 0.0;
  for (int i = 0; i < op.k; ++i) ss += static_cast<double>(bf(in[i])) * bf(in[i]);
  const double inv = 1.0 / std::sqrt(ss / op.k + 1e-5);
  for (int i = 0; i < op.k; ++i) {
    const double v = bf(in[i]);
    if (op.in_kind == kSiluMul) {
      x[i] = round_bf(v / (1.0 + std::exp(-v)) * bf(in[op.k + i]));
    } else if (op.in_kind == kRmsNorm) {
      x[i] = round_bf(v * inv);
    } else {
      x[i] = v;
    }
  }
  const int nk = op.k / kUnitCodes;
  double err = 0.0, ref_ss = 0.0;
  std::vector<double> ref(op.n);
  auto rows = [&](int first, int step) {
    for (int row = first; row < op.n; row += step) {
      double acc = 0.0;
      const int r16 = row % 16;
      for (int kk = 0; kk < nk; ++kk) {
        const unsigned char* unit =
            w.data() + (static_cast<size_t>(row / 16) * nk + kk) * kUnitBytes;
        const unsigned char* cols = unit + kCodeBytes;
        for (int c = 0; c < kUnitCodes; ++c) {
          const int s = c / 128, cs = c % 128, t4 = cs / 32, idx = cs % 32;
          const int lane = (r16 % 8) * 4 + t4;
          const unsigned char byte = unit[s * 1024 + (r16 / 8) * 512 + 16 * lane + idx / 2];
          const int q = (byte >> (4 * (idx % 2))) & 0xF;
          const int gu = c / kGroup;
          const auto* rec =
              reinterpret_cast<const __nv_bfloat16*>(cols + ((gu / 2) * 16 + r16) * 8);
          const double wv = static_cast<double>(bf(rec[gu % 2])) * q + bf(rec[2 + gu % 2]);
          acc += wv * x[kk * kUnitCodes + c];
        }
      }
      ref[row] = acc;
    }
  };
  std::vector<std::thread> pool;
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 0; t < threads; ++t) pool.emplace_back(rows, t, threads);
  for (auto& t : pool) t.join();
  for (int row = 0; row < op.n; ++row) ref_ss += ref[row] * ref[row];
  const double rms = std::sqrt(ref_ss / op.n);
  int bad = 0;
  for (int row = 0; row < op.n; ++row) {
    const double d = std::fabs(bf(out[row]) - ref[row]);
    if (d > err) err = d;
    if (d > 0.01 * rms + 0.008 * std::fabs(ref[row])) ++bad;
  }
  std::printf(
      "check op %3d (%6d x %5d, input kind %d): output rms %.4g, max |gpu - ref| %.3g "
      "(%.2f%% of rms), %d rows out of bounds\n",
      index, op.k, op.n, op.in_kind, rms, err, 100.0 * err / rms, bad);
  return bad == 0 && rms > 0.0 && std::isfinite(rms);
}

float elapsed_ms(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0.0f;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

size_t smem_bytes(int stages) {
  return static_cast<size_t>(stages) * kUnitBytes + kMaxK * sizeof(__nv_bfloat16) +
         (2 * kComputeWarps * 16 + kComputeWarps + kMaxK / kGroup) * sizeof(float) +
         2 * static_cast<size_t>(stages) * sizeof(unsigned long long);
}

// `decode_stream_probe profile M` runs two launches of mode M and nothing else (for ncu).
int main(int argc, char** argv) {
  const int profile_mode = argc > 2 && std::string(argv[1]) == "profile" ? std::atoi(argv[2]) : -1;
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);

  constexpr int kLayers = 32, kHidden = 4096, kFfn = 14336, kQkv = 6144, kVocab = 128256;
  std::vector<HostOp> ops;
  __nv_bfloat16* x0;
  CHECK(cudaMalloc(&x0, kHidden * sizeof(__nv_bfloat16)));
  {
    std::vector<__nv_bfloat16> h(kHidden);
    for (int i = 0; i < kHidden; ++i) h[i] = __float2bfloat16(std::sin(0.37 * i + 0.1));
    CHECK(cudaMemcpy(x0, h.data(), h.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
  }
  const __nv_bfloat16* prev = x0;
  auto add = [&](int n, int k, int kind, float gain, const __nv_bfloat16* in) {
    HostOp op{n, k, kind, gain, nullptr, in, nullptr};
    CHECK(cudaMalloc(&op.w, op.bytes()));
    // Room for LL words (4 bytes an element), zeroed: no LL tag is 0.
    CHECK(cudaMalloc(&op.out, 2 * n * sizeof(__nv_bfloat16)));
    CHECK(cudaMemset(op.out, 0, 2 * n * sizeof(__nv_bfloat16)));
    fill_weights<<<4 * sms, 256>>>(op.w, op.bytes() / kUnitBytes, k, gain,
                                   0x1234567ULL + ops.size());
    CHECK(cudaGetLastError());
    ops.push_back(op);
    return op.out;
  };
  for (int l = 0; l < kLayers; ++l) {
    const __nv_bfloat16* qkv = add(kQkv, kHidden, kRmsNorm, 1.0f, prev);
    const __nv_bfloat16* o = add(kHidden, kHidden, kPlain, 1.0f, qkv);  // stands in for attention
    const __nv_bfloat16* gu = add(2 * kFfn, kHidden, kRmsNorm, 2.0f, o);
    prev = add(kHidden, kFfn, kSiluMul, 1.0f, gu);
  }
  add(kVocab, kHidden, kRmsNorm, 1.0f, prev);
  CHECK(cudaDeviceSynchronize());
  const int nops = static_cast<int>(ops.size());
  size_t bytes = 0;
  std::vector<Op> dev_ops(nops);
  for (int i = 0; i < nops; ++i) {
    bytes += ops[i].bytes();
    dev_ops[i] = Op{ops[i].w, ops[i].in, ops[i].out, ops[i].n, ops[i].k, ops[i].in_kind};
  }
  Op* d_ops;
  CHECK(cudaMalloc(&d_ops, nops * sizeof(Op)));
  CHECK(cudaMemcpy(d_ops, dev_ops.data(), nops * sizeof(Op), cudaMemcpyHostToDevice));
  unsigned int* done;
  CHECK(cudaMalloc(&done, nops * sizeof(unsigned int)));
  CHECK(cudaMemset(done, 0, nops * sizeof(unsigned int)));
  std::printf("chain: %d products, %.3f GB of weights (4-bit g64 + bf16 scales and biases)\n", nops,
              bytes / 1e9);

  cudaStream_t st;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));

  if (profile_mode >= 0) {
    CHECK(cudaFuncSetAttribute(chain_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem_bytes(10))));
    for (int r = 0; r < 2; ++r) {
      const Op* ops_arg = d_ops;
      int n_arg = nops, stages = 10, mode = profile_mode, copy_mode = kBulkUnit, late = 0;
      unsigned int ep = static_cast<unsigned int>(r);
      unsigned long long* no_phases = nullptr;
      int no_ll = 0;
      void* args[] = {&ops_arg, &n_arg,     &stages, &done,      &ep,
                      &mode,    &copy_mode, &late,   &no_phases, &no_ll};
      CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&chain_kernel<false>),
                                        dim3(sms), dim3(kThreads), args, smem_bytes(stages), st));
    }
    CHECK(cudaStreamSynchronize(st));
    return 0;
  }
  // The streaming-read reference of this run: a 2 GB device copy (read + write counted).
  {
    const size_t n = size_t(1) << 30;
    void *a, *b;
    CHECK(cudaMalloc(&a, n));
    CHECK(cudaMalloc(&b, n));
    float best = 1e30f;
    for (int r = 0; r < 5; ++r) {
      CHECK(cudaEventRecord(e0, st));
      CHECK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, st));
      CHECK(cudaEventRecord(e1, st));
      CHECK(cudaStreamSynchronize(st));
      best = std::fmin(best, elapsed_ms(e0, e1));
    }
    std::printf("copy ceiling: %.0f GB/s (1 GiB copied, read + write)\n", 2.0 * n / best / 1e6);
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
  }

  CHECK(cudaFuncSetAttribute(chain_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_bytes(10))));
  CHECK(cudaFuncSetAttribute(chain_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem_bytes(10))));
  unsigned int epoch = 0;
  unsigned long long* phase_rows = nullptr;  // set while a phase breakdown is taken
  auto launch_chain = [&](int stages, int mode, int copy_mode = kBulkUnit, int late_norm = 0,
                          int ll = 0) {
    const Op* ops_arg = d_ops;
    int n_arg = nops;
    void* args[] = {&ops_arg, &n_arg,     &stages,    &done,       &epoch,
                    &mode,    &copy_mode, &late_norm, &phase_rows, &ll};
    const void* fn = phase_rows ? reinterpret_cast<const void*>(&chain_kernel<true>)
                                : reinterpret_cast<const void*>(&chain_kernel<false>);
    CHECK(cudaLaunchCooperativeKernel(fn, dim3(sms), dim3(kThreads), args, smem_bytes(stages), st));
    ++epoch;
  };
  // The same kernel launched once a product (a graph of nops launches): the weight stream stops
  // at every dependency, as it does with one kernel an op today.
  auto launch_per_op = [&](int stages) {
    for (int i = 0; i < nops; ++i) {
      const Op* ops_arg = d_ops + i;
      int one = 1, no_wait = 0;
      unsigned int ep = 0;
      unsigned int* scratch = done;  // op 0's counter of this sub-chain: never waited on
      int copy_mode = kBulkUnit, late = 0, no_ll = 0;
      unsigned long long* no_phases = nullptr;
      void* args[] = {&ops_arg, &one,       &stages, &scratch,   &ep,
                      &no_wait, &copy_mode, &late,   &no_phases, &no_ll};
      CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(&chain_kernel<false>), dim3(sms),
                             dim3(kThreads), args, smem_bytes(stages), st));
    }
  };

  // Correctness first, with the flags honoured.
  launch_chain(10, 0);
  CHECK(cudaStreamSynchronize(st));
  bool ok = true;
  for (int i : {0, 1, 2, 3, nops - 5, nops - 4, nops - 3, nops - 2, nops - 1}) {
    ok = check_op(ops[i], i) && ok;
  }
  std::printf("checks: %s\n", ok ? "passed" : "FAILED");

  auto report = [&](const char* what, float ms) {
    std::printf("%-72s %8.1f us  %6.0f GB/s  %5.1f%% of 3.04 TB/s\n", what, 1000.0f * ms,
                bytes / ms / 1e6, 100.0 * bytes / ms / 1e6 / 3040.0);
  };
  auto time_it = [&](auto&& body) {
    body();
    CHECK(cudaStreamSynchronize(st));
    std::vector<float> t;
    for (int r = 0; r < 9; ++r) {
      CHECK(cudaEventRecord(e0, st));
      body();
      CHECK(cudaEventRecord(e1, st));
      CHECK(cudaStreamSynchronize(st));
      t.push_back(elapsed_ms(e0, e1));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const char* mode_names[] = {"flags",
                              "no flags (timing only)",
                              "no flags, no staging (timing only)",
                              "ring only (timing only)",
                              "products only (timing only)",
                              "flags, no staging (timing only)",
                              "products and staging, no stream (timing only)"};
  const char* copy_names[] = {"one bulk copy", "9 bulk copies", "lane cp.async"};
  for (int copy_mode : {kBulkUnit}) {
    // Correctness of each copy path, flags honoured, before its timings.
    launch_chain(10, 0, copy_mode);
    CHECK(cudaStreamSynchronize(st));
    bool path_ok = true;
    for (int i : {1, 3, nops - 1}) path_ok = check_op(ops[i], i) && path_ok;
    std::printf("%s: checks %s\n", copy_names[copy_mode], path_ok ? "passed" : "FAILED");
    ok = ok && path_ok;
    for (int stages : {4, 10}) {
      for (int mode : {0, 1, 5, 2, 3, 4, 6}) {
        if (mode >= 4 && copy_mode != kBulkUnit) continue;
        char name[112];
        std::snprintf(name, sizeof name, "persistent, %s, %s, %d stages", copy_names[copy_mode],
                      mode_names[mode], stages);
        report(name, time_it([&] { launch_chain(stages, mode, copy_mode); }));
      }
    }
  }
  {
    // Where a block's compute warps spend the chain (thread 0's cycles, averaged over blocks).
    CHECK(cudaMalloc(&phase_rows, 8 * sms * sizeof(unsigned long long)));
    for (int mode : {0, 1, 5, 2, 6}) {
      launch_chain(10, mode);
      CHECK(cudaStreamSynchronize(st));
      std::vector<unsigned long long> rows(8 * sms);
      CHECK(cudaMemcpy(rows.data(), phase_rows, rows.size() * sizeof(unsigned long long),
                       cudaMemcpyDeviceToHost));
      double sum[8] = {};
      for (int b = 0; b < sms; ++b) {
        for (int j = 0; j < 8; ++j) sum[j] += static_cast<double>(rows[8 * b + j]) / sms;
      }
      std::printf(
          "phases, %s: flag waits %.1f%%, staging %.1f%%, ring waits %.1f%%, tile "
          "barriers %.1f%%, the rest (products, loop) %.1f%% of %.0f cycles\n",
          mode_names[mode], 100 * sum[0] / sum[4], 100 * sum[1] / sum[4], 100 * sum[2] / sum[4],
          100 * sum[3] / sum[4], 100 * (sum[4] - sum[0] - sum[1] - sum[2] - sum[3]) / sum[4],
          sum[4]);
      std::printf(
          "  staging, cycles an op: loads %.0f, norm reduction %.0f, stores and group sums "
          "%.0f, closing barrier %.0f\n",
          sum[5] / nops, sum[6] / nops, sum[7] / nops, (sum[1] - sum[5] - sum[6] - sum[7]) / nops);
    }
    CHECK(cudaFree(phase_rows));
    phase_rows = nullptr;
  }
  {
    // The flag in the data (LL words): checked, then timed, then a phase breakdown.
    launch_chain(10, 0, kBulkUnit, 0, 1);
    CHECK(cudaStreamSynchronize(st));
    bool ll_ok = true;
    for (int i : {0, 1, 3, nops - 1}) ll_ok = check_op(ops[i], i, true) && ll_ok;
    std::printf("LL words: checks %s\n", ll_ok ? "passed" : "FAILED");
    ok = ok && ll_ok;
    for (int stages : {4, 10}) {
      char name[112];
      std::snprintf(name, sizeof name, "persistent, LL words, flags in the data, %d stages",
                    stages);
      report(name, time_it([&] { launch_chain(stages, 0, kBulkUnit, 0, 1); }));
      std::snprintf(name, sizeof name, "persistent, LL words, late norm, %d stages", stages);
      report(name, time_it([&] { launch_chain(stages, 0, kBulkUnit, 1, 1); }));
    }
    CHECK(cudaMalloc(&phase_rows, 8 * sms * sizeof(unsigned long long)));
    launch_chain(10, 0, kBulkUnit, 0, 1);
    CHECK(cudaStreamSynchronize(st));
    std::vector<unsigned long long> rows(8 * sms);
    CHECK(cudaMemcpy(rows.data(), phase_rows, rows.size() * sizeof(unsigned long long),
                     cudaMemcpyDeviceToHost));
    double sum[8] = {};
    for (int b = 0; b < sms; ++b) {
      for (int j = 0; j < 8; ++j) sum[j] += static_cast<double>(rows[8 * b + j]) / sms;
    }
    std::printf(
        "phases, LL words: staging with the wait %.1f%%, ring waits %.1f%%, the rest "
        "%.1f%% of %.0f cycles; staging, cycles an op: loads and wait %.0f, norm %.0f, "
        "stores and group sums %.0f\n",
        100 * sum[1] / sum[4], 100 * sum[2] / sum[4],
        100 * (sum[4] - sum[0] - sum[1] - sum[2] - sum[3]) / sum[4], sum[4], sum[5] / nops,
        sum[6] / nops, sum[7] / nops);
    CHECK(cudaFree(phase_rows));
    phase_rows = nullptr;
    // Back to plain outputs for what follows.
    launch_chain(10, 0);
    CHECK(cudaStreamSynchronize(st));
  }
  {
    // The RMS factor applied after the product (late_norm): checked, then timed.
    launch_chain(10, 0, kBulkUnit, 1);
    CHECK(cudaStreamSynchronize(st));
    bool late_ok = true;
    for (int i : {0, 2, nops - 1}) late_ok = check_op(ops[i], i) && late_ok;
    std::printf("late norm: checks %s\n", late_ok ? "passed" : "FAILED");
    ok = ok && late_ok;
    for (int stages : {4, 10}) {
      for (int mode : {0, 1}) {
        char name[112];
        std::snprintf(name, sizeof name, "persistent, late norm, %s, %d stages", mode_names[mode],
                      stages);
        report(name, time_it([&] { launch_chain(stages, mode, kBulkUnit, 1); }));
      }
    }
  }
  for (int stages : {10}) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    launch_per_op(stages);
    CHECK(cudaStreamEndCapture(st, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    char name[96];
    std::snprintf(name, sizeof name, "one launch a product (graph), %d stages", stages);
    report(name, time_it([&] { CHECK(cudaGraphLaunch(exec, st)); }));
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(graph));
  }
  // The per-op launches ran op i with its inputs ready: their results must check too.
  ok = check_op(ops[nops - 1], nops - 1) && ok;
  std::printf("final: %s\n", ok ? "passed" : "FAILED");
  return ok ? 0 : 1;
}
