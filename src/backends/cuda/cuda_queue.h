// CudaQueue and CudaSubmission: command buffers executed in order on one CUDA stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/cuda/cuda_event_pool.h"
#include "backends/cuda/cuda_status.h"
#include "core/backend.h"

namespace mlxn::cuda {

/// What a queue's submissions need after the queue itself may be gone.
struct QueueResources {
  QueueResources(int device, std::shared_ptr<StatusSlots> slots)
      : device(device),
        slots(std::move(slots)),
        done_events(cudaEventDisableTiming),
        timing_events(cudaEventDefault) {}
  int device;
  std::shared_ptr<StatusSlots> slots;
  EventPool done_events;    // one per submission: completion only, no timestamps
  EventPool timing_events;  // two per timed submission
};

/// A submitted command buffer. Keeps the buffer's storages, timelines and graphs alive until it
/// observes completion (wait, is_done, or its destructor, which blocks if the GPU is not done).
class CudaSubmission final : public detail::SubmissionImpl {
 public:
  CudaSubmission(std::shared_ptr<QueueResources> resources, detail::CommandBuffer&& cb);
  ~CudaSubmission() override;
  CudaSubmission(const CudaSubmission&) = delete;
  CudaSubmission& operator=(const CudaSubmission&) = delete;

  void wait() override;
  bool is_done() override;
  std::optional<double> gpu_time_ms() override;

 private:
  friend class CudaQueue;

  // Records the outcome (CUDA error, timing, kernel status) and releases the resources.
  void observe_locked(cudaError_t result);
  void release_locked() noexcept;
  std::string kernel_for_tag(unsigned int tag) const;
  std::string kernel_keys() const;  // distinct keys of the buffer, for messages

  std::shared_ptr<QueueResources> res_;
  detail::CommandBuffer cb_;
  StatusSlot slot_;
  cudaEvent_t done_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t end_ = nullptr;
  bool recorded_ = false;    // done_ is on the stream
  bool has_graphs_ = false;  // some command launched a graph (its status must be checked)
  bool completed_ = false;
  std::optional<std::string> error_;  // reported by the first wait
  std::optional<double> time_ms_;
  std::mutex mutex_;
};

/// A non-blocking stream (it never synchronizes with the legacy default stream).
class CudaQueue final : public detail::QueueImpl {
 public:
  CudaQueue(int device, std::shared_ptr<StatusSlots> slots);
  ~CudaQueue() override;
  CudaQueue(const CudaQueue&) = delete;
  CudaQueue& operator=(const CudaQueue&) = delete;

  std::shared_ptr<detail::SubmissionImpl> submit(detail::CommandBuffer&& cb) override;
  void synchronize() override;
  cudaStream_t stream() const { return stream_; }

 private:
  void enqueue(CudaSubmission& sub);

  int device_;
  std::uint64_t id_;  // identifies the queue to timelines (see CudaTimeline::encode_wait)
  cudaStream_t stream_ = nullptr;
  std::shared_ptr<QueueResources> res_;
  std::mutex submit_mutex_;
};

}  // namespace mlxn::cuda
