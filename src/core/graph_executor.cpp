// GraphExecutor / GraphSession: a forward pass as one tracked command buffer.
#include "mlxn/core/graph_executor.h"

namespace mlxn {

GraphSession::GraphSession(CommandEncoder encoder) : encoder_(std::move(encoder)) {
  encoder_.set_auto_barriers(true);
}

void GraphSession::finish() { encoder_.commit_and_wait(); }

GraphExecutor::GraphExecutor(Device device)
    : device_(std::move(device)), queue_(device_.default_queue()) {}

GraphExecutor::GraphExecutor(Device device, Queue queue)
    : device_(std::move(device)), queue_(std::move(queue)) {}

GraphSession GraphExecutor::begin() { return GraphSession(CommandEncoder(device_, queue_)); }

}  // namespace mlxn
