// `mlxn version`: the version and the backends compiled in.
#include <cstdio>

#include "apps/mlxn/commands.h"

namespace mlxn::cli {

int cmd_version(const Args& args) {
  if (wants_help(args)) {
    std::puts("usage: mlxn version\n\nPrints the mlxn version and the backends this build has.");
    return 0;
  }
#ifdef MLXN_WITH_CUDA
  const char* backends = "cpu, cuda";
#else
  const char* backends = "cpu";
#endif
  std::printf("mlxn %s (backends: %s)\n", MLXN_VERSION, backends);
  return 0;
}

}  // namespace mlxn::cli
