// CUDA timelines: device-side 64-bit fences that streams signal and wait on (stage chaining).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/backend.h"

namespace mlxn::cuda {

/// A timeline the CUDA queues can encode into streams. Signal and wait may use different
/// streams (of one device): that is how pipeline stages on different queues are chained.
class CudaTimeline : public detail::TimelineImpl {
 public:
  /// Makes `stream` (the stream of queue `queue_id`) wait, on the device, until the timeline
  /// reaches at least `value`. Elided when that same queue already signalled a value >= `value`:
  /// stream order then implies the wait (the common single-queue EncoderSession case, which
  /// saves a device-side poll per stage).
  void encode_wait(cudaStream_t stream, std::uint64_t queue_id, std::uint64_t value);
  /// Sets the timeline to `value` once the work enqueued on `stream` so far has finished.
  /// Values signalled on one timeline must grow.
  void encode_signal(cudaStream_t stream, std::uint64_t queue_id, std::uint64_t value);

 protected:
  virtual void device_wait(cudaStream_t stream, std::uint64_t value) = 0;
  virtual void device_signal(cudaStream_t stream, std::uint64_t value) = 0;

 private:
  std::mutex signalled_mutex_;
  // (queue id, highest value signalled by that queue); a handful of queues at most.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> signalled_;
};

/// A timeline on device `device`: a 64-bit word in pinned host-mapped memory written and waited
/// by stream memory operations when the device supports them, otherwise (or when the
/// environment sets MLXN_CUDA_TIMELINE=events) a map from values to recorded cudaEvents.
std::shared_ptr<CudaTimeline> make_cuda_timeline(int device);

}  // namespace mlxn::cuda
