// KvCache: sizes and allocates the per-layer K/V buffers of one sequence; full layers hold the
// whole context, sliding layers a ring just large enough for a window plus one prefill chunk.
#include "mlxn/engine/kv_cache.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "mlxn/core/error.h"

namespace mlxn::engine {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, "KvCache: " + what);
}

// "123456 bytes (0.00 GiB)".
std::string bytes_text(double bytes) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.0f bytes (%.2f GiB)", bytes,
                bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

KvCache KvCache::create(Device& device, const io::ModelConfig& config,
                        const KvCacheOptions& options) {
  if (options.context < 1) fail("context must be >= 1, got " + std::to_string(options.context));
  if (options.max_chunk < 1) {
    fail("max_chunk must be >= 1, got " + std::to_string(options.max_chunk));
  }
  if (options.dtype != DType::F32 && options.dtype != DType::F16 && options.dtype != DType::BF16) {
    throw Error(ErrorKind::UnsupportedDType, "KvCache: dtype " +
                                                 std::string(dtype_name(options.dtype)) +
                                                 " (expected f32, f16 or bf16)");
  }
  if (static_cast<std::int64_t>(config.layer_types.size()) != config.n_layers) {
    fail("config has " + std::to_string(config.layer_types.size()) + " layer types for " +
         std::to_string(config.n_layers) + " layers");
  }

  KvCache cache;
  cache.options_ = options;
  cache.layers_.resize(static_cast<std::size_t>(config.n_layers));
  // Size everything first (in double, so an absurd context cannot overflow) and compare with the
  // free memory before allocating anything.
  const double row_bytes = static_cast<double>(config.n_kv_heads) *
                           static_cast<double>(config.head_dim) *
                           static_cast<double>(dtype_size(options.dtype));
  double total = 0.0;
  for (std::int64_t i = 0; i < config.n_layers; ++i) {
    LayerCache& l = cache.layers_[static_cast<std::size_t>(i)];
    if (config.layer_type(i) == io::AttentionKind::Sliding && config.sliding_window) {
      // A chunk of max_chunk queries starting at p needs keys from p - window + 1 while its own
      // last key lands at p + max_chunk - 1: window + max_chunk - 1 slots keep all of them.
      l.capacity = std::min(options.context, *config.sliding_window + options.max_chunk - 1);
      l.ring = true;
    } else {
      l.capacity = options.context;
    }
    total += 2.0 * row_bytes * static_cast<double>(l.capacity);
  }
  const MemoryInfo mem = device.memory_info();
  if (total > static_cast<double>(mem.free)) {
    fail("the cache for context " + std::to_string(options.context) + " (" +
         std::to_string(config.n_layers) + " layers, " + std::string(dtype_name(options.dtype)) +
         ") needs " + bytes_text(total) + " but " + device.name() + " has " +
         bytes_text(static_cast<double>(mem.free)) + " free; lower the context");
  }
  for (LayerCache& l : cache.layers_) {
    const Shape shape{config.n_kv_heads, l.capacity, config.head_dim};
    l.k = device.alloc(options.dtype, shape);
    l.v = device.alloc(options.dtype, shape);
    cache.bytes_ += static_cast<std::int64_t>(l.k.size_bytes() + l.v.size_bytes());
  }
  return cache;
}

}  // namespace mlxn::engine
