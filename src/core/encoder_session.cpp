// EncoderSession: mlx-native's fence/reset state machine over a CommandEncoder and a Timeline.
#include "mlxn/core/encoder_session.h"

namespace mlxn {

EncoderSession::EncoderSession(Device device, Queue queue)
    : device_(device), encoder_(std::move(device), std::move(queue)) {
  // Like a Metal encoder, a session starts with its first command buffer open.
  encoder_.open_command_buffer();
}

EncoderSession::~EncoderSession() = default;
EncoderSession::EncoderSession(EncoderSession&&) noexcept = default;
EncoderSession& EncoderSession::operator=(EncoderSession&&) noexcept = default;

CommandEncoder& EncoderSession::encoder() { return encoder_; }

void EncoderSession::begin_stage(std::string_view label) {
  label_ = std::string(label);
  encoder_.set_label(label_);
}

void EncoderSession::fence_stage(std::optional<std::string_view> label) {
  if (drained_) return;
  if (label) begin_stage(*label);
  if (!timeline_.valid()) timeline_ = Timeline(device_);
  encoder_.signal(timeline_, fence_value_ + 1);
  encoder_.commit();
  fence_value_ += 1;
  drained_ = true;
  fence_pending_ = true;
}

void EncoderSession::reset_for_next_stage() {
  if (!drained_) return;
  encoder_.open_command_buffer();
  if (fence_pending_) {
    encoder_.wait_for(timeline_, fence_value_);
    wait_count_ += 1;
    wait_value_ = fence_value_;
  }
  drained_ = false;
  fence_pending_ = false;
  label_.clear();
  encoder_.set_label({});
}

void EncoderSession::reset_for_next_stage(Queue queue) {
  if (!drained_) return;
  encoder_.set_queue(std::move(queue));
  reset_for_next_stage();
}

void EncoderSession::commit_stage() {
  if (drained_) return;
  encoder_.commit();
  drained_ = true;
}

void EncoderSession::commit_and_wait() {
  if (!drained_) {
    encoder_.commit();
    drained_ = true;
  }
  encoder_.wait();
}

void EncoderSession::wait_until_completed() { encoder_.wait(); }

}  // namespace mlxn
