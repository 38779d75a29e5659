// CudaGraphExec: building, instantiating, updating and launching CUDA graphs of dispatches.
#include "backends/cuda/cuda_graph.h"

#include <cstring>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/host_launch.h"

namespace mlxn::cuda {

using detail::Command;

namespace {

cudaKernelNodeParams node_params(const LaunchConfig& lc, void** kernel_args) {
  cudaKernelNodeParams p{};
  p.func = const_cast<void*>(lc.func);
  p.gridDim = lc.grid;
  p.blockDim = lc.block;
  p.sharedMemBytes = static_cast<unsigned int>(lc.smem);
  p.kernelParams = kernel_args;
  p.extra = nullptr;
  return p;
}

// Above this many direct edges between two consecutive groups, route them through an empty
// join node (|a| + |b| edges instead of |a| x |b|).
constexpr std::size_t kMaxDirectEdges = 16;

}  // namespace

CudaGraphExec::CudaGraphExec(int device, std::shared_ptr<StatusSlots> slots,
                             const std::vector<Command>& commands)
    : device_(device), slots_(std::move(slots)) {
  try {
    build(commands);
  } catch (...) {
    destroy();
    throw;
  }
}

CudaGraphExec::~CudaGraphExec() {
  destroy();
}

void CudaGraphExec::destroy() noexcept {
  // The exec is kept alive by every submission that launched it until that submission has
  // completed, so no replay is running here.
  if (exec_ != nullptr) ignore_cuda(cudaGraphExecDestroy(exec_));
  if (graph_ != nullptr) ignore_cuda(cudaGraphDestroy(graph_));
  exec_ = nullptr;
  graph_ = nullptr;
  if (slot_) slots_->release(slot_);
  slot_ = {};
}

void CudaGraphExec::build(const std::vector<Command>& commands) {
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaSetDevice(device_));
  slot_ = slots_->acquire();

  // Sizes of the barrier-delimited groups (empty groups skipped), to choose join nodes.
  std::vector<std::size_t> group_sizes;
  std::size_t current = 0;
  for (const Command& c : commands) {
    if (c.kind == Command::Kind::Barrier) {
      if (current != 0) group_sizes.push_back(current);
      current = 0;
    } else if (c.kind == Command::Kind::Dispatch) {
      if (c.kernel == nullptr || c.kernel->backend != Backend::Cuda) {
        throw Error(ErrorKind::InvalidArgument, "CUDA graph: dispatch of a non-CUDA kernel");
      }
      ++current;
    } else {
      throw Error(ErrorKind::InvalidArgument,
                  "CUDA graph: only dispatches and barriers can be instantiated");
    }
  }
  if (current != 0) group_sizes.push_back(current);

  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaGraphCreate(&graph_, 0));
  std::size_t n_dispatches = 0;
  for (std::size_t s : group_sizes) n_dispatches += s;
  nodes_.reserve(n_dispatches);

  std::vector<cudaGraphNode_t> prev;  // nodes of the previous non-empty group
  std::vector<cudaGraphNode_t> cur;   // nodes of the group being built
  std::vector<cudaGraphNode_t> deps;  // what the current group's dispatches depend on
  std::size_t group = 0;
  for (const Command& c : commands) {
    if (c.kind == Command::Kind::Barrier) {
      if (!cur.empty()) {
        prev.swap(cur);
        cur.clear();
        ++group;
      }
      continue;
    }
    if (cur.empty()) {
      // First dispatch of a group: fix its dependencies.
      deps = prev;
      if (prev.size() * group_sizes[group] > kMaxDirectEdges) {
        cudaGraphNode_t join = nullptr;
        MLXN_CUDA_CHECK(ErrorKind::CommandBuffer,
                        cudaGraphAddEmptyNode(&join, graph_, prev.data(), prev.size()));
        deps.assign(1, join);
      }
    }
    Node& node = nodes_.emplace_back();
    std::memset(&node.args, 0, sizeof(node.args));
    for (int j = 0; j < kMaxBindings && j < c.n_args; ++j) {
      node.args.ptr[j] = c.args[j].ptr;
      node.args.bytes[j] = c.args[j].bytes;
    }
    std::memcpy(node.args.params, c.params.data(), sizeof(node.args.params));
    node.args.status = slot_.device;
    node.args.tag = static_cast<unsigned int>(nodes_.size() - 1);
    node.configure = configure_of(c.kernel->entry);
    node.key = c.kernel->key;
    const LaunchConfig lc = node.configure(node.args);
    node.func = lc.func;
    cudaError_t err;
    if (is_host_launch(lc)) {
      // Host-enqueued work (a cuBLASLt call) becomes a child graph captured from its enqueue.
      cudaGraph_t child = capture_host_launch(host_enqueue_of(lc), node.args, node.key.c_str());
      err = cudaGraphAddChildGraphNode(&node.node, graph_, deps.data(), deps.size(), child);
      ignore_cuda(cudaGraphDestroy(child));  // the node holds its own copy
    } else {
      void* kernel_args[] = {&node.args};
      const cudaKernelNodeParams p = node_params(lc, kernel_args);
      err = cudaGraphAddKernelNode(&node.node, graph_, deps.data(), deps.size(), &p);
    }
    if (err != cudaSuccess) {
      throw_cuda_error(ErrorKind::CommandBuffer, err, "CUDA graph: adding kernel " + node.key);
    }
    cur.push_back(node.node);
  }

  if (nodes_.empty()) {
    // A graph without dispatches still launches (and orders the stream) like any other.
    cudaGraphNode_t empty = nullptr;
    MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaGraphAddEmptyNode(&empty, graph_, nullptr, 0));
  }
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaGraphInstantiate(&exec_, graph_, 0));
}

