// The CPU "graph": a stored command list that a queue worker runs when a Graph command arrives.
#pragma once

#include <mutex>
#include <vector>

#include "core/backend.h"

namespace mlxn::cpu {

class CpuGraphExec final : public detail::GraphExecImpl {
 public:
  explicit CpuGraphExec(std::vector<detail::Command> commands) : commands_(std::move(commands)) {
    for (std::size_t i = 0; i < commands_.size(); ++i) {
      if (commands_[i].kind == detail::Command::Kind::Dispatch) dispatch_index_.push_back(i);
    }
  }
  void set_params(std::size_t dispatch_index, const void* params, std::size_t bytes) override;
  /// A copy of the commands as they are now (params updates apply to later launches only).
  std::vector<detail::Command> snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return commands_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<detail::Command> commands_;
  std::vector<std::size_t> dispatch_index_;
};

}  // namespace mlxn::cpu
