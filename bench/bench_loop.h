// How the op benchmarks time GPU work. Two effects would otherwise distort the numbers:
//  - Launch cost: a direct launch costs the host ~4 us on the benchmark machine, longer than many
//    decode-size kernels run. On CUDA the calls are therefore captured once into a ComputeGraph
//    (one barrier between calls, so they run back to back as in a model step) and replayed: the
//    time is the GPU's, with the ~1 us per-node cost a real replayed decode step also pays.
//  - L2 residency: the H100 keeps 50 MB in L2, so re-reading one 34 MB weight would measure the
//    cache, not HBM. Callers rotate over enough copies that the bytes touched per replay exceed
//    the L2 several times over (copies_to_defeat_l2).
// On the CPU the calls are encoded directly and waited for once.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/compute_graph.h"
#include "mlxn/core/device.h"

namespace mlxn::bench {

/// Copies of a `bytes`-sized working set so that one pass over all of them touches >= 256 MB
/// (five times the H100's L2), at most 64.
inline int copies_to_defeat_l2(double bytes) {
  const double target = 256.0 * 1024 * 1024;
  return static_cast<int>(std::clamp(target / std::max(bytes, 1.0), 1.0, 64.0) + 0.999);
}

/// Seconds per op call, as counter "s/call" (tools/bench_table.py reads it).
inline void set_time_per_call(benchmark::State& state, int calls) {
  state.counters["s/call"] =
      benchmark::Counter(static_cast<double>(calls), benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

/// Runs encode(encoder, i) for i in [0, calls) per benchmark iteration (replayed as one graph on
/// CUDA) and sets "s/call". Returns `calls` so the caller can scale its counters.
template <class Encode>
int run_calls(benchmark::State& state, Device& device, int calls, Encode encode) {
  set_time_per_call(state, calls);
  CommandEncoder enc = device.command_encoder();
  if (device.backend() != Backend::Cuda) {
    encode(enc, 0);  // kernel lookup and lazy initialization
    enc.commit_and_wait();
    for (auto _ : state) {
      for (int i = 0; i < calls; ++i) encode(enc, i);
      enc.commit_and_wait();
    }
    return calls;
  }
  for (int i = 0; i < calls; ++i) encode(enc, i);  // warm-up: kernel creation, cuBLASLt plans
  enc.commit_and_wait();
  ComputeGraph graph;
  enc.begin_capture(graph);
  for (int i = 0; i < calls; ++i) {
    if (i) enc.barrier();
    encode(enc, i);
  }
  enc.end_capture();
  GraphExec exec = graph.instantiate(device);
  enc.launch(exec);
  enc.commit_and_wait();
  for (auto _ : state) {
    enc.launch(exec);
    enc.commit_and_wait();
  }
  return calls;
}

}  // namespace mlxn::bench
