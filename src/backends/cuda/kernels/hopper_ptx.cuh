// The Hopper (sm_90) instructions the streaming kernels use, one wrapper each: mbarriers, bulk
// copies into shared memory, acquire/release accesses for completion counters, the global timer,
// and the bf16 and int8 tensor-core mmas. Shared by the fused decode step, the MLX mma mat-vec and
// the decode-stream probe (tools/decode_stream_probe), so each instruction is written once.
#pragma once

#include <cuda_bf16.h>

namespace mlxn::cuda {

__device__ __forceinline__ unsigned int smem_addr(const void* p) {
  return static_cast<unsigned int>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(unsigned long long* b, unsigned int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(b)), "r"(count));
}
/// Makes the initialized barriers visible to the asynchronous proxy (the bulk copies).
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned long long* b) {
  asm volatile("{ .reg .b64 st; mbarrier.arrive.shared::cta.b64 st, [%0]; }" ::"r"(smem_addr(b))
               : "memory");
}
/// Arrives once and tells the barrier `bytes` more will land on it before the phase completes.
__device__ __forceinline__ void mbar_expect(unsigned long long* b, unsigned int bytes) {
  asm volatile("{ .reg .b64 st; mbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1; }" ::"r"(
                   smem_addr(b)),
               "r"(bytes)
               : "memory");
}
/// One probe of the barrier's phase `parity`: true once that phase has completed.
__device__ __forceinline__ bool mbar_test(unsigned long long* b, unsigned int parity) {
  unsigned int done = 0;
  asm volatile(
      "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, "
      "p; }"
      : "=r"(done)
      : "r"(smem_addr(b)), "r"(parity)
      : "memory");
  return done != 0;
}
__device__ __forceinline__ void mbar_wait(unsigned long long* b, unsigned int parity) {
  while (!mbar_test(b, parity)) {
  }
}

/// One bulk copy (the copy engine) from global to shared memory, completing on `bar`. dst, src
/// and bytes are multiples of 16.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned int bytes,
                                          unsigned long long* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::
          "r"(smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
}

/// Counter accesses at gpu scope: the acquire load orders the reads after it behind the writes
/// the counted blocks made before their release add.
__device__ __forceinline__ unsigned int load_acquire(const unsigned int* p) {
  unsigned int v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ unsigned int add_release(unsigned int* p, unsigned int v) {
  unsigned int old;
  asm volatile("atom.add.release.gpu.global.u32 %0, [%1], %2;"
               : "=r"(old)
               : "l"(p), "r"(v)
               : "memory");
  return old;
}
__device__ __forceinline__ unsigned int add_acq_rel(unsigned int* p, unsigned int v) {
  unsigned int old;
  asm volatile("atom.add.acq_rel.gpu.global.u32 %0, [%1], %2;"
               : "=r"(old)
               : "l"(p), "r"(v)
               : "memory");
  return old;
}

/// Nanoseconds of the GPU's global timer (for waits with a time limit).
__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

/// d += a (16 x 16, rows g / g + 8, k slots 2 t4 + {0, 1} / + 8) times b (16 x 8), bf16 in, f32
/// accumulate.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], unsigned int a0, unsigned int a1,
                                               unsigned int a2, unsigned int a3, unsigned int b0,
                                               unsigned int b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/// d += a (16 x 32 int8: a0 / a2 row g, a1 / a3 row g + 8; a0 / a1 k slots 4 t4 + {0..3}, a2 / a3
/// 16 + 4 t4 + {0..3}) times b (32 x 8 int8: b0 k slots 4 t4 + {0..3}, b1 16 + 4 t4 + {0..3},
/// column g), exact int32 accumulate; d0 / d1 row g, d2 / d3 row g + 8, columns 2 t4 + {0, 1}.
__device__ __forceinline__ void mma_s8_16832(int (&d)[4], unsigned int a0, unsigned int a1,
                                             unsigned int a2, unsigned int a3, unsigned int b0,
                                             unsigned int b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

}  // namespace mlxn::cuda
