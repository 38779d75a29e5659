// EventPool: recycled cudaEvents, so that a command buffer does not create and destroy events.
#pragma once

#include <cuda_runtime.h>

#include <mutex>
#include <vector>

namespace mlxn::cuda {

/// Events of one device, created with one set of flags. Thread-safe.
class EventPool {
 public:
  explicit EventPool(unsigned int flags) : flags_(flags) {}
  ~EventPool();
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;

  /// A recycled event, or a new one on the current device (all users of a pool make the same
  /// device current first);
  /// throws Error(Allocation) when it cannot be created.
  cudaEvent_t acquire();
  /// Takes an event back; it may still be recorded (recording again later is fine).
  void release(cudaEvent_t event) noexcept;

 private:
  unsigned int flags_;
  std::mutex mutex_;
  std::vector<cudaEvent_t> free_;
};

}  // namespace mlxn::cuda
