// `mlxn devices`: every device this build can open, with its memory.
#include <cstdio>

#include "apps/mlxn/commands.h"
#include "mlxn/core/device.h"

namespace mlxn::cli {

int cmd_devices(const Args& args) {
  if (wants_help(args)) {
    std::puts("usage: mlxn devices\n\nLists the devices mlxn can use (backend, index, name, "
              "memory).");
    return 0;
  }
  for (const DeviceInfo& d : Device::list()) {
    std::printf("%-5s %d  %-40s  %.1f GiB total, %.1f GiB free\n", backend_name(d.backend),
                d.index, d.name.c_str(), static_cast<double>(d.memory.total) / (1ull << 30),
                static_cast<double>(d.memory.free) / (1ull << 30));
  }
#ifndef MLXN_WITH_CUDA
  std::puts("(this build has no CUDA backend)");
#else
  if (!Device::cuda_available()) std::puts("(no usable CUDA device found)");
#endif
  return 0;
}

}  // namespace mlxn::cli
