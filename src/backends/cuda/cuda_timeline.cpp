// CUDA timelines: the stream-memory-operation fence and its event-based fallback.
#include "backends/cuda/cuda_timeline.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_driver.h"
#include "backends/cuda/cuda_event_pool.h"

namespace mlxn::cuda {
namespace {

using Clock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Polls `done` until it returns true: spinning first (a stage usually finishes within
/// microseconds of being waited on), then yielding, then sleeping so a long wait does not burn a
/// core. `check` runs about every millisecond to turn a dead device into an exception instead
/// of an endless wait.
template <class Done, class Check>
void poll_until(Done done, Check check) {
  const auto start = Clock::now();
  auto next_check = start + std::chrono::milliseconds(1);
  while (!done()) {
    const auto now = Clock::now();
    const auto waited = now - start;
    if (waited < std::chrono::microseconds(50)) {
      for (int i = 0; i < 64; ++i) cpu_relax();
    } else if (waited < std::chrono::milliseconds(2)) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (now >= next_check) {
      check();
      next_check = now + std::chrono::milliseconds(1);
    }
  }
}

[[noreturn]] void throw_driver_error(const char* call, CUresult r, std::uint64_t value) {
  throw Error(ErrorKind::CommandBuffer, std::string(call) + " (timeline value " +
                                            std::to_string(value) + ") failed: CUresult " +
                                            std::to_string(static_cast<int>(r)));
}

/// The timeline word lives in pinned host-mapped memory: the GPU writes it with
/// cuStreamWriteValue64 after the signalling stream's prior work, other streams block on it
/// with cuStreamWaitValue64(GEQ), and the host reads it directly (no copy, no API call).
class MemOpTimeline final : public CudaTimeline {
 public:
  explicit MemOpTimeline(int device) : device_(device), api_(driver_api()) {
    MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaSetDevice(device_));
    void* host = nullptr;
    // A cache line of its own: the GPU polls it, the host spins on it.
    MLXN_CUDA_CHECK(ErrorKind::Allocation, cudaHostAlloc(&host, 64, cudaHostAllocMapped));
    std::memset(host, 0, 64);
    word_ = static_cast<std::uint64_t*>(host);
    void* dev = nullptr;
    cudaError_t err = cudaHostGetDevicePointer(&dev, host, 0);
    if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&probe_, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
      ignore_cuda(cudaFreeHost(host));
      throw_cuda_error(ErrorKind::Allocation, err, "creating a CUDA timeline");
    }
    dev_word_ = reinterpret_cast<CUdeviceptr>(dev);
  }

  ~MemOpTimeline() override {
    // Every submission that signals or waits on this timeline holds a reference until the GPU
    // is done with it, so the word is no longer in use here.
    ignore_cuda(cudaStreamDestroy(probe_));
    ignore_cuda(cudaFreeHost(word_));
  }

  std::uint64_t completed_value() override {
    return std::atomic_ref<std::uint64_t>(*word_).load(std::memory_order_acquire);
  }

  void host_wait(std::uint64_t value) override {
    poll_until([&] { return completed_value() >= value; },
               [&] {
                 // An idle stream reports the context's sticky error, if the device died.
                 const cudaError_t err = cudaStreamQuery(probe_);
                 if (err != cudaSuccess && err != cudaErrorNotReady) {
                   throw_cuda_error(ErrorKind::CommandBuffer, err,
                                    "waiting for timeline value " + std::to_string(value));
                 }
               });
  }

  void device_wait(cudaStream_t stream, std::uint64_t value) override {
    const CUresult r = api_.stream_wait_value64(stream, dev_word_, value, CU_STREAM_WAIT_VALUE_GEQ);
    if (r != CUDA_SUCCESS) throw_driver_error("cuStreamWaitValue64", r, value);
  }

  void device_signal(cudaStream_t stream, std::uint64_t value) override {
    // The default flags order the write after all prior work of the stream and make that work's
    // memory writes visible before it.
    const CUresult r =
        api_.stream_write_value64(stream, dev_word_, value, CU_STREAM_WRITE_VALUE_DEFAULT);
    if (r != CUDA_SUCCESS) throw_driver_error("cuStreamWriteValue64", r, value);
  }

 private:
  int device_;
  const DriverApi& api_;
  std::uint64_t* word_ = nullptr;
  CUdeviceptr dev_word_ = 0;
  cudaStream_t probe_ = nullptr;
};

/// Fallback without stream memory operations: each signal records a pooled event; a wait for v
/// waits on the event of the smallest signalled value >= v. A wait can therefore only follow its
/// signal on the host (EncoderSession always encodes the fence before the wait).
class EventTimeline final : public CudaTimeline {
 public:
  EventTimeline() : pool_(cudaEventDisableTiming) {}

