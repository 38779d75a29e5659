// measure_copy_bandwidth (copy_bandwidth.h).
#include "apps/mlxn/copy_bandwidth.h"

#include <chrono>
#include <cstdint>

#include "mlxn/core/error.h"
#include "mlxn/ops/elementwise.h"

namespace mlxn::cli {

CopyBandwidth measure_copy_bandwidth(Device& device) {
  const bool cuda = device.backend() == Backend::Cuda;
  // Past a GPU's L2 (50-60 MB on Hopper), so the copies stream from memory; the CPU backend's
  // copy is far slower, and a smaller buffer keeps its measurement short.
  const std::int64_t bytes = cuda ? std::int64_t{256} << 20 : std::int64_t{32} << 20;
  const int copies = cuda ? 40 : 3;
  CopyBandwidth out;
  try {
    Buffer a = device.alloc(DType::BF16, {bytes / 2});
    Buffer b = device.alloc(DType::BF16, {bytes / 2});
    {
      CommandEncoder warm = device.command_encoder();
      ops::cast(warm, a, b);
      warm.commit_and_wait();
    }
    // Timed from before the encoding: a backend may start each copy as it is encoded (the
    // encoding's few microseconds a copy then count too, ~1% of a 256 MiB copy on a GPU).
    const auto start = std::chrono::steady_clock::now();
    CommandEncoder enc = device.command_encoder();
    for (int i = 0; i < copies; ++i) ops::cast(enc, i % 2 ? b : a, i % 2 ? a : b);
    enc.commit_and_wait();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s > 0.0) out.gbs = 2.0 * static_cast<double>(bytes) * copies / s / 1e9;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Allocation) throw;
    out.problem = std::string("no device memory for two copy buffers: ") + e.what();
  }
  if (!out.gbs && out.problem.empty()) out.problem = "the copies took no measurable time";
  return out;
}

}  // namespace mlxn::cli
