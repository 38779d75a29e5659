// Thread pool behind cpu::parallel_for: one job at a time, chunks claimed with an atomic counter.
#include "backends/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mlxn::cpu {
namespace {

// One parallel_for call. Workers hold it by shared_ptr, so a worker that wakes late sees only
// its own (finished) job: every chunk is claimed before run() returns, and fn is never called
// after that.
struct Job {
  const std::function<void(std::int64_t, std::int64_t)>* fn;
  std::int64_t n, grain, chunks;
  std::atomic<std::int64_t> next{0};
  std::mutex mutex;
  std::condition_variable done_cv;
  std::int64_t done = 0;
  std::exception_ptr error;

  void work() {
    std::int64_t finished = 0;
    std::exception_ptr err;
    for (;;) {
      const std::int64_t c = next.fetch_add(1);
      if (c >= chunks) break;
      const std::int64_t b = c * grain;
      try {
        (*fn)(b, std::min(n, b + grain));
      } catch (...) {
        if (!err) err = std::current_exception();
      }
      ++finished;
    }
    if (finished == 0) return;
    std::lock_guard<std::mutex> lock(mutex);
    done += finished;
    if (err && !error) error = err;
    if (done == chunks) done_cv.notify_all();
  }
};

class Pool {
 public:
  Pool() {
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < hw; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  void run(std::int64_t n, std::int64_t grain,
           const std::function<void(std::int64_t, std::int64_t)>& fn) {
    std::lock_guard<std::mutex> job_lock(job_mutex_);  // one job at a time
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->n = n;
    job->grain = grain;
    job->chunks = (n + grain - 1) / grain;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      ++generation_;
    }
    cv_.notify_all();
    job->work();
    {
      std::unique_lock<std::mutex> lock(job->mutex);
      job->done_cv.wait(lock, [&] { return job->done == job->chunks; });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || (generation_ != seen && job_ != nullptr); });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      job->work();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<Job> job_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  if (n <= grain || pool().threads() == 1) {
    fn(0, n);
    return;
  }
  pool().run(n, grain, fn);
}

int thread_count() { return pool().threads(); }

}  // namespace mlxn::cpu
