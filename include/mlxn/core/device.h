// Device: one compute device (the CPU or a CUDA GPU) with its default queue and kernel registry.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"

namespace mlxn {

namespace detail {
class BackendImpl;
class QueueImpl;
}  // namespace detail

class KernelRegistry;
class CommandEncoder;
class EncoderSession;

/// Which backend to open. Auto picks CUDA when a GPU is present, else the CPU.
enum class Backend { Auto, Cpu, Cuda };

/// "auto", "cpu", "cuda".
const char* backend_name(Backend backend);
/// Parses "auto" | "cpu" | "cuda"; throws InvalidArgument otherwise.
Backend backend_from_name(const std::string& name);

/// Memory of a device in bytes.
struct MemoryInfo {
  std::size_t total = 0;
  std::size_t free = 0;
};

/// Where an allocation lives.
enum class MemoryKind {
  Device,       // fastest for kernels; host access through write/read copies
  HostVisible,  // also addressable from the host (pinned + mapped on CUDA)
};

/// A device visible to this process, as listed by Device::list().
struct DeviceInfo {
  Backend backend;
  int index;
  std::string name;
  MemoryInfo memory;
};

/// An ordered submission queue on a device (a CUDA stream; a CPU worker thread). Command buffers
/// on one queue run in submission order; different queues may run concurrently.
class Queue {
 public:
  Queue() = default;
  bool valid() const { return impl_ != nullptr; }
  /// Blocks until everything submitted to this queue has finished; rethrows a device error.
  void synchronize();
  const std::shared_ptr<detail::QueueImpl>& impl() const { return impl_; }
  explicit Queue(std::shared_ptr<detail::QueueImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<detail::QueueImpl> impl_;
};

/// A handle to an open device. Copies share the device; it stays open while any copy, buffer or
/// command buffer refers to it.
class Device {
 public:
  /// Opens a device; throws DeviceNotFound when the backend is absent or has no such device.
  static Device open(Backend backend = Backend::Auto, int index = 0);
  /// Every device this build can open (the CPU always; CUDA GPUs when built with CUDA).
  static std::vector<DeviceInfo> list();
  /// True when this build has the CUDA backend and a usable GPU is present.
  static bool cuda_available();

  Backend backend() const;
  std::string name() const;
  MemoryInfo memory_info() const;

  /// Zero-filled allocation. Throws InvalidArgument for zero bytes, for a shape whose size does not
  /// fit in `bytes`, or for more memory than the device has; Allocation when the backend refuses.
  Buffer alloc_buffer(std::size_t bytes, DType dtype, Shape shape,
                      MemoryKind kind = MemoryKind::Device);
  /// Zero-filled buffer of exactly shape × dtype bytes.
  Buffer alloc(DType dtype, Shape shape, MemoryKind kind = MemoryKind::Device);

  /// The queue that encoders use unless told otherwise.
  Queue default_queue() const;
  /// A new independent queue (another CUDA stream / CPU worker).
  Queue new_queue();
  /// Kernels of this device's backend.
  KernelRegistry& kernels() const;
  /// Blocks until all queues of this device are idle.
  void synchronize();

  /// A command encoder on the default queue (or on `queue`).
  CommandEncoder command_encoder();
  CommandEncoder command_encoder(Queue queue);
  /// A multi-stage encoder session on the default queue.
  EncoderSession encoder_session();

  const std::shared_ptr<detail::BackendImpl>& backend_impl() const { return impl_; }
  explicit Device(std::shared_ptr<detail::BackendImpl> impl);

 private:
  std::shared_ptr<detail::BackendImpl> impl_;
};

}  // namespace mlxn
