// The fused decode step (mlxn/ops/fused_decode.h): one persistent launch, one block an SM, runs
// every layer of a decode step and the head. Warp 16 of each block streams the block's share of
// every weight of the step, in the order the products use them, into a ring of shared-memory
// stages (two bulk copies a unit) and never waits for activations; warps 0-15 run the steps in
// order, each after waiting for the completion counter of the step it reads:
//   per layer: qkv (rms_norm(x) in), attention (RoPE, cache append, split-KV partials, merge by
//   the last block of each KV head), o (x += ...), gate_up (rms_norm(x) in, silu(g) u out), down
//   (x += ...); then the head (rms_norm(x) in, logits out).
// Each product stages its input quantized to int8, one plane or two (ops::FusedDecodeInputs: the
// kernel's kPlanes), and multiplies on the int8 tensor cores (fused_decode_products.cuh).
// A product's tiles (16 rows) go to blocks round robin (tile t to block t mod grid), so a block
// reads the same rows of o and down, which add into x: the residual rows a block writes are its
// own. The gate/up product goes by pairs instead (block_tile): a block takes gate tile p and then
// up tile p, so it holds g and u of the same 16 rows and writes silu(g) u itself; down's staging
// then reads half the bytes and computes no SiLU (132 blocks each did it for every element: a
// tenth of the step's warp time, docs/perf.md step 27). Counters are u32 words in the workspace,
// each block adds 1 when it finished a product (target: the grid), attention arrivals count per KV
// head, merges per layer; the last block out zeroes them for the next launch (launches of one plan
// run one after another).
//
// Residency: the blocks wait for each other, so all must be resident at once. One block an SM
// (its shared memory allows no second), as many blocks as SMs, and no other kernel can keep one
// from starting for long (earlier kernels finish without waiting for this one). A wait that runs
// past kStallNs (another context holding SMs, or a failed earlier launch) reports
// kStatusFusedDecodeStalled and marks the workspace poisoned, which every later launch refuses.
#include <cstdio>
#include <map>
#include <mutex>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/fused_decode_attention.cuh"
#include "backends/cuda/kernels/fused_decode_kernels.h"
#include "backends/cuda/kernels/fused_decode_layout.cuh"
#include "backends/cuda/kernels/fused_decode_products.cuh"
#include "backends/cuda/kernels/fused_decode_timeline.cuh"
#include "backends/cuda/kernels/hopper_ptx.cuh"
#include "ops/fused_decode_params.h"
#include "ops/op_params.h"

