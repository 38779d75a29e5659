// Runtime overheads on each backend: per-dispatch encode cost, empty command buffer round trip,
// fence signal+wait pair, and a 300-kernel chain (one decode step's worth) direct vs graph replay.
// Arg 0 = CPU, 1 = CUDA (reported as skipped where no GPU exists).
#include <benchmark/benchmark.h>

#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/compute_graph.h"
#include "mlxn/core/device.h"
#include "mlxn/core/encoder_session.h"
#include "mlxn/ops/elementwise.h"

namespace {

using namespace mlxn;

bool open_backend(benchmark::State& state, Device& device) {
  const Backend b = state.range(0) == 0 ? Backend::Cpu : Backend::Cuda;
  if (b == Backend::Cuda && !Device::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return false;
  }
  device = Device::open(b);
  state.SetLabel(backend_name(b));
  return true;
}

// Host cost of recording one dispatch (validation, registry lookup, command copy).
void BM_DispatchEncode(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  Buffer a = device.alloc(DType::F32, {256}), b = device.alloc(DType::F32, {256});
  CommandEncoder enc = device.command_encoder();
  constexpr int kBatch = 256;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) ops::add(enc, a, b, a);
    state.PauseTiming();
    enc.discard();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_DispatchEncode)->Arg(0)->Arg(1)->UseRealTime();

// Submitting an empty command buffer and waiting for it.
void BM_EmptyCommandBufferRoundTrip(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  CommandEncoder enc = device.command_encoder();
  for (auto _ : state) enc.commit_and_wait();
}
BENCHMARK(BM_EmptyCommandBufferRoundTrip)->Arg(0)->Arg(1)->UseRealTime();

// One fence_stage + reset_for_next_stage pair (signal on the device, device-side wait), amortized
// over 64 pairs and one final host wait.
void BM_FenceSignalWaitPair(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  constexpr int kPairs = 64;
  for (auto _ : state) {
    EncoderSession s = device.encoder_session();
    for (int i = 0; i < kPairs; ++i) {
      s.fence_stage();
      s.reset_for_next_stage();
    }
    s.commit_and_wait();
  }
  state.SetItemsProcessed(state.iterations() * kPairs);
}
BENCHMARK(BM_FenceSignalWaitPair)->Arg(0)->Arg(1)->UseRealTime();

constexpr int kChain = 300;
constexpr std::int64_t kChainElems = 4096;

// 300 dependent small adds encoded and launched one by one, then one wait.
void BM_Chain300Direct(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  Buffer x = device.alloc(DType::F32, {kChainElems}), y = device.alloc(DType::F32, {kChainElems});
  CommandEncoder enc = device.command_encoder();
  for (auto _ : state) {
    for (int i = 0; i < kChain; ++i) ops::add(enc, x, y, x);
    enc.commit_and_wait();
  }
  state.SetItemsProcessed(state.iterations() * kChain);
}
BENCHMARK(BM_Chain300Direct)->Arg(0)->Arg(1)->UseRealTime();

// The same chain captured once into a ComputeGraph, instantiated (a CUDA graph on CUDA) and
// replayed as one command.
void BM_Chain300GraphReplay(benchmark::State& state) {
  Device device{nullptr};
  if (!open_backend(state, device)) return;
  Buffer x = device.alloc(DType::F32, {kChainElems}), y = device.alloc(DType::F32, {kChainElems});
  CommandEncoder enc = device.command_encoder();
  ComputeGraph graph;
  enc.begin_capture(graph);
  for (int i = 0; i < kChain; ++i) {
    if (i) enc.barrier();
    ops::add(enc, x, y, x);
  }
  enc.end_capture();
  GraphExec exec = graph.instantiate(device);
  for (auto _ : state) {
    enc.launch(exec);
    enc.commit_and_wait();
  }
  state.SetItemsProcessed(state.iterations() * kChain);
}
BENCHMARK(BM_Chain300GraphReplay)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
