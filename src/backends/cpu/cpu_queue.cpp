// CPU queue worker: executes dispatches, barriers, timeline waits/signals and graph launches.
#include "backends/cpu/cpu_queue.h"

#include <chrono>
#include <exception>
#include <optional>
#include <string>

#include "backends/cpu/cpu_graph.h"
#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/cpu_timeline.h"
#include "mlxn/core/error.h"

namespace mlxn::cpu {

using Clock = std::chrono::steady_clock;

/// Completion of one command buffer, shared by the worker and the Submission.
struct SubmissionState {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  bool reported = false;
  std::string error;  // empty when the buffer succeeded
  bool timing = false;
  Clock::time_point start, end;

  void finish(std::string err) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::move(err);
      done = true;
    }
    cv.notify_all();
  }
  /// Waits; returns the error message the first time it is asked after a failure.
  std::optional<std::string> wait_and_take_error() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return done; });
    if (error.empty() || reported) return std::nullopt;
    reported = true;
    return error;
  }
};

namespace {

class CpuSubmission final : public detail::SubmissionImpl {
 public:
  explicit CpuSubmission(std::shared_ptr<SubmissionState> s) : s_(std::move(s)) {}
  void wait() override {
    if (auto err = s_->wait_and_take_error()) throw Error(ErrorKind::CommandBuffer, *err);
  }
  bool is_done() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    return s_->done;
  }
  std::optional<double> gpu_time_ms() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    if (!s_->done || !s_->timing) return std::nullopt;
    return std::chrono::duration<double, std::milli>(s_->end - s_->start).count();
  }

 private:
  std::shared_ptr<SubmissionState> s_;
};

void run_dispatch(const detail::Command& c) {
  KernelArgs a{c.args.data(), c.n_args, c.params.data(), c.params_bytes};
  reinterpret_cast<KernelFn>(const_cast<void*>(c.kernel->entry))(a);
}

// Runs commands in order. After a failure the remaining dispatches are skipped, but timeline
// signals still happen so that stages waiting on this one (maybe on other queues) do not hang.
void run_commands(const std::vector<detail::Command>& commands, std::string& error,
                  const std::string& label) {
  for (const detail::Command& c : commands) {
    switch (c.kind) {
      case detail::Command::Kind::Dispatch:
        if (!error.empty()) break;
        try {
          run_dispatch(c);
        } catch (const std::exception& e) {
          error = "command buffer '" + label + "': kernel " + c.kernel->key + " failed: " +
                  e.what();
        }
        break;
      case detail::Command::Kind::Barrier:
        break;  // dispatches already run one after another
      case detail::Command::Kind::Wait:
        static_cast<CpuTimeline*>(c.timeline.get())->host_wait(c.value);
        break;
      case detail::Command::Kind::Signal:
        static_cast<CpuTimeline*>(c.timeline.get())->signal(c.value);
        break;
      case detail::Command::Kind::Graph:
        if (!error.empty()) break;
        run_commands(static_cast<CpuGraphExec*>(c.graph.get())->snapshot(), error, label);
        break;
    }
  }
}

}  // namespace

CpuQueue::CpuQueue() : worker_([this] { worker_loop(); }) {}

CpuQueue::~CpuQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();  // the worker drains what was committed first
}

std::shared_ptr<detail::SubmissionImpl> CpuQueue::submit(detail::CommandBuffer&& cb) {
  auto state = std::make_shared<SubmissionState>();
  state->timing = cb.timing;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    items_.push_back(Item{std::move(cb), state});
  }
  cv_.notify_one();
  return std::make_shared<CpuSubmission>(state);
}

void CpuQueue::synchronize() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_cv_.wait(lock, [&] { return items_.empty() && !busy_; });
}

void CpuQueue::worker_loop() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !items_.empty(); });
      if (items_.empty()) return;  // stop requested and drained
      item = std::move(items_.front());
      items_.pop_front();
      busy_ = true;
    }
    std::string error;
    item.state->start = Clock::now();
    run_commands(item.cb.commands, error, item.cb.label);
    item.state->end = Clock::now();
    item.cb = detail::CommandBuffer{};  // release retained buffers before signalling completion
    item.state->finish(std::move(error));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace mlxn::cpu
