// Host-to-device uploads through pinned staging buffers: fast copies from pageable memory (mmapped
// weights) for model loading.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <mutex>

namespace mlxn::cuda {

/// Copies pageable host memory to the device at near PCIe speed: host threads copy chunks into
/// pinned buffers while the DMA engine drains the previous ones. A plain cudaMemcpy from pageable
/// memory goes through the driver's small staging area one piece at a time and reaches a fraction
/// of that.
class StagingUploader {
 public:
  StagingUploader() = default;
  ~StagingUploader();
  StagingUploader(const StagingUploader&) = delete;
  StagingUploader& operator=(const StagingUploader&) = delete;

  /// Copies n bytes from host `src` to device `dst` on `stream` and waits for completion.
  /// Returns the CUDA error of the first failing call (cudaSuccess when all went well).
  cudaError_t upload(void* dst, const void* src, std::size_t n, cudaStream_t stream);

  /// Below this size the staging pipeline costs more than it saves.
  static constexpr std::size_t kMinBytes = 4u << 20;

 private:
  static constexpr int kBuffers = 4;
  static constexpr std::size_t kChunk = 32u << 20;
  static constexpr int kCopyThreads = 4;

  cudaError_t ensure_buffers();

  std::mutex mutex_;
  std::array<void*, kBuffers> pinned_{};
  std::array<cudaEvent_t, kBuffers> done_{};
  bool ready_ = false;
};

}  // namespace mlxn::cuda
