// Resolves the CUDA driver entry points used by the timeline (stream memory operations).
#include "backends/cuda/cuda_driver.h"

#include <cuda_runtime.h>

namespace mlxn::cuda {
namespace {

// The ABI version we ask for: 12.0 gives the 64-bit, non-deprecated (_v2) stream memory ops.
constexpr unsigned int kDriverAbiVersion = 12000;

template <class Fn>
Fn resolve(const char* symbol) noexcept {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t err =
      cudaGetDriverEntryPointByVersion(symbol, &fn, kDriverAbiVersion, cudaEnableDefault, &found);
  if (err != cudaSuccess || found != cudaDriverEntryPointSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return reinterpret_cast<Fn>(fn);
}

DriverApi load() noexcept {
  DriverApi api;
  api.device_get = resolve<PFN_cuDeviceGet_v2000>("cuDeviceGet");
  api.device_get_attribute = resolve<PFN_cuDeviceGetAttribute_v2000>("cuDeviceGetAttribute");
  api.stream_write_value64 = resolve<PFN_cuStreamWriteValue64_v11070>("cuStreamWriteValue64");
  api.stream_wait_value64 = resolve<PFN_cuStreamWaitValue64_v11070>("cuStreamWaitValue64");
  return api;
}

}  // namespace

const DriverApi& driver_api() {
  static const DriverApi api = load();
  return api;
}

bool supports_stream_mem_ops64(int index) noexcept {
  const DriverApi& api = driver_api();
  if (!api.device_get || !api.device_get_attribute || !api.stream_write_value64 ||
      !api.stream_wait_value64) {
    return false;
  }
  CUdevice dev = 0;
  if (api.device_get(&dev, index) != CUDA_SUCCESS) return false;
  int supported = 0;
  if (api.device_get_attribute(&supported, CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS,
                               dev) != CUDA_SUCCESS) {
    return false;
  }
  return supported != 0;
}

}  // namespace mlxn::cuda
