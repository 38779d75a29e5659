// CudaGraphExec: a recorded list of dispatches and barriers instantiated as a CUDA graph.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernel_abi.h"
#include "core/backend.h"

namespace mlxn::cuda {

/// Dispatches between two barriers become independent branches of the graph; each dispatch
/// depends on every dispatch of the previous non-empty barrier group. The exec owns one status
/// slot that all its kernels report to; a submission that launches the exec checks and clears
/// it when it observes completion.
class CudaGraphExec final : public detail::GraphExecImpl {
 public:
  /// `commands` holds only Dispatch and Barrier (InvalidArgument otherwise).
  CudaGraphExec(int device, std::shared_ptr<StatusSlots> slots,
                const std::vector<detail::Command>& commands);
  ~CudaGraphExec() override;
  CudaGraphExec(const CudaGraphExec&) = delete;
  CudaGraphExec& operator=(const CudaGraphExec&) = delete;

  /// New params for the `dispatch_index`-th dispatch; takes effect from the next launch
  /// (launches already enqueued keep the old ones). The launch shape is recomputed.
  void set_params(std::size_t dispatch_index, const void* params, std::size_t bytes) override;

  /// Enqueues one replay on `stream` (a stream of this exec's device); Error(CommandBuffer)
  /// naming `label` on failure.
  void launch(cudaStream_t stream, const std::string& label);

  /// After a replay has completed: the failure one of its kernels reported, if any; the status
  /// is cleared so the next replay starts clean.
  std::optional<std::string> take_status(const std::string& label);

  std::size_t dispatch_count() const { return nodes_.size(); }

 private:
  struct Node {
    cudaGraphNode_t node = nullptr;
    ConfigureFn configure = nullptr;
    const void* func = nullptr;
    std::string key;  // copied: a Kernel may be dropped by a later register_factory
    DeviceArgs args{};
  };

  void build(const std::vector<detail::Command>& commands);
  void destroy() noexcept;

  int device_;
  std::shared_ptr<StatusSlots> slots_;
  StatusSlot slot_;
  cudaGraph_t graph_ = nullptr;  // kept: exec node updates name nodes of the source graph
  cudaGraphExec_t exec_ = nullptr;
  std::vector<Node> nodes_;
  std::mutex mutex_;  // set_params and launch may come from different threads
};

}  // namespace mlxn::cuda
