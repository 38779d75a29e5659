// Measures what a persistent decode kernel would pay instead of kernel launches (issue 7,
// docs/perf.md): the time of one grid-wide barrier (every block counts itself in on a device
// counter and spins until all have) against the time of one dependent launch of an empty kernel,
// back to back in a stream, with and without programmatic dependent launch, and replayed from a
// CUDA graph. Standalone, so that it needs no project build:
//   nvcc -O3 -arch=sm_90 -o /tmp/grid_barrier_probe tools/grid_barrier_probe.cu
//   /tmp/grid_barrier_probe
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "cuda_check.h"

__device__ __forceinline__ unsigned int load_acquire(const unsigned int* p) {
  unsigned int v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// `rounds` grid barriers on a counter that only grows (round r waits for (r + 1) * blocks
// arrivals), so no reset and no second counter are needed.
__global__ void barrier_rounds(unsigned int* counter, int rounds) {
  const unsigned int blocks = gridDim.x;
  for (int r = 0; r < rounds; ++r) {
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(counter, 1u);
      const unsigned int target = (r + 1) * blocks;
      while (load_acquire(counter) < target) {
      }
    }
    __syncthreads();
  }
}

__global__ void empty_kernel() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

void launch_empty(cudaStream_t s, int blocks, bool pdl) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(128);
  cfg.stream = s;
  cfg.attrs = pdl ? &attr : nullptr;
  cfg.numAttrs = pdl ? 1 : 0;
  CHECK(cudaLaunchKernelEx(&cfg, empty_kernel));
}

float elapsed_ms(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0.0f;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

int main() {
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, sms);
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  unsigned int* counter;
  CHECK(cudaMalloc(&counter, sizeof(unsigned int)));

  constexpr int kRounds = 20000;
  for (int per_sm : {1, 2, 4, 8}) {
    const int blocks = sms * per_sm;
    int rounds = kRounds;
    void* args[] = {&counter, &rounds};
    float best = 1e30f;
    for (int rep = 0; rep < 3; ++rep) {
      CHECK(cudaMemsetAsync(counter, 0, sizeof(unsigned int), s));
      CHECK(cudaEventRecord(e0, s));
      // Cooperative: the launch fails rather than run blocks that are not all resident.
      CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&barrier_rounds),
                                        dim3(blocks), dim3(128), args, 0, s));
      CHECK(cudaEventRecord(e1, s));
      CHECK(cudaStreamSynchronize(s));
      const float ms = elapsed_ms(e0, e1);
      if (ms < best) best = ms;
    }
    std::printf("grid barrier, %4d blocks of 128: %.3f us a barrier\n", blocks,
                1000.0f * best / kRounds);
  }

  constexpr int kLaunches = 5000;
  for (int blocks : {1, sms, 4 * sms}) {
    for (bool pdl : {false, true}) {
      float stream_best = 1e30f, graph_best = 1e30f;
      for (int rep = 0; rep < 3; ++rep) {
        CHECK(cudaEventRecord(e0, s));
        for (int i = 0; i < kLaunches; ++i) launch_empty(s, blocks, pdl);
        CHECK(cudaEventRecord(e1, s));
        CHECK(cudaStreamSynchronize(s));
        const float ms = elapsed_ms(e0, e1);
        if (ms < stream_best) stream_best = ms;
      }
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
      for (int i = 0; i < kLaunches; ++i) launch_empty(s, blocks, pdl);
      CHECK(cudaStreamEndCapture(s, &graph));
      CHECK(cudaGraphInstantiate(&exec, graph, 0));
      CHECK(cudaGraphLaunch(exec, s));  // warm-up (upload)
      CHECK(cudaStreamSynchronize(s));
      for (int rep = 0; rep < 3; ++rep) {
        CHECK(cudaEventRecord(e0, s));
        CHECK(cudaGraphLaunch(exec, s));
        CHECK(cudaEventRecord(e1, s));
        CHECK(cudaStreamSynchronize(s));
        const float ms = elapsed_ms(e0, e1);
        if (ms < graph_best) graph_best = ms;
      }
      CHECK(cudaGraphExecDestroy(exec));
      CHECK(cudaGraphDestroy(graph));
      std::printf("empty kernel, %4d blocks, pdl %d: stream %.3f us, graph %.3f us a launch\n",
                  blocks, pdl ? 1 : 0, 1000.0f * stream_best / kLaunches,
                  1000.0f * graph_best / kLaunches);
    }
  }
  CHECK(cudaFree(counter));
  return 0;
}
