// Stand-ins for the CUDA backend entry points in builds without CUDA: no devices, clear errors.
#include "core/backend.h"
#include "mlxn/core/error.h"

namespace mlxn::detail {

std::shared_ptr<BackendImpl> open_cuda_backend(int) {
  throw Error(ErrorKind::DeviceNotFound,
              "this build of mlxn has no CUDA backend (configure with -DMLXN_CUDA=ON where nvcc "
              "is installed)");
}

int cuda_device_count() { return 0; }

DeviceInfo cuda_device_info(int index) {
  throw Error(ErrorKind::DeviceNotFound,
              "no CUDA device " + std::to_string(index) + ": built without CUDA");
}

}  // namespace mlxn::detail