  ~EventTimeline() override {
    // Destroying a recorded event is allowed; CUDA frees it once it completes.
    for (const Point& p : pending_) ignore_cuda(cudaEventDestroy(p.event));
  }

  std::uint64_t completed_value() override {
    std::lock_guard<std::mutex> lock(mutex_);
    retire_locked();
    return completed_;
  }

  void host_wait(std::uint64_t value) override {
    for (;;) {
      cudaEvent_t event = nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        retire_locked();
        if (completed_ >= value) return;
        if (const Point* p = find_locked(value)) event = p->event;
      }
      if (event != nullptr) {
        // If the event is retired and re-recorded meanwhile, this waits for the newer record:
        // longer, never wrong.
        const cudaError_t err = cudaEventSynchronize(event);
        if (err != cudaSuccess) {
          throw_cuda_error(ErrorKind::CommandBuffer, err,
                           "waiting for timeline value " + std::to_string(value));
        }
        std::lock_guard<std::mutex> lock(mutex_);
        retire_locked();
        if (completed_ < value) completed_ = value;  // the event for >= value has completed
        return;
      }
      // Not signalled yet on the host side: another thread may still encode the signal.
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void device_wait(cudaStream_t stream, std::uint64_t value) override {
    std::lock_guard<std::mutex> lock(mutex_);
    retire_locked();
    if (completed_ >= value) return;
    const Point* p = find_locked(value);
    if (p == nullptr) {
      throw Error(ErrorKind::InvalidArgument, "CUDA timeline (event-based): wait for value " +
                                                  std::to_string(value) +
                                                  " before any signal reaching it was encoded");
    }
    MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaStreamWaitEvent(stream, p->event, 0));
  }

  void device_signal(cudaStream_t stream, std::uint64_t value) override {
    std::lock_guard<std::mutex> lock(mutex_);
    cudaEvent_t event = pool_.acquire();
    const cudaError_t err = cudaEventRecord(event, stream);
    if (err != cudaSuccess) {
      pool_.release(event);
      throw_cuda_error(ErrorKind::CommandBuffer, err, "cudaEventRecord (timeline signal)");
    }
    // Keep the points sorted by value; in practice values arrive in order (push_back).
    auto it = pending_.end();
    while (it != pending_.begin() && std::prev(it)->value > value) --it;
    pending_.insert(it, Point{value, event});
  }

 private:
  struct Point {
    std::uint64_t value;
    cudaEvent_t event;
  };

  // Drops completed points from the front and raises completed_.
  void retire_locked() {
    while (!pending_.empty()) {
      const cudaError_t err = cudaEventQuery(pending_.front().event);
      if (err == cudaErrorNotReady) return;
      if (err != cudaSuccess) {
        cudaGetLastError();
        return;  // a device error: host_wait reports it through cudaEventSynchronize
      }
      if (pending_.front().value > completed_) completed_ = pending_.front().value;
      pool_.release(pending_.front().event);
      pending_.pop_front();
    }
  }

  const Point* find_locked(std::uint64_t value) const {
    for (const Point& p : pending_) {
      if (p.value >= value) return &p;
    }
    return nullptr;
  }

  std::mutex mutex_;
  std::deque<Point> pending_;  // signalled, not yet seen complete; sorted by value
  std::uint64_t completed_ = 0;
  EventPool pool_;
};

bool events_forced() {
  const char* v = std::getenv("MLXN_CUDA_TIMELINE");
  return v != nullptr && std::strcmp(v, "events") == 0;
}

}  // namespace

void CudaTimeline::encode_wait(cudaStream_t stream, std::uint64_t queue_id, std::uint64_t value) {
  {
    std::lock_guard<std::mutex> lock(signalled_mutex_);
    for (const auto& [queue, signalled] : signalled_) {
      if (queue == queue_id && signalled >= value) return;
    }
  }
  device_wait(stream, value);
}

void CudaTimeline::encode_signal(cudaStream_t stream, std::uint64_t queue_id, std::uint64_t value) {
  device_signal(stream, value);
  std::lock_guard<std::mutex> lock(signalled_mutex_);
  for (auto& [queue, signalled] : signalled_) {
    if (queue == queue_id) {
      if (value > signalled) signalled = value;
      return;
    }
  }
  signalled_.emplace_back(queue_id, value);
}

std::shared_ptr<CudaTimeline> make_cuda_timeline(int device) {
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaSetDevice(device));
  if (!events_forced() && supports_stream_mem_ops64(device)) {
    return std::make_shared<MemOpTimeline>(device);
  }
  return std::make_shared<EventTimeline>();  // its events belong to the current device
}

}  // namespace mlxn::cuda
