// Matmul at Llama-3-8B shapes: M = 1 mat-vec (GB/s of weight bytes read; H100 streaming-read
// ceiling 3.04 TB/s, see docs/perf.md) and M = 512 prefill (TFLOP/s; bf16 GEMM ceiling ~795),
// for bf16, MLX affine 4/8-bit (group 64, bf16 scales), and GGML Q4_0, Q8_0, Q4_K, Q6_K.
// Args: backend (0 = CPU, 1 = CUDA), format, shape, m. CPU runs M = 1 only (the oracle is slow).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bench_loop.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "mlxn/io/ggml_types.h"
#include "mlxn/ops/ggml_matmul.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/quantized_matmul.h"

namespace {

using namespace mlxn;

struct WeightShape {
  std::int64_t k, n;  // in -> out
};
// q/o, k/v, gate/up, down, lm head.
constexpr WeightShape kShapes[] = {
    {4096, 4096}, {4096, 1024}, {4096, 14336}, {14336, 4096}, {4096, 128256}};

// kMlx4Tiles: MLX 4-bit in the DecodeTiles order (ops::QuantLayout), what the engine keeps on
// CUDA with bf16 activations.
enum Format { kBf16, kMlx4, kMlx8, kQ4_0, kQ8_0, kQ4_K, kQ6_K, kMlx4Tiles, kFormatCount };
const char* const kFormatNames[] = {"bf16", "mlx4g64", "mlx8g64", "q4_0",
                                    "q8_0", "q4_k",    "q6_k",    "mlx4g64-tiles"};

io::GgmlType ggml_type(int f) {
  switch (f) {
    case kQ4_0:
      return io::GgmlType::Q4_0;
    case kQ8_0:
      return io::GgmlType::Q8_0;
    case kQ4_K:
      return io::GgmlType::Q4_K;
    default:
      return io::GgmlType::Q6_K;
  }
}

// Weights are left zero-filled: the kernels' cost does not depend on the values. Times come from
// graph replays over several weight copies (bench_loop.h), so they are HBM-bound GPU times.
void BM_Matmul(benchmark::State& state) {
  const Backend backend = state.range(0) == 0 ? Backend::Cpu : Backend::Cuda;
  const int format = static_cast<int>(state.range(1));
  const WeightShape s = kShapes[state.range(2)];
  const std::int64_t m = state.range(3);
  if (backend == Backend::Cuda && !Device::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  Device device = Device::open(backend);
  state.SetLabel(std::string(backend_name(backend)) + " " + kFormatNames[format] + " k=" +
                 std::to_string(s.k) + " n=" + std::to_string(s.n) + " m=" + std::to_string(m));
  // One weight per copy: copies_to_defeat_l2 makes each replay read them all from HBM.
  struct Weight {
    Buffer dense;  // bf16 or GGML blocks
    ops::QuantizedWeight q;
  };
  std::int64_t weight_bytes = 0;
  if (format == kBf16) {
    weight_bytes = s.n * s.k * 2;
  } else if (format == kMlx4 || format == kMlx8 || format == kMlx4Tiles) {
    const int bits = format == kMlx8 ? 8 : 4;
    weight_bytes = s.n * s.k * bits / 8 + 2 * (s.n * (s.k / 64) * 2);
  } else {
    weight_bytes = s.n * static_cast<std::int64_t>(io::ggml_row_size(ggml_type(format), s.k));
  }
  const int copies = backend == Backend::Cuda
                         ? mlxn::bench::copies_to_defeat_l2(static_cast<double>(weight_bytes))
                         : 1;
  std::vector<Weight> weights(copies);
  for (Weight& w : weights) {
    if (format == kBf16) {
      w.dense = device.alloc(DType::BF16, {s.n, s.k});
    } else if (format == kMlx4 || format == kMlx8 || format == kMlx4Tiles) {
      w.q.bits = format == kMlx8 ? 8 : 4;
      // Zero codes are zero codes in either order: the tiled layout needs no tiling pass here.
      if (format == kMlx4Tiles) w.q.layout = ops::QuantLayout::DecodeTiles;
      w.q.group_size = 64;
      w.q.packed = device.alloc(DType::U32, {s.n, s.k * w.q.bits / 32});
      w.q.scales = device.alloc(DType::BF16, {s.n, s.k / 64});
      w.q.biases = device.alloc(DType::BF16, {s.n, s.k / 64});
    } else {
      const auto row = static_cast<std::int64_t>(io::ggml_row_size(ggml_type(format), s.k));
      w.dense = device.alloc(DType::U8, {s.n, row});
    }
  }
  Buffer x = device.alloc(DType::BF16, {m, s.k});
  Buffer out = device.alloc(DType::BF16, {m, s.n});
  // CUDA: at least 8 calls per replay, cycling through the copies.
  const int calls = backend == Backend::Cuda ? std::max(copies, 8) : 1;
  mlxn::bench::run_calls(state, device, calls, [&](CommandEncoder& enc, int i) {
    const Weight& w = weights[static_cast<std::size_t>(i % copies)];
    if (format == kBf16) {
      ops::matmul(enc, x, w.dense, out);
    } else if (format == kMlx4 || format == kMlx8 || format == kMlx4Tiles) {
      ops::quantized_matmul(enc, x, w.q, out);
    } else {
      ops::ggml_matmul(enc, x, w.dense, ggml_type(format), out);
    }
  });
  state.counters["copies"] = copies;
  if (m == 1) {
    state.counters["weight_bytes/s"] = benchmark::Counter(
        static_cast<double>(weight_bytes) * calls, benchmark::Counter::kIsIterationInvariantRate,
        benchmark::Counter::kIs1000);
  } else {
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * s.n * s.k) * calls,
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
  }
}

void matmul_args(benchmark::internal::Benchmark* b) {
  for (int backend : {0, 1}) {
    for (int f = 0; f < kFormatCount; ++f) {
      for (int shape = 0; shape < 5; ++shape) b->Args({backend, f, shape, 1});
    }
  }
  for (int f = 0; f < kFormatCount; ++f) {
    for (int shape = 0; shape < 5; ++shape) b->Args({1, f, shape, 512});
  }
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
