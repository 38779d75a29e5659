// A diagnostic of the fused decode step (docs/perf.md, step 30): where each block is in time.
// Built with -DMLXN_FD_TIMELINE_POSITION=P (e.g. CMAKE_CUDA_FLAGS), the launch whose token
// position is P prints, once it is done, a line for every 8 time stamps of every block
// ("FDT c|s <block> <first slot> <8 stamps in ns of %globaltimer>"): thread 0's at each wait it
// passes and each product it finishes (compute slots, kTlLayerEvents a layer, then the head's), and
// the streaming lane's when it has issued the last unit of each product (stream slots, 4 a layer,
// then the head). The stamps live in static shared memory (4.5 KB, inside the block's headroom).
// Layers past kTlMaxLayers are not stamped. The head's stream stamp is read without ordering
// against the streaming lane's store (stored microseconds before; 0 reads as "not reached").
// Without the macro every function here is empty and the kernel's machine code is unchanged.
#pragma once

#include <cstddef>
#include <cstdio>

#include "backends/cuda/kernels/hopper_ptx.cuh"

namespace mlxn::cuda::fd {

/// What thread 0 stamps in a layer: [0] the layer's first wait passed, [1] q/k/v done, [2] the
/// attention's wait passed (blocks with an item), [3] its items (and a merge) done, [4] o's wait
/// passed, [5] o done, [6] gate/up's wait passed, [7] done, [8] down's wait passed, [9] done.
constexpr int kTlLayerEvents = 10;
constexpr int kTlMaxLayers = 40;
constexpr int kTlCompute = kTlMaxLayers * kTlLayerEvents + 2;  // + the head's wait and end
constexpr int kTlStream = kTlMaxLayers * 4 + 1;                // + the head
/// Slot of layer l's event e (kTlCompute, which is not stamped, past kTlMaxLayers layers).
__device__ __forceinline__ int tl_layer_slot(int l, int e) {
  return l < kTlMaxLayers ? l * kTlLayerEvents + e : kTlCompute;
}
/// Stream slot of layer l's product k (kTlStream past kTlMaxLayers layers).
__device__ __forceinline__ int tl_stream_slot(int l, int k) {
  return l < kTlMaxLayers ? 4 * l + k : kTlStream;
}

#ifdef MLXN_FD_TIMELINE_POSITION
struct TimelineSmem {
  unsigned long long compute[kTlCompute];
  unsigned long long stream[kTlStream];
};
/// Static shared memory the timeline adds to the kernel's.
constexpr std::size_t kTlSmemBytes = sizeof(TimelineSmem);
__device__ __forceinline__ TimelineSmem& timeline() {
  __shared__ TimelineSmem t;
  return t;
}
/// Thread 0's stamp in slot `slot` (other threads do nothing).
__device__ __forceinline__ void tl_compute(int slot) {
  if (threadIdx.x == 0 && slot < kTlCompute) timeline().compute[slot] = global_ns();
}
/// The streaming lane's stamp.
__device__ __forceinline__ void tl_stream(int slot) {
  if (slot < kTlStream) timeline().stream[slot] = global_ns();
}
/// Zeroes the block's stamps (thread 0, before the block's barrier at the start).
__device__ __forceinline__ void tl_reset() {
  if (threadIdx.x != 0) return;
  for (int i = 0; i < kTlCompute; ++i) timeline().compute[i] = 0;
  for (int i = 0; i < kTlStream; ++i) timeline().stream[i] = 0;
}
/// Thread 0 prints the block's stamps when the launch is at the chosen position.
__device__ __forceinline__ void tl_print(long long position) {
  if (threadIdx.x != 0 || position != MLXN_FD_TIMELINE_POSITION) return;
  const TimelineSmem& t = timeline();
  for (int i = 0; i < kTlCompute; i += 8) {
    unsigned long long v[8];  // the last line's slots past the array are zeros
    for (int e = 0; e < 8; ++e) v[e] = i + e < kTlCompute ? t.compute[i + e] : 0ull;
    printf("FDT c %d %d %llu %llu %llu %llu %llu %llu %llu %llu\n", static_cast<int>(blockIdx.x), i,
           v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
  }
  for (int i = 0; i < kTlStream; i += 8) {
    const volatile unsigned long long* v = t.stream + i;  // written by the streaming lane
    unsigned long long s[8];
    for (int e = 0; e < 8; ++e) s[e] = i + e < kTlStream ? v[e] : 0ull;
    printf("FDT s %d %d %llu %llu %llu %llu %llu %llu %llu %llu\n", static_cast<int>(blockIdx.x), i,
           s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
  }
}
#else
constexpr std::size_t kTlSmemBytes = 0;
__device__ __forceinline__ void tl_compute(int) {}
__device__ __forceinline__ void tl_stream(int) {}
__device__ __forceinline__ void tl_reset() {}
__device__ __forceinline__ void tl_print(long long) {}
#endif

}  // namespace mlxn::cuda::fd
