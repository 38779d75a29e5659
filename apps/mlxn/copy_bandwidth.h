// The copy bandwidth of a device, measured: what `mlxn bench` compares decode's weight reads
// with (issue 7: the limit is measured in the same run as the decode rate it bounds).
#pragma once

#include <optional>
#include <string>

#include "mlxn/core/device.h"

namespace mlxn::cli {

/// A measurement, or why there is none.
struct CopyBandwidth {
  std::optional<double> gbs;  // GB/s, bytes read plus bytes written
  std::string problem;        // when gbs is empty: e.g. no device memory left for the buffers
};

/// Times bf16-to-bf16 copies (ops::cast, 40 on CUDA, 3 on the CPU) between two buffers far larger
/// than a GPU's L2 (256 MiB each on CUDA, 32 MiB on the CPU), after one untimed copy; counts read +
/// write, as bench/pointwise_bench.cpp's BM_CopyCeiling does. The buffers are freed before it
/// returns.
CopyBandwidth measure_copy_bandwidth(Device& device);

}  // namespace mlxn::cli
