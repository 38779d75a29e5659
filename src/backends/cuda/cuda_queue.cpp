// CudaQueue and CudaSubmission: launching command buffers on a stream and reporting their errors.
#include "backends/cuda/cuda_queue.h"

#include <atomic>
#include <cstring>
#include <set>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_graph.h"
#include "backends/cuda/cuda_timeline.h"
#include "backends/cuda/host_launch.h"
#include "backends/cuda/kernel_abi.h"
#include "backends/cuda/kernel_launch.h"

namespace mlxn::cuda {

using detail::Command;

static_assert(kMaxBindings == static_cast<int>(mlxn::kMaxBindings));
static_assert(kMaxParamBytes == static_cast<int>(mlxn::kMaxParamBytes));
static_assert(sizeof(Command{}.params) == sizeof(DeviceArgs{}.params));

namespace {

CudaTimeline& timeline_of(const Command& c, const std::string& label) {
  auto* t = dynamic_cast<CudaTimeline*>(c.timeline.get());
  if (t == nullptr) {
    throw Error(ErrorKind::InvalidArgument,
                "command buffer '" + label + "': wait/signal on a timeline that is not a CUDA one");
  }
  return *t;
}

CudaGraphExec& graph_of(const Command& c, const std::string& label) {
  auto* g = dynamic_cast<CudaGraphExec*>(c.graph.get());
  if (g == nullptr) {
    throw Error(ErrorKind::InvalidArgument,
                "command buffer '" + label + "': launch of a graph that is not a CUDA one");
  }
  return *g;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CudaSubmission

CudaSubmission::CudaSubmission(std::shared_ptr<QueueResources> resources,
                               detail::CommandBuffer&& cb)
    : res_(std::move(resources)), cb_(std::move(cb)) {}

CudaSubmission::~CudaSubmission() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Never free what the GPU may still use: block until it is done (errors are dropped; nobody
  // is left to report them to).
  if (recorded_ && !completed_) ignore_cuda(cudaEventSynchronize(done_));
  completed_ = true;
  release_locked();
}

void CudaSubmission::wait() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!completed_) observe_locked(cudaEventSynchronize(done_));
  if (error_) {
    // Reported once: later waits return normally.
    const std::string message = std::move(*error_);
    error_.reset();
    throw Error(ErrorKind::CommandBuffer, message);
  }
}

bool CudaSubmission::is_done() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (completed_) return true;
  const cudaError_t r = cudaEventQuery(done_);
  if (r == cudaErrorNotReady) return false;
  observe_locked(r);  // success or a device error that the next wait reports
  return true;
}

std::optional<double> CudaSubmission::gpu_time_ms() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!completed_ && start_ != nullptr) {
    const cudaError_t r = cudaEventQuery(done_);
    if (r != cudaErrorNotReady) observe_locked(r);
  }
  return time_ms_;
}

void CudaSubmission::observe_locked(cudaError_t result) {
  completed_ = true;
  const std::string& label = cb_.label;
  if (result != cudaSuccess) {
    // Usually sticky (illegal address, trap): which kernel faulted is unknown to the runtime.
    error_ = cuda_error_message(result, "command buffer '" + label + "' failed") +
             " (kernels: " + kernel_keys() + ")";
  } else {
    if (start_ != nullptr && end_ != nullptr) {
      float ms = 0.0f;
      if (cudaEventElapsedTime(&ms, start_, end_) == cudaSuccess) {
        time_ms_ = ms;
      } else {
        cudaGetLastError();
      }
    }
    const KernelStatus status = read_status(slot_.host);
    if (status.code != 0) error_ = describe_status(status, label, kernel_for_tag(status.tag));
  }
  if (has_graphs_) {
    // Always take (and so clear) the graphs' statuses, even when an error is already known.
    for (const Command& c : cb_.commands) {
      if (c.kind != Command::Kind::Graph) continue;
      auto* g = dynamic_cast<CudaGraphExec*>(c.graph.get());
      if (g == nullptr) continue;
      std::optional<std::string> m = g->take_status(label);
      if (m && !error_) error_ = std::move(m);
    }
  }
  release_locked();
}

void CudaSubmission::release_locked() noexcept {
  // Completion is observed (or the stream drained): storages, timelines, graphs and the status
  // slot are free to go. The label stays for messages.
  cb_.retained.clear();
  cb_.commands.clear();
  cb_.commands.shrink_to_fit();
  if (res_) {
    res_->slots->release(slot_);
    res_->done_events.release(done_);
    res_->timing_events.release(start_);
    res_->timing_events.release(end_);
  }
  slot_ = {};
  done_ = start_ = end_ = nullptr;
}

std::string CudaSubmission::kernel_for_tag(unsigned int tag) const {
  if (tag < cb_.commands.size()) {
    const Command& c = cb_.commands[tag];
    if (c.kind == Command::Kind::Dispatch && c.kernel != nullptr) return c.kernel->key;
  }
  return "(one of: " + kernel_keys() + ")";
}