void CudaGraphExec::set_params(std::size_t dispatch_index, const void* params, std::size_t bytes) {
  if (dispatch_index >= nodes_.size()) {
    throw Error(ErrorKind::InvalidArgument, "graph set_params: dispatch " +
                                                std::to_string(dispatch_index) + " of " +
                                                std::to_string(nodes_.size()));
  }
  if (bytes > static_cast<std::size_t>(kMaxParamBytes) || (bytes != 0 && params == nullptr)) {
    throw Error(ErrorKind::InvalidArgument, "graph set_params: " + std::to_string(bytes) +
                                                " param bytes (at most " +
                                                std::to_string(kMaxParamBytes) + ")");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Node& node = nodes_[dispatch_index];
  DeviceArgs args = node.args;
  if (bytes != 0) std::memcpy(args.params, params, bytes);
  const LaunchConfig lc = node.configure(args);
  if (lc.func != node.func) {
    throw Error(ErrorKind::InvalidArgument,
                "graph set_params: kernel " + node.key + " changed its function with its params");
  }
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaSetDevice(device_));
  if (is_host_launch(lc)) {
    // Re-captured with the new params; CUDA accepts it only when the topology is unchanged.
    cudaGraph_t child = capture_host_launch(host_enqueue_of(lc), args, node.key.c_str());
    const cudaError_t err = cudaGraphExecChildGraphNodeSetParams(exec_, node.node, child);
    ignore_cuda(cudaGraphDestroy(child));
    if (err != cudaSuccess) {
      throw_cuda_error(ErrorKind::InvalidArgument, err, "graph set_params: kernel " + node.key);
    }
    node.args = args;
    return;
  }
  void* kernel_args[] = {&args};
  const cudaKernelNodeParams p = node_params(lc, kernel_args);
  const cudaError_t err = cudaGraphExecKernelNodeSetParams(exec_, node.node, &p);
  if (err != cudaSuccess) {
    throw_cuda_error(ErrorKind::InvalidArgument, err, "graph set_params: kernel " + node.key);
  }
  node.args = args;  // only once CUDA has accepted the update
}

void CudaGraphExec::launch(cudaStream_t stream, const std::string& label) {
  std::lock_guard<std::mutex> lock(mutex_);
  const cudaError_t err = cudaGraphLaunch(exec_, stream);
  if (err != cudaSuccess)
    throw_cuda_error(ErrorKind::CommandBuffer, err, label + ": launching graph");
}

std::optional<std::string> CudaGraphExec::take_status(const std::string& label) {
  const KernelStatus status = read_status(slot_.host);
  if (status.code == 0) return std::nullopt;
  const std::string kernel =
      status.tag < nodes_.size()
          ? nodes_[status.tag].key + " (graph dispatch " + std::to_string(status.tag) + ")"
          : "(a graph kernel)";
  volatile KernelStatus* s = slot_.host;
  s->code = 0;
  s->tag = 0;
  s->info = 0;
  return describe_status(status, label, kernel);
}

}  // namespace mlxn::cuda