namespace mlxn::cuda {
namespace {

using namespace fd;  // NOLINT(google-build-using-namespace): this file is the namespace's user

static_assert(Smem::bytes(kMaxStages) + kStaticSmem + kTlSmemBytes <= 227 * 1024,
              "ten stages and the timeline's stamps fit an sm_90 block");

constexpr unsigned long long kStallNs = 5'000'000'000ull;  // 5 s: a step takes milliseconds

/// Products of a layer, in order; their counters follow kFdCounterProducts, 4 a layer.
enum LayerProduct : int { kQkv = 0, kO = 1, kGateUp = 2, kDown = 3 };

/// Where the compute warps of a block are, for the stall report's info.
__device__ __forceinline__ unsigned long long step_code(int layer, int what) {
  return static_cast<unsigned long long>(layer) * 8u + static_cast<unsigned long long>(what);
}

struct Ctx {
  const DeviceArgs* args;
  const ops::FusedDecodeParams* p;
  const ops::FusedDecodeTableHead* head;
  const ops::FusedDecodeLayerRef* layers;
  unsigned int* counters;
  volatile int* abort_flag;  // shared: set when this block gives up (the streaming warp stops)
};

__device__ __forceinline__ unsigned int* counter(const Ctx& c, long long index) {
  return c.counters + index * ops::kFdCounterWords;
}

/// Thread 0 waits until the counter reaches `target`, then the compute warps pass a barrier, so
/// every compute thread's later reads come after the counted blocks' writes. False (for every
/// compute thread) when the wait stalled: the launch is then given up.
__device__ bool wait_for(const Ctx& c, long long index, unsigned int target,
                         unsigned long long code) {
  __shared__ int stalled;
  if (threadIdx.x == 0) {
    stalled = 0;
    const unsigned int* w = counter(c, index);
    if (load_acquire(w) < target) {
      const unsigned long long start = global_ns();
      unsigned int spins = 0;
      while (load_acquire(w) < target) {
        if ((++spins & 255u) == 0 && global_ns() - start > kStallNs) {
          stalled = 1;
          atomicExch(counter(c, ops::kFdCounterPoisoned), 1u);
          report_status(*c.args, ops::kStatusFusedDecodeStalled, code);
          *c.abort_flag = 1;
          break;
        }
      }
    }
  }
  compute_sync();
  return stalled == 0;
}

/// Counts this block in on a counter once its compute warps are done with a step: the barrier
/// orders every compute thread's writes before thread 0's release add (PTX's release is
/// cumulative), which a reader's acquire load then orders before its reads.
__device__ __forceinline__ void count_in(const Ctx& c, long long index) {
  compute_sync();
  if (threadIdx.x == 0) add_release(counter(c, index), 1u);
}

enum OutputKind : int {
  kOutStore = 0,     // out[row] = the product
  kOutResidual = 1,  // out[row] += the product (x)
  kOutSiluPair = 2,  // paired tiles (block_tile): out[row] = silu(gate row) * (up row)
};

/// The j-th tile a block takes of a product with `tiles` tiles, or a value >= `tiles` when it has
/// no more.
/// Plain: tile t to block t mod grid. Paired (the gate/up product, gate rows then as many up
/// rows): pair p, gate tile p then up tile p + tiles / 2, to block p mod grid. The streaming warp
/// and the compute warps walk the same order.
__device__ __forceinline__ int block_tile(int tiles, bool paired, int j) {
  if (!paired) return static_cast<int>(blockIdx.x) + j * static_cast<int>(gridDim.x);
  const int pairs = tiles / 2;
  const int pair = static_cast<int>(blockIdx.x) + (j >> 1) * static_cast<int>(gridDim.x);
  return pair < pairs ? pair + (j & 1) * pairs : tiles;
}

/// The ring as the compute warps walk it.
struct RingCursor {
  int stage = 0;
  unsigned int phase = 0;
  unsigned int tiles_done = 0;
};

/// The staged input's carve-up of the `xs` region (Smem::kXs bytes): two planes of int8 values,
/// then the runs' scales; the group sums have their own array.
__device__ __forceinline__ StagedInput staged_input(void* xs, float* gsum) {
  auto* bytes = static_cast<unsigned char*>(xs);
  return StagedInput{reinterpret_cast<signed char*>(bytes),
                     reinterpret_cast<signed char*>(bytes + Smem::kXq2Offset),
                     reinterpret_cast<float*>(bytes + Smem::kXscaleOffset), gsum};
}

/// One product: this block's tiles of W (in') into `out` (stored, added into it: x += W in', or,
/// paired, silu(g) u). The input must be ready (the caller waited) and is staged first.
template <int kPlanes>
__device__ void product(const Matrix& w, const __nv_bfloat16* in, const __nv_bfloat16* norm,
                        int in_kind, float eps, __nv_bfloat16* out, int out_kind, int stages,
                        unsigned char* ring, unsigned long long* full, unsigned long long* empty,
                        unsigned char* xs, float* partial, float* red, float* gsum, float* resid,
                        RingCursor& rc) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int tiles = w.n / 16, nk = w.k / kUnitCodes;
  const bool paired = out_kind == kOutSiluPair;
  if (out_kind == kOutResidual && threadIdx.x < 16) {
    // This block's rows of x, requested now so that they arrive while the input is staged: only
    // this block writes them (o and down give tile t to block t mod grid alike).
#pragma unroll
    for (int j = 0; j < kResidTiles; ++j) {
      const int tile = block_tile(tiles, false, j);
      if (tile < tiles)
        resid[j * 16 + threadIdx.x] = __bfloat162float(__ldcg(out + tile * 16 + threadIdx.x));
    }
  }
  const StagedInput st = staged_input(xs, gsum);
  stage_input<kPlanes>(in, norm, w.k, in_kind, eps, st, red);
  compute_sync();
  float gate = 0.0f;  // paired: thread r < 16 keeps its gate row between the pair's two tiles
  for (int j = 0;; ++j, ++rc.tiles_done) {
    const int tile = block_tile(tiles, paired, j);
    if (tile >= tiles) break;
    // A warp takes its step of two units at once (separate accumulators): two independent mma
    // chains in flight (one at a time left ~60% of issue slots idle in the probe).
    float acc_a = 0.0f, acc_b = 0.0f, acc2_a = 0.0f, acc2_b = 0.0f;
    for (int kk = 0; kk < nk; kk += 2) {
      const bool two = kk + 1 < nk;
      const int s0 = rc.stage;
      const unsigned int ph0 = rc.phase;
      if (++rc.stage == stages) rc.stage = 0, rc.phase ^= 1u;
      const int s1 = rc.stage;
      const unsigned int ph1 = rc.phase;
      if (two && ++rc.stage == stages) rc.stage = 0, rc.phase ^= 1u;
      const signed char* xu = st.xq + kk * kUnitCodes;
      const signed char* xu2 = st.xq2 + kk * kUnitCodes;
      const float* su = st.xscale + kk * kUnitRuns;
      const float* gu = st.gsum + kk * kUnitGroups;
      mbar_wait(&full[s0], ph0);
      if (two) mbar_wait(&full[s1], ph1);
      unit_step<kPlanes>(ring + static_cast<size_t>(s0) * kUnitBytes, xu, xu2, su, gu, warp, lane,
                         acc_a, acc_b);
      if (two) {
        unit_step<kPlanes>(ring + static_cast<size_t>(s1) * kUnitBytes, xu + kUnitCodes,
                           xu2 + kUnitCodes, su + kUnitRuns, gu + kUnitGroups, warp, lane, acc2_a,
                           acc2_b);
      }
      __syncwarp();
      if (lane == 0) {
        mbar_arrive(&empty[s0]);
        if (two) mbar_arrive(&empty[s1]);
      }
    }
    // Lanes t4 = 0 and 1 hold a group's sums each (unit_step): lane t4 = 0 adds its pair's. The
    // tile's 16 warps then add through shared memory, double-buffered by tile parity: the next
    // tile writes the other half, and the one after waits behind the next tile's barrier, after
    // these reads.
    float sum_a = acc_a + acc2_a, sum_b = acc_b + acc2_b;
    sum_a += __shfl_xor_sync(0xffffffffu, sum_a, 1);
    sum_b += __shfl_xor_sync(0xffffffffu, sum_b, 1);
    float* part = partial + (rc.tiles_done & 1u) * kComputeWarps * 16;
    if ((lane & 3) == 0) {
      part[warp * 16 + (lane >> 2)] = sum_a;
      part[warp * 16 + (lane >> 2) + 8] = sum_b;
    }
    compute_sync();
    if (threadIdx.x < 16) {
      float sum = 0.0f;
      for (int wi = 0; wi < kComputeWarps; ++wi) sum += part[wi * 16 + threadIdx.x];
      const int row = tile * 16 + threadIdx.x;
      if (out_kind == kOutResidual) {
        // As ops::add_rms_norm: the projection rounded to bf16, then x + it rounded.
        const float x =
            j < kResidTiles ? resid[j * 16 + threadIdx.x] : __bfloat162float(__ldcg(out + row));
        out[row] = __float2bfloat16_rn(x + round_bf16(sum));
      } else if (paired) {
        // As the per-op path: g and u rounded to bf16 (the gate/up product's output), then
        // ops::silu_mul's silu(g) u rounded.
        if ((j & 1) == 0) {
          gate = round_bf16(sum);
        } else {
          out[row - w.n / 2] = __float2bfloat16_rn(silu(gate) * round_bf16(sum));
        }
      } else {
        out[row] = __float2bfloat16_rn(sum);
      }
    }
  }
}

/// How a step's attention splits into items: each KV head's positions in `chunks` pieces, about
/// one item a block, none empty.
struct AttnSplit {
  int chunks, items;
};
__device__ __forceinline__ AttnSplit attention_split(const ops::FusedDecodeParams& p,
                                                     unsigned int grid) {
  AttnSplit s;
  const int kv_len = static_cast<int>(p.position) + 1;
  const int n_kv = static_cast<int>(p.n_kv_heads);
  s.chunks = static_cast<int>(grid) / n_kv;
  if (s.chunks > kv_len) s.chunks = kv_len;
  if (s.chunks < 1) s.chunks = 1;
  s.items = s.chunks * n_kv;
  return s;
}

/// The streaming warp's lane 0: every unit of this block's tiles of every product, in order.
__device__ void stream_weights(const Ctx& c, int stages, unsigned char* ring,
                               unsigned long long* full, unsigned long long* empty) {
  int stage = 0;
  unsigned int phase = 0;
  long long issued = 0;
  // On abort: the block must not exit while bulk copies still write its shared memory, so wait
  // for the last copy issued into each stage (the compute warps no longer consume them).
  auto drain = [&] {
    for (int s = 0; s < stages; ++s) {
      if (s < stage) {
        mbar_wait(&full[s], phase);
      } else if (issued >= stages) {
        mbar_wait(&full[s], phase ^ 1u);
      }
    }
  };
  auto stream = [&](const Matrix& w, bool paired, int stamp) -> bool {
    const int tiles = w.n / 16, nk = w.k / kUnitCodes, steps = w.k / kStepCodes;
    for (int j = 0;; ++j) {
      const int tile = block_tile(tiles, paired, j);
      if (tile >= tiles) break;
      for (int kk = 0; kk < nk; ++kk) {
        const int s = stage;
        while (!mbar_test(&empty[s], phase ^ 1u)) {
          if (*c.abort_flag) {
            drain();
            return false;
          }
        }
        if (++stage == stages) stage = 0, phase ^= 1u;
        ++issued;
        unsigned char* dst = ring + static_cast<size_t>(s) * kUnitBytes;
        mbar_expect(&full[s], kUnitBytes);
        bulk_copy(dst, w.codes + (static_cast<size_t>(tile) * steps + kk * kStepsPerUnit) * 1024,
                  kCodeBytes, &full[s]);
        bulk_copy(dst + kCodeBytes, w.scales + (static_cast<size_t>(tile) * nk + kk) * kScaleBytes,
                  kScaleBytes, &full[s]);
      }
    }
    tl_stream(stamp);
    return true;
  };
  const int n_layers = static_cast<int>(c.p->n_layers);
  for (int l = 0; l < n_layers; ++l) {
    const ops::FusedDecodeLayerRef& L = c.layers[l];
    if (!stream(matrix_of(L.qkv), false, tl_stream_slot(l, 0)) ||
        !stream(matrix_of(L.o), false, tl_stream_slot(l, 1)) ||
        !stream(matrix_of(L.gate_up), true, tl_stream_slot(l, 2)) ||
        !stream(matrix_of(L.down), false, tl_stream_slot(l, 3))) {
      return;
    }
  }
  stream(matrix_of(c.head->head), false, 4 * kTlMaxLayers);
}

/// The ring's stages: what the launch's dynamic shared memory holds beside the fixed parts.
__device__ __forceinline__ int ring_stages() {
  unsigned int bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  return static_cast<int>((bytes - Smem::bytes(0)) / (kUnitBytes + 16));
}

/// kPlanes: the products' int8 input planes (ops::FusedDecodeInputs).
template <int kPlanes>
__global__ void __launch_bounds__(kThreads, 1)
    fused_decode_kernel(const __grid_constant__ DeviceArgs args) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  // Bulk copies and mbarriers are sm_90's; the registry offers this kernel only there.
  __trap();
#else
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int abort_flag, last_block;
  const auto& p = params_as<ops::FusedDecodeParams>(args);
  const int stages = ring_stages();
  unsigned char* ring = smem;
  // Smem's carve-up after the ring, each part's offset from Smem's sizes (a part sized by hand
  // here once overlapped the next when its size changed).
  unsigned char* xs = smem + static_cast<size_t>(stages) * kUnitBytes;  // staged inputs
  unsigned char* const partial_at = xs + Smem::kXs;
  unsigned char* const red_at = partial_at + Smem::kPartial;
  unsigned char* const gsum_at = red_at + Smem::kRed;
  unsigned char* const resid_at = gsum_at + Smem::kGsum;
  auto* partial = reinterpret_cast<float*>(partial_at);
  auto* red = reinterpret_cast<float*>(red_at);
  auto* gsum = reinterpret_cast<float*>(gsum_at);
  auto* resid = reinterpret_cast<float*>(resid_at);
  auto* full = reinterpret_cast<unsigned long long*>(resid_at + Smem::kResid);
  unsigned long long* empty = full + stages;

