// The CPU timeline: an atomic counter with a condition variable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "core/backend.h"

namespace mlxn::cpu {

class CpuTimeline final : public detail::TimelineImpl {
 public:
  std::uint64_t completed_value() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return value_;
  }
  void host_wait(std::uint64_t value) override {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return value_ >= value; });
  }
  /// Raises the value (never lowers it) and wakes waiters.
  void signal(std::uint64_t value) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (value > value_) value_ = value;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t value_ = 0;
};

}  // namespace mlxn::cpu
