// KvCache: the per-layer key/value buffers of one sequence, sized from the requested context,
// with ring buffers for sliding-window layers.
#pragma once

#include <cstdint>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/io/model_config.h"

namespace mlxn::engine {

struct KvCacheOptions {
  std::int64_t context = 4096;   // most positions one sequence may reach
  std::int64_t max_chunk = 512;  // most tokens one forward call appends (prefill chunk)
  DType dtype = DType::F32;      // f32, f16 or bf16
};

/// Cache of one layer: k, v: [n_kv_heads, capacity, head_dim] (see ops/kv_cache.h).
struct LayerCache {
  Buffer k;
  Buffer v;
  std::int64_t capacity = 0;
  bool ring = false;  // sliding-window layer: slot = position % capacity
};

class KvCache {
 public:
  /// Full layers get `context` slots; sliding layers min(context, window + max_chunk - 1) slots
  /// in ring mode. Throws InvalidArgument, naming the bytes needed and the bytes free, when the
  /// cache does not fit in the device's free memory.
  static KvCache create(Device& device, const io::ModelConfig& config,
                        const KvCacheOptions& options);

  const LayerCache& layer(std::int64_t i) const { return layers_.at(static_cast<std::size_t>(i)); }
  std::int64_t n_layers() const { return static_cast<std::int64_t>(layers_.size()); }
  const KvCacheOptions& options() const { return options_; }
  /// Positions written so far (the next token goes at this position).
  std::int64_t length() const { return length_; }
  void set_length(std::int64_t length) { length_ = length; }
  /// Forgets the sequence (the buffers are reused; stale rows are never read).
  void reset() { length_ = 0; }
  std::int64_t bytes() const { return bytes_; }

 private:
  std::vector<LayerCache> layers_;
  KvCacheOptions options_;
  std::int64_t length_ = 0;
  std::int64_t bytes_ = 0;
};

}  // namespace mlxn::engine
