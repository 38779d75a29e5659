// The few CUDA driver entry points mlxn needs, resolved at run time through the runtime.
// mlxn never links libcuda: binaries must start on machines without a GPU driver.
#pragma once

#include <cuda.h>  // driver API types only; no driver function is called by name
#include <cudaTypedefs.h>

namespace mlxn::cuda {

/// Driver functions; each is nullptr when the driver (or that entry point) is unavailable.
struct DriverApi {
  PFN_cuDeviceGet_v2000 device_get = nullptr;
  PFN_cuDeviceGetAttribute_v2000 device_get_attribute = nullptr;
  PFN_cuStreamWriteValue64_v11070 stream_write_value64 = nullptr;
  PFN_cuStreamWaitValue64_v11070 stream_wait_value64 = nullptr;
};

/// Resolved once per process (thread-safe); never throws.
const DriverApi& driver_api();

/// True when device `index` (a runtime ordinal) supports cuStreamWriteValue64 /
/// cuStreamWaitValue64; false when it does not or when anything in the query fails.
bool supports_stream_mem_ops64(int index) noexcept;

}  // namespace mlxn::cuda
