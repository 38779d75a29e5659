// CudaBackend: device memory, synchronous copies, queue/timeline/graph creation, device discovery.
#include "backends/cuda/cuda_backend.h"

#include <cstring>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_graph.h"
#include "backends/cuda/cuda_queue.h"
#include "backends/cuda/cuda_timeline.h"

namespace mlxn::cuda {
namespace {

std::string display_name(int index, const cudaDeviceProp& prop) {
  return "CUDA:" + std::to_string(index) + " " + prop.name;
}

}  // namespace

CudaBackend::CudaBackend(int index) : index_(index) {
  set_device();
  cudaDeviceProp prop{};
  MLXN_CUDA_CHECK(ErrorKind::DeviceNotFound, cudaGetDeviceProperties(&prop, index_));
  name_ = display_name(index_, prop);
  slots_ = std::make_shared<StatusSlots>(index_);
  registry_ = std::make_unique<KernelRegistry>(Backend::Cuda);
  register_cuda_kernels(*registry_);
  // Last, so that nothing after it can throw and leak it.
  MLXN_CUDA_CHECK(ErrorKind::DeviceNotFound,
                  cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
}

CudaBackend::~CudaBackend() {
  // Every storage holds the backend, so no allocation of ours is left; queues and timelines
  // own their streams and memory.
  ignore_cuda(cudaStreamDestroy(copy_stream_));
}

void CudaBackend::set_device() const {
  MLXN_CUDA_CHECK(ErrorKind::DeviceNotFound, cudaSetDevice(index_));
}

MemoryInfo CudaBackend::memory_info() const {
  set_device();
  std::size_t free = 0;
  std::size_t total = 0;
  MLXN_CUDA_CHECK(ErrorKind::CommandBuffer, cudaMemGetInfo(&free, &total));
  return MemoryInfo{total, free};
}

void CudaBackend::allocate(detail::Storage& s) {
  set_device();
  const auto fail = [&](cudaError_t err, const char* kind) {
    throw_cuda_error(ErrorKind::Allocation, err,
                     name_ + ": cannot allocate " + std::to_string(s.bytes) + " bytes of " + kind);
  };
  if (s.kind == MemoryKind::Device) {
    // Plain device memory (never managed: no page faults, no migrations).
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, s.bytes);
    if (err != cudaSuccess) fail(err, "device memory");
    // Zeroed on our own stream and waited for: a memset on the legacy stream would not be
    // ordered before kernels on the non-blocking queue streams.
    err = cudaMemsetAsync(ptr, 0, s.bytes, copy_stream_);
    if (err == cudaSuccess) err = cudaStreamSynchronize(copy_stream_);
    if (err != cudaSuccess) {
      ignore_cuda(cudaFree(ptr));
      fail(err, "device memory (zero fill)");
    }
    s.ptr = ptr;
    s.host = nullptr;
  } else {
    // Pinned and mapped: kernels reach it over the bus, the host through s.host.
    void* host = nullptr;
    cudaError_t err = cudaHostAlloc(&host, s.bytes, cudaHostAllocMapped);
    if (err != cudaSuccess) fail(err, "host-visible memory");
    std::memset(host, 0, s.bytes);
    void* dev = nullptr;
    err = cudaHostGetDevicePointer(&dev, host, 0);
    if (err != cudaSuccess) {
      ignore_cuda(cudaFreeHost(host));
      fail(err, "host-visible memory (device mapping)");
    }
    s.ptr = dev;
    s.host = host;
  }
}

void CudaBackend::deallocate(detail::Storage& s) noexcept {
  if (cudaSetDevice(index_) != cudaSuccess) cudaGetLastError();
  if (s.host != nullptr) {
    ignore_cuda(cudaFreeHost(s.host));
  } else if (s.ptr != nullptr) {
    ignore_cuda(cudaFree(s.ptr));
  }
  s.ptr = nullptr;
  s.host = nullptr;
}

void CudaBackend::copy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind,
                       const char* what) {
  // cudaMemcpy from pageable memory may return before the DMA has landed and runs on the legacy
  // stream; an async copy on our stream plus a stream sync is complete when we return.
  cudaError_t err = cudaMemcpyAsync(dst, src, n, kind, copy_stream_);
  if (err == cudaSuccess) err = cudaStreamSynchronize(copy_stream_);
  if (err != cudaSuccess) {
    throw_cuda_error(ErrorKind::CommandBuffer, err,
                     name_ + ": " + what + " of " + std::to_string(n) + " bytes");
  }
}

