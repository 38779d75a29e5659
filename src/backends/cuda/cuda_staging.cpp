// StagingUploader: chunked, multi-threaded host copy into pinned buffers overlapped with DMA.
#include "backends/cuda/cuda_staging.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace mlxn::cuda {
namespace {

// Copies with several threads: page-cache reads through a fresh mapping fault every page, and
// one thread alone does not keep up with the DMA engine.
void parallel_memcpy(void* dst, const void* src, std::size_t n, int threads) {
  const std::size_t part = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    const std::size_t begin = std::min(n, part * t);
    const std::size_t len = std::min(n - begin, part);
    if (len == 0) break;
    pool.emplace_back([=] {
      std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, len);
    });
  }
  std::memcpy(dst, src, std::min(n, part));
  for (auto& t : pool) t.join();
}

}  // namespace

StagingUploader::~StagingUploader() {
  for (int i = 0; i < kBuffers; ++i) {
    if (done_[i]) cudaEventDestroy(done_[i]);
    if (pinned_[i]) cudaFreeHost(pinned_[i]);
  }
  cudaGetLastError();
}

cudaError_t StagingUploader::ensure_buffers() {
  if (ready_) return cudaSuccess;
  for (int i = 0; i < kBuffers; ++i) {
    if (!pinned_[i]) {
      if (cudaError_t e = cudaHostAlloc(&pinned_[i], kChunk, cudaHostAllocDefault)) return e;
    }
    if (!done_[i]) {
      if (cudaError_t e = cudaEventCreateWithFlags(&done_[i], cudaEventDisableTiming)) return e;
    }
  }
  ready_ = true;
  return cudaSuccess;
}

cudaError_t StagingUploader::upload(void* dst, const void* src, std::size_t n,
                                    cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cudaError_t e = ensure_buffers()) return e;
  std::array<bool, kBuffers> in_use{};
  std::size_t done = 0;
  for (int i = 0; done < n; i = (i + 1) % kBuffers) {
    const std::size_t len = std::min(kChunk, n - done);
    // Reuse buffer i only after its previous DMA has finished reading it.
    if (in_use[i]) {
      if (cudaError_t e = cudaEventSynchronize(done_[i])) return e;
    }
    parallel_memcpy(pinned_[i], static_cast<const char*>(src) + done, len, kCopyThreads);
    if (cudaError_t e = cudaMemcpyAsync(static_cast<char*>(dst) + done, pinned_[i], len,
                                        cudaMemcpyHostToDevice, stream)) {
      return e;
    }
    if (cudaError_t e = cudaEventRecord(done_[i], stream)) return e;
    in_use[i] = true;
    done += len;
  }
  return cudaStreamSynchronize(stream);
}

}  // namespace mlxn::cuda
