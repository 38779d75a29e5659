// Status slots: per-submission KernelStatus words in pinned host-mapped memory, from a free list.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/kernel_abi.h"

namespace mlxn::cuda {

/// One KernelStatus, addressed from both sides.
struct StatusSlot {
  KernelStatus* host = nullptr;    // what the host reads after completion
  KernelStatus* device = nullptr;  // what kernels receive in DeviceArgs::status
  explicit operator bool() const { return host != nullptr; }
};

/// Hands out zeroed status slots. Slabs of pinned mapped memory are allocated on demand (one
/// cudaHostAlloc per 64Ki slots instead of one per command buffer) and freed with this object.
/// Thread-safe.
class StatusSlots {
 public:
  static constexpr std::size_t kSlabSlots = 64 * 1024;

  explicit StatusSlots(int device);
  ~StatusSlots();
  StatusSlots(const StatusSlots&) = delete;
  StatusSlots& operator=(const StatusSlots&) = delete;

  /// A zeroed slot; throws Error(Allocation) when a new slab cannot be allocated.
  StatusSlot acquire();
  /// Returns a slot. The GPU must be done with it; it is zeroed here for the next user.
  void release(StatusSlot slot) noexcept;

 private:
  void add_slab();  // with mutex_ held

  int device_;
  std::mutex mutex_;
  std::vector<KernelStatus*> slabs_;  // host addresses, for cudaFreeHost
  std::vector<StatusSlot> free_;
};

/// Reads a slot the GPU has finished with (volatile: the device wrote it behind our back).
inline KernelStatus read_status(const KernelStatus* s) {
  const volatile KernelStatus* v = s;
  return KernelStatus{v->code, v->tag, v->info};
}

/// "command buffer '<label>': kernel <kernel> reported <what> (index <info>)".
std::string describe_status(const KernelStatus& status, const std::string& label,
                            const std::string& kernel);

}  // namespace mlxn::cuda
