// EncoderSession: a multi-stage command encoder whose stages are chained by a device-side timeline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/core/timeline.h"

namespace mlxn {

/// Splits a forward pass into stages that are submitted without blocking: fence_stage() commits
/// the stage and signals the timeline at value+1; reset_for_next_stage() opens the next command
/// buffer whose first command waits for that value. The host syncs once, at the end.
/// Calls made in the wrong state are silent no-ops (mlx-native's contract). Destroying a session
/// with uncommitted or fenced work is safe: uncommitted work is dropped, fenced work completes.
class EncoderSession {
 public:
  EncoderSession(Device device, Queue queue);
  ~EncoderSession();
  EncoderSession(EncoderSession&&) noexcept;
  EncoderSession& operator=(EncoderSession&&) noexcept;

  /// The encoder of the current stage, for dispatches.
  CommandEncoder& encoder();

  /// Names the current stage (used as the command buffer label).
  void begin_stage(std::string_view label);
  /// Ends the stage: signals the timeline at fence_value()+1 after its work and commits without
  /// blocking. No-op when already drained.
  void fence_stage(std::optional<std::string_view> label = std::nullopt);
  /// Opens the next stage's command buffer (only when drained). If a fence is pending, the first
  /// command waits on the timeline at fence_value().
  void reset_for_next_stage();
  /// Same, but the next stage is submitted to `queue` (another stream / worker).
  void reset_for_next_stage(Queue queue);
  /// Commits the current stage without a fence and without blocking. No-op when drained.
  void commit_stage();
  /// Commits the current stage (if not drained) and waits for all of the session's work;
  /// rethrows the device error of any stage.
  void commit_and_wait();
  /// Waits for everything committed so far without committing (the seed's
  /// `command_buffer().wait_until_completed()`).
  void wait_until_completed();

  /// Last value signalled (number of fences so far).
  std::uint64_t fence_value() const { return fence_value_; }
  /// Value of the most recent wait encoded by reset_for_next_stage (0 if none).
  std::uint64_t wait_value() const { return wait_value_; }
  /// Number of waits encoded by reset_for_next_stage.
  std::uint64_t wait_count() const { return wait_count_; }
  /// The timeline exists (created at the first fence).
  bool has_event() const { return timeline_.valid(); }
  bool is_fence_pending() const { return fence_pending_; }
  bool is_drained() const { return drained_; }
  const std::string& label() const { return label_; }
  /// The session's timeline (invalid before the first fence).
  const Timeline& timeline() const { return timeline_; }

 private:
  Device device_;
  CommandEncoder encoder_;
  Timeline timeline_;
  std::uint64_t fence_value_ = 0;
  std::uint64_t wait_value_ = 0;
  std::uint64_t wait_count_ = 0;
  bool fence_pending_ = false;
  bool drained_ = false;
  std::string label_;
};

}  // namespace mlxn