  const auto* table = static_cast<const unsigned char*>(args.ptr[0]);
  Ctx c;
  c.args = &args;
  c.p = &p;
  c.head = reinterpret_cast<const ops::FusedDecodeTableHead*>(table);
  c.layers =
      reinterpret_cast<const ops::FusedDecodeLayerRef*>(table + sizeof(ops::FusedDecodeTableHead));
  auto* ws = static_cast<unsigned char*>(args.ptr[3]);
  c.counters = reinterpret_cast<unsigned int*>(ws);
  c.abort_flag = &abort_flag;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == 0) {
    abort_flag = 0;
    for (int s = 0; s < stages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], kComputeWarps);
    }
    mbar_init_fence();
    tl_reset();
  }
  __syncthreads();

  if (warp == kComputeWarps) {
    // Weights do not depend on earlier kernels: the stream starts before the dependency wait.
    if (lane == 0) stream_weights(c, stages, ring, full, empty);
    return;
  }
  pdl_wait();  // x (the embedding) and the caches are written by earlier kernels

  // An earlier launch stalled: its counters are not at zero, so no wait can be trusted. Thread 0
  // reads the flag for the block (another block of this launch may set it at any time: warps
  // reading it themselves could disagree and leave some waiting at a barrier forever).
  if (threadIdx.x == 0) {
    abort_flag = load_acquire(counter(c, ops::kFdCounterPoisoned)) != 0 ? 1 : 0;
    if (abort_flag) report_status(args, ops::kStatusFusedDecodeStalled, ~0ull);
  }
  compute_sync();
  if (abort_flag) return;

  const ops::FusedDecodeWorkspace wl = ops::fused_decode_workspace(
      p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim, p.intermediate, ops::kFdMaxBlocks);
  auto* partials = reinterpret_cast<float*>(ws + wl.partials);
  auto* qkv = reinterpret_cast<__nv_bfloat16*>(ws + wl.qkv);
  auto* attn = reinterpret_cast<__nv_bfloat16*>(ws + wl.attn);
  auto* ffn = reinterpret_cast<__nv_bfloat16*>(ws + wl.ffn);  // silu(g) u
  auto* x = static_cast<__nv_bfloat16*>(args.ptr[1]);
  auto* logits = static_cast<__nv_bfloat16*>(args.ptr[2]);
  const float* inv_freq = static_cast<const float*>(args.ptr[4]);
  const unsigned int grid = gridDim.x;
  const int n_layers = static_cast<int>(p.n_layers);
  const int n_kv = static_cast<int>(p.n_kv_heads);
  const AttnSplit split = attention_split(p, grid);
  const int n_chunks = split.chunks, items = split.items;

  RingCursor rc;
  for (int l = 0; l < n_layers; ++l) {
    const ops::FusedDecodeLayerRef& L = c.layers[l];
    const long long prod0 = ops::kFdCounterProducts + 4LL * l;
    if (l > 0 && !wait_for(c, prod0 - 4 + kDown, grid, step_code(l, kQkv))) return;
    tl_compute(tl_layer_slot(l, 0));
    product<kPlanes>(matrix_of(L.qkv), x, reinterpret_cast<const __nv_bfloat16*>(L.attn_norm),
                     kInRmsNorm, p.eps, qkv, kOutStore, stages, ring, full, empty, xs, partial, red,
                     gsum, resid, rc);
    tl_compute(tl_layer_slot(l, 1));
    count_in(c, prod0 + kQkv);

    // Attention: a block with an item waits for the whole q/k/v row; items go round robin.
    if (static_cast<int>(blockIdx.x) < items) {
      if (!wait_for(c, prod0 + kQkv, grid, step_code(l, 4))) return;
      tl_compute(tl_layer_slot(l, 2));
      AttnStep a;
      a.qkv = qkv;
      a.k_cache = reinterpret_cast<__nv_bfloat16*>(L.k_cache);
      a.v_cache = reinterpret_cast<__nv_bfloat16*>(L.v_cache);
      a.inv_freq = inv_freq;
      a.capacity = p.capacity;
      a.n_heads = static_cast<int>(p.n_heads);
      a.n_kv_heads = n_kv;
      a.group = static_cast<int>(p.n_heads / p.n_kv_heads);
      a.position = static_cast<int>(p.position);
      a.attn_scale = p.attn_scale;
      a.rope_scale = p.rope_scale;
      for (int item = static_cast<int>(blockIdx.x); item < items; item += static_cast<int>(grid)) {
        const int h = item / n_chunks, ch = item % n_chunks;
        attention_item(a, h, ch, n_chunks, static_cast<int>(wl.max_chunks), partials,
                       reinterpret_cast<float*>(xs), partial);
        compute_sync();
        if (threadIdx.x == 0) {
          // Release: the partials before the count; acquire: the last arriver reads the others'.
          unsigned int* arrivals = counter(c, wl.arrive0 + static_cast<long long>(l) * n_kv + h);
          last_block = add_acq_rel(arrivals, 1u) == static_cast<unsigned int>(n_chunks - 1);
        }
        compute_sync();
        if (last_block) {
          attention_merge(a, h, n_chunks, static_cast<int>(wl.max_chunks), partials, attn);
          count_in(c, wl.merged0 + l);
        }
      }
      tl_compute(tl_layer_slot(l, 3));
    }

    if (!wait_for(c, wl.merged0 + l, static_cast<unsigned int>(n_kv), step_code(l, kO))) return;
    tl_compute(tl_layer_slot(l, 4));
    product<kPlanes>(matrix_of(L.o), attn, nullptr, kInPlain, p.eps, x, kOutResidual, stages, ring,
                     full, empty, xs, partial, red, gsum, resid, rc);
    tl_compute(tl_layer_slot(l, 5));
    count_in(c, prod0 + kO);

    if (!wait_for(c, prod0 + kO, grid, step_code(l, kGateUp))) return;
    tl_compute(tl_layer_slot(l, 6));
    product<kPlanes>(matrix_of(L.gate_up), x, reinterpret_cast<const __nv_bfloat16*>(L.ffn_norm),
                     kInRmsNorm, p.eps, ffn, kOutSiluPair, stages, ring, full, empty, xs, partial,
                     red, gsum, resid, rc);
    tl_compute(tl_layer_slot(l, 7));
    count_in(c, prod0 + kGateUp);

    if (!wait_for(c, prod0 + kGateUp, grid, step_code(l, kDown))) return;
    tl_compute(tl_layer_slot(l, 8));
    product<kPlanes>(matrix_of(L.down), ffn, nullptr, kInPlain, p.eps, x, kOutResidual, stages,
                     ring, full, empty, xs, partial, red, gsum, resid, rc);
    tl_compute(tl_layer_slot(l, 9));
    count_in(c, prod0 + kDown);
  }

  const long long last_down = ops::kFdCounterProducts + 4LL * (n_layers - 1) + kDown;
  if (!wait_for(c, last_down, grid, step_code(n_layers, 0))) return;
  tl_compute(kTlMaxLayers * kTlLayerEvents);
  pdl_trigger();  // every block is past its last wait: the next kernel may launch
  product<kPlanes>(matrix_of(c.head->head), x,
                   reinterpret_cast<const __nv_bfloat16*>(c.head->final_norm), kInRmsNorm, p.eps,
                   logits, kOutStore, stages, ring, full, empty, xs, partial, red, gsum, resid, rc);
  tl_compute(kTlMaxLayers * kTlLayerEvents + 1);
  tl_print(p.position);

  // The last block out zeroes the counters for the next launch (every other block is past its
  // last wait once it has counted itself in here).
  compute_sync();
  if (threadIdx.x == 0) {
    last_block = atomicAdd(counter(c, ops::kFdCounterExit), 1u) == grid - 1;
  }
  compute_sync();
  if (last_block) {
    for (long long i = threadIdx.x; i < wl.n_counters; i += kComputeThreads) {
      if (i != ops::kFdCounterPoisoned) *counter(c, i) = 0u;
    }
  }
