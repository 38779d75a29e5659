// The small interface every backend implements: memory, queues, timelines, graphs and kernels.
// Internal to the library; no backend type leaks into public headers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::detail {

class BackendImpl;
class TimelineImpl;
class GraphExecImpl;

/// One allocation. Freed through its backend when the last reference goes.
struct Storage {
  std::shared_ptr<BackendImpl> backend;
  void* ptr = nullptr;   // backend address (device pointer on CUDA)
  void* host = nullptr;  // host address when host-visible, else nullptr
  std::size_t bytes = 0;
  MemoryKind kind = MemoryKind::Device;
  ~Storage();
};

/// A binding resolved at encode time: address of the view's first byte and its length.
struct BoundArg {
  void* ptr = nullptr;
  std::size_t bytes = 0;
};

/// One recorded command of a command buffer.
struct Command {
  enum class Kind : std::uint8_t { Dispatch, Barrier, Wait, Signal, Graph };
  Kind kind = Kind::Dispatch;
  std::uint8_t n_args = 0;
  std::uint16_t params_bytes = 0;
  const Kernel* kernel = nullptr;                       // Dispatch
  std::array<BoundArg, kMaxBindings> args{};            // Dispatch
  alignas(16) std::array<unsigned char, kMaxParamBytes> params{};  // Dispatch
  std::shared_ptr<TimelineImpl> timeline;               // Wait / Signal
  std::uint64_t value = 0;                              // Wait / Signal
  std::shared_ptr<GraphExecImpl> graph;                 // Graph
  std::shared_ptr<const void> keepalive;                // Graph: the buffers its nodes bind
};

/// Builds a Dispatch command: resolves the bindings' addresses and copies the params inline.
/// Validation (counts, sizes, backends) is the caller's job.
inline Command make_dispatch_command(const Kernel& kernel, std::span<const Arg> args,
                                     const void* params, std::size_t params_bytes) {
  Command c;
  c.kind = Command::Kind::Dispatch;
  c.kernel = &kernel;
  c.n_args = static_cast<std::uint8_t>(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    c.args[i] = BoundArg{args[i].buffer.raw_ptr(), args[i].buffer.size_bytes()};
  }
  c.params_bytes = static_cast<std::uint16_t>(params_bytes);
  if (params_bytes) std::memcpy(c.params.data(), params, params_bytes);
  return c;
}

/// What commit() hands to a queue.
struct CommandBuffer {
  std::vector<Command> commands;
  std::vector<std::shared_ptr<Storage>> retained;  // kept alive until the work completes
  std::string label;
  bool timing = false;
};

/// A submitted command buffer.
class SubmissionImpl {
 public:
  virtual ~SubmissionImpl() = default;
  /// Blocks until done. The first wait after a device error throws Error(CommandBuffer) naming
  /// the label and the failing kernel; later waits return normally.
  virtual void wait() = 0;
  virtual bool is_done() = 0;
  /// Device time between the start and end of the buffer, when timing was requested and done.
  virtual std::optional<double> gpu_time_ms() = 0;
};

class QueueImpl {
 public:
  virtual ~QueueImpl() = default;
  /// Starts executing `cb` after everything submitted earlier to this queue; returns at once.
  virtual std::shared_ptr<SubmissionImpl> submit(CommandBuffer&& cb) = 0;
  /// Blocks until the queue is idle. Errors of command buffers surface through their wait();
  /// a backend may also throw here for a device fault that left the queue unusable.
  virtual void synchronize() = 0;
};

class TimelineImpl {
 public:
  virtual ~TimelineImpl() = default;
  virtual std::uint64_t completed_value() = 0;
  virtual void host_wait(std::uint64_t value) = 0;
};

/// An instantiated graph; launched by a Command of kind Graph.
class GraphExecImpl {
 public:
  virtual ~GraphExecImpl() = default;
  /// Replaces the params of the `dispatch_index`-th dispatch (counting dispatches only).
  virtual void set_params(std::size_t dispatch_index, const void* params, std::size_t bytes) = 0;
};

class BackendImpl : public std::enable_shared_from_this<BackendImpl> {
 public:
  virtual ~BackendImpl() = default;
  virtual Backend kind() const = 0;
  virtual std::string name() const = 0;
  virtual MemoryInfo memory_info() const = 0;
  /// Fills s.ptr (and s.host for HostVisible) with s.bytes of zeroed memory; throws Allocation.
  virtual void allocate(Storage& s) = 0;
  virtual void deallocate(Storage& s) noexcept = 0;
  /// Synchronous copies between host memory and a storage.
  virtual void write(const Storage& s, std::size_t offset, const void* src, std::size_t n) = 0;
  virtual void read(const Storage& s, std::size_t offset, void* dst, std::size_t n) = 0;
  virtual std::shared_ptr<QueueImpl> create_queue() = 0;
  virtual std::shared_ptr<TimelineImpl> create_timeline() = 0;
  /// `commands` holds only Dispatch and Barrier. Dispatches between two barriers are independent.
  virtual std::shared_ptr<GraphExecImpl> instantiate_graph(const std::vector<Command>& commands) = 0;
  /// Blocks until every queue of this backend is idle.
  virtual void synchronize() = 0;

  /// Set up by the backend's constructor with its builtin kernel factories.
  KernelRegistry& registry() { return *registry_; }
  const std::shared_ptr<QueueImpl>& default_queue() {
    if (!default_queue_) default_queue_ = create_queue();
    return default_queue_;
  }

 protected:
  std::unique_ptr<KernelRegistry> registry_;
  std::shared_ptr<QueueImpl> default_queue_;
};

/// Opens the CPU backend (always present).
std::shared_ptr<BackendImpl> open_cpu_backend();
/// Opens CUDA device `index`; throws DeviceNotFound (also when built without CUDA).
std::shared_ptr<BackendImpl> open_cuda_backend(int index);
/// Number of usable CUDA devices (0 without CUDA or without a GPU); never throws.
int cuda_device_count();
/// Name and memory of CUDA device `index`.
DeviceInfo cuda_device_info(int index);

}  // namespace mlxn::detail
