// Host-enqueued dispatches: kernels whose work is put on the stream by host code (a library call
// such as cuBLASLt, or several launches) rather than by one launch of a __global__ function.
//
// The extension is kept inside the existing ABI: such a kernel's ConfigureFn returns
// host_launch_config(fn), a LaunchConfig with an empty grid — which no real kernel may return —
// and `func` pointing at a HostEnqueueFn. The queue calls fn(args, stream) where it would launch;
// a graph captures fn on a private stream into a child graph node. The kernel registry, the
// encoder and Command are unchanged, so the op layer does not know which kind it dispatched.
#pragma once

#include <cuda_runtime.h>

#include "backends/cuda/kernel_abi.h"

namespace mlxn::cuda {

/// Enqueues the dispatch's work on `stream` (the current device is the stream's). It may be
/// called under stream capture (cudaStreamIsCapturing tells): then it must only enqueue work,
/// never synchronize. Throws mlxn::Error on failure.
using HostEnqueueFn = void (*)(const DeviceArgs& args, cudaStream_t stream);

/// What a host-enqueued kernel's ConfigureFn returns.
inline LaunchConfig host_launch_config(HostEnqueueFn fn) {
  return LaunchConfig{reinterpret_cast<const void*>(fn), dim3(0, 0, 0), dim3(0, 0, 0), 0};
}

/// True when `lc` names a HostEnqueueFn rather than a __global__ function.
inline bool is_host_launch(const LaunchConfig& lc) {
  return lc.grid.x == 0 && lc.block.x == 0;
}

inline HostEnqueueFn host_enqueue_of(const LaunchConfig& lc) {
  return reinterpret_cast<HostEnqueueFn>(const_cast<void*>(lc.func));
}

/// Runs fn(args, s) on a private stream under relaxed-mode capture and returns the captured
/// graph (the caller destroys it). Throws Error(CommandBuffer) naming `what` on failure.
cudaGraph_t capture_host_launch(HostEnqueueFn fn, const DeviceArgs& args, const char* what);

}  // namespace mlxn::cuda
