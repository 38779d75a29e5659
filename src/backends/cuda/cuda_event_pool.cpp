// EventPool: recycling of cudaEvents across command buffers.
#include "backends/cuda/cuda_event_pool.h"

#include "backends/cuda/cuda_check.h"

namespace mlxn::cuda {

EventPool::~EventPool() {
  for (cudaEvent_t e : free_) ignore_cuda(cudaEventDestroy(e));
}

cudaEvent_t EventPool::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      cudaEvent_t e = free_.back();
      free_.pop_back();
      return e;
    }
  }
  cudaEvent_t e = nullptr;
  MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaEventCreateWithFlags(&e, flags_));
  return e;
}

void EventPool::release(cudaEvent_t event) noexcept {
  if (event == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    free_.push_back(event);
  } catch (...) {
    ignore_cuda(cudaEventDestroy(event));
  }
}

}  // namespace mlxn::cuda
