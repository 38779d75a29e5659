// CudaBackend: one CUDA device — memory, queues, timelines, graphs and the builtin kernels.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "backends/cuda/cuda_staging.h"
#include "backends/cuda/cuda_status.h"
#include "core/backend.h"

namespace mlxn::cuda {

class CudaBackend final : public detail::BackendImpl {
 public:
  /// Opens device `index` (already checked to exist).
  explicit CudaBackend(int index);
  ~CudaBackend() override;

  Backend kind() const override { return Backend::Cuda; }
  std::string name() const override { return name_; }
  MemoryInfo memory_info() const override;
  void allocate(detail::Storage& s) override;
  void deallocate(detail::Storage& s) noexcept override;
  void write(const detail::Storage& s, std::size_t offset, const void* src, std::size_t n) override;
  void read(const detail::Storage& s, std::size_t offset, void* dst, std::size_t n) override;
  std::shared_ptr<detail::QueueImpl> create_queue() override;
  std::shared_ptr<detail::TimelineImpl> create_timeline() override;
  std::shared_ptr<detail::GraphExecImpl> instantiate_graph(
      const std::vector<detail::Command>& commands) override;
  void synchronize() override;

  int device_index() const { return index_; }

 private:
  void set_device() const;
  // Synchronous copy through copy_stream_ (see write()).
  void copy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, const char* what);

  int index_;
  std::string name_;
  cudaStream_t copy_stream_ = nullptr;
  StagingUploader uploader_;  // large host-to-device writes (model loading)
  std::shared_ptr<StatusSlots> slots_;
};

/// Registers the builtin CUDA kernels (add, mul, cast, rms_norm, rms_norm_mul, assert_finite).
void register_cuda_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