std::string CudaSubmission::kernel_keys() const {
  std::set<std::string> keys;
  for (const Command& c : cb_.commands) {
    if (c.kind == Command::Kind::Dispatch && c.kernel != nullptr) keys.insert(c.kernel->key);
    if (c.kind == Command::Kind::Graph) keys.insert("<graph>");
  }
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// ---------------------------------------------------------------------------------------------
// CudaQueue

namespace {
// Queue ids are never reused (stream handles can be, once a stream is destroyed).
std::atomic<std::uint64_t> next_queue_id{1};
}  // namespace

CudaQueue::CudaQueue(int device, std::shared_ptr<StatusSlots> slots)
    : device_(device), id_(next_queue_id.fetch_add(1, std::memory_order_relaxed)) {
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaSetDevice(device_));
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer,
                  cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  res_ = std::make_shared<QueueResources>(device_, std::move(slots));
}

CudaQueue::~CudaQueue() {
  // Work still on the stream completes; CUDA releases the stream afterwards.
  ignore_cuda(cudaStreamDestroy(stream_));
}

std::shared_ptr<detail::SubmissionImpl> CudaQueue::submit(detail::CommandBuffer&& cb) {
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaSetDevice(device_));
  auto sub = std::make_shared<CudaSubmission>(res_, std::move(cb));
  sub->slot_ = res_->slots->acquire();
  sub->done_ = res_->done_events.acquire();
  if (sub->cb_.timing) {
    sub->start_ = res_->timing_events.acquire();
    sub->end_ = res_->timing_events.acquire();
  }
  // One command buffer's commands stay contiguous on the stream even when several threads
  // submit to this queue (uncontended in the usual one-encoder-per-queue case).
  std::lock_guard<std::mutex> submit_lock(submit_mutex_);
  try {
    enqueue(*sub);
  } catch (...) {
    // Part of the buffer may already be on the stream and use the status slot and storages:
    // drain it before the submission lets them go.
    ignore_cuda(cudaStreamSynchronize(stream_));
    std::lock_guard<std::mutex> lock(sub->mutex_);
    sub->completed_ = true;
    sub->release_locked();
    throw;
  }
  return sub;
}

void CudaQueue::enqueue(CudaSubmission& sub) {
  const std::string& label = sub.cb_.label;
  const std::vector<Command>& commands = sub.cb_.commands;
  // One argument block reused by every dispatch: cudaLaunchKernel copies it at the call.
  DeviceArgs args;
  std::memset(&args, 0, sizeof(args));
  args.status = sub.slot_.device;
  // GPU time starts at the first command that is not a wait, so the time a stage spends
  // blocked on its predecessor is not counted as its own.
  bool started = sub.start_ == nullptr;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    const Command& c = commands[i];
    if (!started && c.kind != Command::Kind::Wait) {
      MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaEventRecord(sub.start_, stream_));
      started = true;
    }
    switch (c.kind) {
      case Command::Kind::Dispatch: {
        const Kernel* kernel = c.kernel;
        if (kernel == nullptr || kernel->backend != Backend::Cuda) [[unlikely]] {
          throw Error(
              ErrorKind::InvalidArgument,
              "command buffer '" + label + "': dispatch of a kernel that is not a CUDA one");
        }
        for (int j = 0; j < kMaxBindings; ++j) {
          const bool bound = j < c.n_args;
          args.ptr[j] = bound ? c.args[j].ptr : nullptr;
          args.bytes[j] = bound ? c.args[j].bytes : 0;
        }
        std::memcpy(args.params, c.params.data(), sizeof(args.params));
        args.tag = static_cast<unsigned int>(i);
        const auto configure = configure_of(kernel->entry);
        const LaunchConfig lc = configure(args);
        if (is_host_launch(lc)) {
          // A library call (cuBLASLt) or several launches: its host function enqueues them.
          host_enqueue_of(lc)(args, stream_);
          break;
        }
        void* kernel_args[] = {&args};
        const cudaError_t err = launch_kernel(lc, kernel_args, stream_, device_);
        if (err != cudaSuccess) [[unlikely]] {
          throw_cuda_error(ErrorKind::CommandBuffer, err, label + ": launching " + kernel->key);
        }
        break;
      }
      case Command::Kind::Barrier:
        break;  // kernels on one stream already run one after another
      case Command::Kind::Wait:
        timeline_of(c, label).encode_wait(stream_, id_, c.value);
        break;
      case Command::Kind::Signal:
        timeline_of(c, label).encode_signal(stream_, id_, c.value);
        break;
      case Command::Kind::Graph:
        sub.has_graphs_ = true;
        graph_of(c, label).launch(stream_, label);
        break;
    }
  }
  if (sub.start_ != nullptr) {
    if (!started) MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaEventRecord(sub.start_, stream_));
    MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaEventRecord(sub.end_, stream_));
  }
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaEventRecord(sub.done_, stream_));
  sub.recorded_ = true;
}

void CudaQueue::synchronize() {
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaSetDevice(device_));
  const cudaError_t err = cudaStreamSynchronize(stream_);
  if (err != cudaSuccess) throw_cuda_error(ErrorKind::CommandBuffer, err, "queue synchronize");
}

}  // namespace mlxn::cuda
