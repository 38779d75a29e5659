// A process-wide pool of worker threads for data-parallel CPU kernels.
#pragma once

#include <cstdint>
#include <functional>

namespace mlxn::cpu {

/// Calls fn(begin, end) over [0, n) in chunks of at least `grain`, on the pool's threads and the
/// caller's. Returns when every chunk is done; rethrows the first exception a chunk threw.
/// Concurrent callers (several queues) are served one job at a time.
void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

/// Threads that parallel_for uses, the caller included.
int thread_count();

}  // namespace mlxn::cpu