void CudaBackend::write(const detail::Storage& s, std::size_t offset, const void* src,
                        std::size_t n) {
  if (offset > s.bytes || n > s.bytes - offset) {
    throw Error(ErrorKind::InvalidArgument, name_ + ": write past the end of an allocation");
  }
  if (n == 0) return;
  if (s.host != nullptr) {
    std::memcpy(static_cast<char*>(s.host) + offset, src, n);
    return;
  }
  set_device();
  if (n >= StagingUploader::kMinBytes) {
    const cudaError_t err =
        uploader_.upload(static_cast<char*>(s.ptr) + offset, src, n, copy_stream_);
    if (err != cudaSuccess) {
      throw_cuda_error(ErrorKind::CommandBuffer, err,
                       name_ + ": staged write of " + std::to_string(n) + " bytes");
    }
    return;
  }
  copy(static_cast<char*>(s.ptr) + offset, src, n, cudaMemcpyHostToDevice, "write");
}

void CudaBackend::read(const detail::Storage& s, std::size_t offset, void* dst, std::size_t n) {
  if (offset > s.bytes || n > s.bytes - offset) {
    throw Error(ErrorKind::InvalidArgument, name_ + ": read past the end of an allocation");
  }
  if (n == 0) return;
  if (s.host != nullptr) {
    std::memcpy(dst, static_cast<const char*>(s.host) + offset, n);
    return;
  }
  set_device();
  copy(dst, static_cast<const char*>(s.ptr) + offset, n, cudaMemcpyDeviceToHost, "read");
}

std::shared_ptr<detail::QueueImpl> CudaBackend::create_queue() {
  return std::make_shared<CudaQueue>(index_, slots_);
}

std::shared_ptr<detail::TimelineImpl> CudaBackend::create_timeline() {
  return make_cuda_timeline(index_);
}

std::shared_ptr<detail::GraphExecImpl> CudaBackend::instantiate_graph(
    const std::vector<detail::Command>& commands) {
  return std::make_shared<CudaGraphExec>(index_, slots_, commands);
}

void CudaBackend::synchronize() {
  set_device();
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) throw_cuda_error(ErrorKind::CommandBuffer, err, name_ + ": synchronize");
}

}  // namespace mlxn::cuda

namespace mlxn::detail {
namespace {

// Device count, or 0 with the reason. Never throws: this build runs on machines without a GPU
// or a driver (cudart is static and loads the driver itself).
int device_count(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why != nullptr) *why = cudaGetErrorString(err);
    cudaGetLastError();
    return 0;
  }
  if (n == 0 && why != nullptr) *why = "no CUDA device";
  return n;
}

void check_index(int index) {
  std::string why;
  const int n = device_count(&why);
  if (index < 0 || index >= n) {
    throw Error(ErrorKind::DeviceNotFound, "CUDA device " + std::to_string(index) + " not found (" +
                                               std::to_string(n) + " available" +
                                               (why.empty() ? "" : ": " + why) + ")");
  }
}

}  // namespace

int cuda_device_count() {
  return device_count(nullptr);
}

std::shared_ptr<BackendImpl> open_cuda_backend(int index) {
  check_index(index);
  return std::make_shared<cuda::CudaBackend>(index);
}

DeviceInfo cuda_device_info(int index) {
  check_index(index);
  cudaDeviceProp prop{};
  cuda::check_cuda(cudaGetDeviceProperties(&prop, index), ErrorKind::DeviceNotFound,
                   "cudaGetDeviceProperties");
  DeviceInfo info{Backend::Cuda, index, cuda::display_name(index, prop), {prop.totalGlobalMem, 0}};
  // Free memory needs the device's context; leave the caller's current device as it was.
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) previous = index;
  std::size_t free = 0;
  std::size_t total = 0;
  if (cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess) {
    info.memory = MemoryInfo{total, free};
  }
  cudaGetLastError();
  if (cudaSetDevice(previous) != cudaSuccess) cudaGetLastError();
  return info;
}

}  // namespace mlxn::detail