#endif
}

// Per device: SMs (one block each) and the stages that fit, and the kernel's shared-memory limit
// raised once (a launch needs it set on the device it runs on).
struct DeviceShape {
  int blocks = 0;
  int stages = 0;
};

DeviceShape device_shape() {
  static std::mutex mutex;
  static std::map<int, DeviceShape> known;
  int dev = 0;
  cudaGetDevice(&dev);
  std::lock_guard<std::mutex> lock(mutex);
  DeviceShape& d = known[dev];
  if (d.blocks == 0) {
    int sms = 0, optin = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    int s = kMaxStages;
    while (s > 2 && Smem::bytes(s) + kStaticSmem + kTlSmemBytes > static_cast<std::size_t>(optin)) {
      --s;
    }
    for (const void* f : {reinterpret_cast<const void*>(&fused_decode_kernel<1>),
                          reinterpret_cast<const void*>(&fused_decode_kernel<2>)}) {
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(Smem::bytes(s)));
    }
    d.stages = s;
    d.blocks = sms < ops::kFdMaxBlocks ? sms : static_cast<int>(ops::kFdMaxBlocks);
#ifdef MLXN_FD_TIMELINE_POSITION
    // The timeline's lines (fused_decode_timeline.cuh): ~1.4 MB at 132 blocks, over the default.
    if (cudaDeviceSetLimit(cudaLimitPrintfFifoSize, std::size_t{32} << 20) != cudaSuccess) {
      std::fprintf(stderr, "fused decode timeline: cannot raise the printf buffer (lines lost)\n");
      cudaGetLastError();  // reported here; it must not resurface from a later call
    }
#endif
  }
  return d;
}

/// One configure function a plane count: a kernel's function must not depend on its params
/// (kernel_abi.h: graph updates cannot change a node's function).
template <int kPlanes>
LaunchConfig fused_decode_config(const DeviceArgs&) {
  const DeviceShape d = device_shape();
  return {reinterpret_cast<const void*>(&fused_decode_kernel<kPlanes>),
          dim3(static_cast<unsigned int>(d.blocks)), dim3(kThreads), Smem::bytes(d.stages), true};
}

}  // namespace

ConfigureFn fused_decode_configure(int input_planes) {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      major < 9) {
    return nullptr;  // bulk copies and mbarriers: sm_90+
  }
  return input_planes == 1   ? &fused_decode_config<1>
         : input_planes == 2 ? &fused_decode_config<2>
                             : nullptr;
}

}  // namespace mlxn::cuda
