// Device: opening backends, allocation checks, queues and encoders.
#include "mlxn/core/device.h"

#include <map>
#include <mutex>
#include <string>

#include "core/backend.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/encoder_session.h"
#include "mlxn/core/error.h"
#include "mlxn/core/timeline.h"

namespace mlxn {
namespace {

// Opening the same device twice shares one backend (and one kernel cache) while either is alive.
std::mutex g_open_mutex;
std::map<std::pair<int, int>, std::weak_ptr<detail::BackendImpl>> g_open;

}  // namespace

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::Auto: return "auto";
    case Backend::Cpu: return "cpu";
    case Backend::Cuda: return "cuda";
  }
  return "unknown";
}

Backend backend_from_name(const std::string& name) {
  if (name == "auto") return Backend::Auto;
  if (name == "cpu") return Backend::Cpu;
  if (name == "cuda") return Backend::Cuda;
  throw Error(ErrorKind::InvalidArgument,
              "unknown backend '" + name + "' (expected auto, cpu or cuda)");
}

void Queue::synchronize() {
  if (!impl_) throw Error(ErrorKind::InvalidArgument, "Queue::synchronize: empty queue");
  impl_->synchronize();
}

Device::Device(std::shared_ptr<detail::BackendImpl> impl) : impl_(std::move(impl)) {}

bool Device::cuda_available() { return detail::cuda_device_count() > 0; }

Device Device::open(Backend backend, int index) {
  if (backend == Backend::Auto) backend = cuda_available() ? Backend::Cuda : Backend::Cpu;
  if (index < 0) {
    throw Error(ErrorKind::DeviceNotFound, "device index " + std::to_string(index) + " < 0");
  }
  if (backend == Backend::Cpu && index != 0) {
    throw Error(ErrorKind::DeviceNotFound, "the CPU backend has one device (index 0), not " +
                                               std::to_string(index));
  }
  std::lock_guard<std::mutex> lock(g_open_mutex);
  auto key = std::make_pair(static_cast<int>(backend), index);
  if (auto alive = g_open[key].lock()) return Device(alive);
  auto impl =
      backend == Backend::Cpu ? detail::open_cpu_backend() : detail::open_cuda_backend(index);
  g_open[key] = impl;
  return Device(impl);
}

std::vector<DeviceInfo> Device::list() {
  std::vector<DeviceInfo> out;
  {
    Device cpu = open(Backend::Cpu);
    out.push_back({Backend::Cpu, 0, cpu.name(), cpu.memory_info()});
  }
  const int n = detail::cuda_device_count();
  for (int i = 0; i < n; ++i) out.push_back(detail::cuda_device_info(i));
  return out;
}

Backend Device::backend() const { return impl_->kind(); }
std::string Device::name() const { return impl_->name(); }
MemoryInfo Device::memory_info() const { return impl_->memory_info(); }

Buffer Device::alloc_buffer(std::size_t bytes, DType dtype, Shape shape, MemoryKind kind) {
  if (bytes == 0) {
    throw Error(ErrorKind::InvalidArgument,
                "alloc_buffer: zero bytes requested (shape " + shape_to_string(shape) + ")");
  }
  const auto need = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (need > bytes) {
    throw Error(ErrorKind::InvalidArgument,
                "alloc_buffer: shape " + shape_to_string(shape) + " of " +
                    std::string(dtype_name(dtype)) + " needs " + std::to_string(need) +
                    " bytes, more than the " + std::to_string(bytes) + " requested");
  }
  const MemoryInfo mem = impl_->memory_info();
  if (bytes > mem.total) {
    throw Error(ErrorKind::InvalidArgument,
                "alloc_buffer: " + std::to_string(bytes) + " bytes requested but " + name() +
                    " has " + std::to_string(mem.total) + " bytes in total");
  }
  auto storage = std::make_shared<detail::Storage>();
  storage->backend = impl_;
  storage->bytes = bytes;
  storage->kind = kind;
  impl_->allocate(*storage);
  return Buffer(std::move(storage), 0, bytes, dtype, std::move(shape));
}

Buffer Device::alloc(DType dtype, Shape shape, MemoryKind kind) {
  const auto bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  return alloc_buffer(bytes, dtype, std::move(shape), kind);
}

Queue Device::default_queue() const { return Queue(impl_->default_queue()); }
Queue Device::new_queue() { return Queue(impl_->create_queue()); }
KernelRegistry& Device::kernels() const { return impl_->registry(); }
void Device::synchronize() { impl_->synchronize(); }

CommandEncoder Device::command_encoder() { return CommandEncoder(*this, default_queue()); }
CommandEncoder Device::command_encoder(Queue queue) {
  return CommandEncoder(*this, std::move(queue));
}
EncoderSession Device::encoder_session() { return EncoderSession(*this, default_queue()); }

Timeline::Timeline(Device& device) : impl_(device.backend_impl()->create_timeline()) {}

std::uint64_t Timeline::completed_value() const {
  if (!impl_) throw Error(ErrorKind::InvalidArgument, "Timeline: empty timeline");
  return impl_->completed_value();
}

void Timeline::host_wait(std::uint64_t value) const {
  if (!impl_) throw Error(ErrorKind::InvalidArgument, "Timeline: empty timeline");
  impl_->host_wait(value);
}

}  // namespace mlxn
