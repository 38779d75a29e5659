// Timeline: a monotonic device-side counter that command buffers signal and wait on (a fence).
#pragma once

#include <cstdint>
#include <memory>

namespace mlxn {

namespace detail {
class TimelineImpl;
}

class Device;

/// A fence with a 64-bit value that only grows. On CUDA it lives in device-visible memory and is
/// written/waited by the GPU itself; on CPU it is an atomic counter with a condition variable.
class Timeline {
 public:
  Timeline() = default;
  explicit Timeline(Device& device);
  bool valid() const { return impl_ != nullptr; }
  /// The highest value the device has signalled so far.
  std::uint64_t completed_value() const;
  /// Blocks the host until the device has signalled at least `value`.
  void host_wait(std::uint64_t value) const;
  const std::shared_ptr<detail::TimelineImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<detail::TimelineImpl> impl_;
};

}  // namespace mlxn
