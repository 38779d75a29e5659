// launch_kernel: programmatic dependent launch where the kernel and the device allow it.
#include "backends/cuda/kernel_launch.h"

#include <array>
#include <atomic>

namespace mlxn::cuda {

namespace {

// Whether `device` supports programmatic dependent launch (sm_90+), asked once per device.
bool supports_pdl(int device) {
  static std::array<std::atomic<int>, 64> known{};  // 0 unknown, 1 no, 2 yes
  if (device < 0 || device >= static_cast<int>(known.size())) return false;
  int state = known[static_cast<std::size_t>(device)].load(std::memory_order_relaxed);
  if (state == 0) {
    int major = 0;
    const bool ok =
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess;
    state = ok && major >= 9 ? 2 : 1;
    known[static_cast<std::size_t>(device)].store(state, std::memory_order_relaxed);
  }
  return state == 2;
}

}  // namespace

cudaError_t launch_kernel(const LaunchConfig& lc, void** kernel_args, cudaStream_t stream,
                          int device) {
  if (!lc.pdl || !supports_pdl(device)) {
    return cudaLaunchKernel(lc.func, lc.grid, lc.block, kernel_args, lc.smem, stream);
  }
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = lc.grid;
  config.blockDim = lc.block;
  config.dynamicSmemBytes = lc.smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  return cudaLaunchKernelExC(&config, lc.func, kernel_args);
}

}  // namespace mlxn::cuda
