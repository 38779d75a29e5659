// The Hopper instructions the decode-stream probe uses: the shared wrappers of
// src/backends/cuda/kernels/hopper_ptx.cuh (mbarriers, bulk copies, the acquire load, the mma),
// plus what only the probe measures: per-thread asynchronous copies and 64-bit relaxed accesses
// for LL words.
#pragma once

#include <cuda_bf16.h>

#include "backends/cuda/kernels/hopper_ptx.cuh"

namespace probe {

using mlxn::cuda::bulk_copy;
using mlxn::cuda::load_acquire;
using mlxn::cuda::mbar_arrive;
using mlxn::cuda::mbar_expect;
using mlxn::cuda::mbar_init;
using mlxn::cuda::mbar_wait;
using mlxn::cuda::mma_bf16_16816;
using mlxn::cuda::smem_addr;

__device__ __forceinline__ void copy16_async(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(dst)), "l"(src)
               : "memory");
}
/// Arrives on the barrier once every cp.async this thread issued so far has landed.
__device__ __forceinline__ void async_arrive(unsigned long long* b) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_addr(b))
               : "memory");
}

// 64-bit relaxed accesses at gpu scope: each is single-copy atomic, so a word that carries its
// own completion tag needs no fence (the LL protocol of NCCL). A .v2 load is two such accesses.
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

}  // namespace probe
