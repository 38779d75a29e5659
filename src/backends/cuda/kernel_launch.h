// Launching one configured kernel on a stream: plainly, or as a programmatic dependent of the
// previous kernel of the stream when its LaunchConfig allows it (LaunchConfig::pdl).
#pragma once

#include <cuda_runtime.h>

#include "backends/cuda/kernel_abi.h"

namespace mlxn::cuda {

/// Launches lc.func(*kernel_args) on `stream` (a stream of `device`). With lc.pdl on a device of
/// compute capability 9.0 or newer, the launch carries the programmatic stream serialization
/// attribute: the kernel may start before the previous kernel of the stream finishes, and its
/// own pdl_wait() keeps it ordered. Returns the launch's error.
cudaError_t launch_kernel(const LaunchConfig& lc, void** kernel_args, cudaStream_t stream,
                          int device);

}  // namespace mlxn::cuda
