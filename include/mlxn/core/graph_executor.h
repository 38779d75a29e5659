// GraphExecutor / GraphSession: one command buffer and one submission per forward pass.
#pragma once

#include <span>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"

namespace mlxn {

/// A forward pass being encoded: every dispatch goes into one command buffer with automatic
/// barriers from buffer ranges; finish() is the single commit-and-wait.
/// Op wrappers live in mlxn::ops (they take the session's encoder()).
class GraphSession {
 public:
  explicit GraphSession(CommandEncoder encoder);
  CommandEncoder& encoder() { return encoder_; }
  void barrier() { encoder_.barrier(); }
  bool barrier_between(std::span<const Buffer> reads, std::span<const Buffer> writes) {
    return encoder_.barrier_between(reads, writes);
  }
  /// Commits the pass and waits; rethrows the device error. The session can then encode again.
  void finish();
  /// Commits without waiting (the caller syncs later through encoder().wait()).
  void commit() { encoder_.commit(); }

 private:
  CommandEncoder encoder_;
};

/// Hands out GraphSessions on one device and queue.
class GraphExecutor {
 public:
  explicit GraphExecutor(Device device);
  GraphExecutor(Device device, Queue queue);
  /// A session whose encoder tracks ranges and inserts barriers automatically.
  GraphSession begin();
  Device& device() { return device_; }

 private:
  Device device_;
  Queue queue_;
};

}  // namespace mlxn
