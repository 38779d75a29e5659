// A CPU queue: one worker thread that runs committed command buffers in order.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "core/backend.h"

namespace mlxn::cpu {

struct SubmissionState;

class CpuQueue final : public detail::QueueImpl {
 public:
  CpuQueue();
  ~CpuQueue() override;
  std::shared_ptr<detail::SubmissionImpl> submit(detail::CommandBuffer&& cb) override;
  void synchronize() override;

 private:
  struct Item {
    detail::CommandBuffer cb;
    std::shared_ptr<SubmissionState> state;
  };
  void worker_loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Item> items_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace mlxn::cpu
