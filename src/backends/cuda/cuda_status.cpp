// Status slots: slab allocation of pinned host-mapped KernelStatus words and their messages.
#include "backends/cuda/cuda_status.h"

#include <cuda_runtime.h>

#include <cstring>

#include "backends/cuda/cuda_check.h"
#include "ops/op_params.h"

namespace mlxn::cuda {

StatusSlots::StatusSlots(int device) : device_(device) {}

StatusSlots::~StatusSlots() {
  for (KernelStatus* slab : slabs_) ignore_cuda(cudaFreeHost(slab));
}

void StatusSlots::add_slab() {
  MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaSetDevice(device_));
  void* host = nullptr;
  const std::size_t bytes = kSlabSlots * sizeof(KernelStatus);
  MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaHostAlloc(&host, bytes, cudaHostAllocMapped));
  std::memset(host, 0, bytes);
  void* device = nullptr;
  const cudaError_t err = cudaHostGetDevicePointer(&device, host, 0);
  if (err != cudaSuccess) {
    ignore_cuda(cudaFreeHost(host));
    throw_cuda_error(ErrorKind::Allocation, err, "cudaHostGetDevicePointer (status slab)");
  }
  slabs_.push_back(static_cast<KernelStatus*>(host));
  free_.reserve(free_.size() + kSlabSlots);
  // Pushed in reverse so that slots are handed out in address order.
  for (std::size_t i = kSlabSlots; i-- > 0;) {
    free_.push_back({static_cast<KernelStatus*>(host) + i, static_cast<KernelStatus*>(device) + i});
  }
}

StatusSlot StatusSlots::acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.empty()) add_slab();
  const StatusSlot slot = free_.back();
  free_.pop_back();
  return slot;
}

void StatusSlots::release(StatusSlot slot) noexcept {
  if (!slot) return;
  volatile KernelStatus* s = slot.host;
  s->code = 0;
  s->tag = 0;
  s->info = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(slot);  // capacity reserved in add_slab: cannot throw
}

std::string describe_status(const KernelStatus& status, const std::string& label,
                            const std::string& kernel) {
  std::string what;
  switch (status.code) {
    case ops::kStatusNonFinite:
      what = "a non-finite value (NaN or Inf)";
      break;
    case ops::kStatusEmbeddingIdOutOfRange:
      what = "a token id outside the vocabulary";
      break;
    case ops::kStatusKvPositionOutOfRange:
      what = "a position outside the KV cache";
      break;
    case ops::kStatusExpertIdOutOfRange:
      what = "an expert id outside the stacked experts";
      break;
    case ops::kStatusFusedDecodeStalled:
      // A block waited seconds for the others: they were not all resident (another process or
      // context holds SMs), or a launch before this one failed; the plan refuses further steps.
      what = "a fused decode step that stalled waiting for other blocks";
      break;
    default:
      what = "status code " + std::to_string(status.code);
      break;
  }
  return "command buffer '" + label + "': kernel " + kernel + " reported " + what + " (index " +
         std::to_string(status.info) + ")";
}

}  // namespace mlxn::cuda
