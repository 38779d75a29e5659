// Model-loading speed: a file already in the page cache, memory-mapped, uploaded to a device
// buffer with Buffer::write (what the loaders do). Arg 0 = CPU, 1 = CUDA; second arg = GiB.
// The file is written once per size into $TMPDIR (or /tmp), so it sits in the page cache.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mlxn/core/device.h"
#include "mlxn/io/file_mapping.h"

namespace {

using namespace mlxn;

std::filesystem::path page_cached_file(std::size_t bytes) {
  const char* tmp = std::getenv("TMPDIR");
  auto path = std::filesystem::path(tmp ? tmp : "/tmp") /
              ("mlxn_upload_bench_" + std::to_string(bytes >> 20) + "MiB.bin");
  if (std::filesystem::exists(path) && std::filesystem::file_size(path) == bytes) return path;
  std::ofstream f(path, std::ios::binary);
  std::vector<char> block(64u << 20);
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + 7);
  for (std::size_t done = 0; done < bytes; done += block.size()) {
    f.write(block.data(), static_cast<std::streamsize>(std::min(block.size(), bytes - done)));
  }
  return path;
}

void BM_UploadFromPageCache(benchmark::State& state) {
  const Backend b = state.range(0) == 0 ? Backend::Cpu : Backend::Cuda;
  if (b == Backend::Cuda && !Device::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const std::size_t bytes = static_cast<std::size_t>(state.range(1)) << 30;
  Device device = Device::open(b);
  const auto path = page_cached_file(bytes);
  Buffer dst = device.alloc_buffer(bytes, DType::U8, {static_cast<std::int64_t>(bytes)});
  {
    // Warm the page cache with one full read so every iteration measures the same state.
    io::FileMapping warm = io::FileMapping::open(path);
    dst.write(warm.data(), bytes);
  }
  for (auto _ : state) {
    // A fresh mapping per iteration: the loader maps the file, then uploads it once.
    io::FileMapping m = io::FileMapping::open(path);
    dst.write(m.data(), bytes);
  }
  state.SetLabel(backend_name(b));
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_UploadFromPageCache)
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({1, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
