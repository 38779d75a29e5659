// BufferPool: recycles device allocations in power-of-two buckets (an arena for activations).
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"

namespace mlxn {

/// Shape and dtype of one allocation in an alloc_batch request.
struct BufferSpec {
  DType dtype;
  Shape shape;
};

/// Allocations are rounded up to a power of two and reused after release() or reset().
/// Registered buffers (weights) are accounted for but never rounded or reused.
class BufferPool {
 public:
  explicit BufferPool(Device device, MemoryKind kind = MemoryKind::Device);

  /// A buffer of at least `bytes` (zero-filled only when freshly allocated from the device);
  /// throws InvalidArgument for zero bytes.
  Buffer alloc(std::size_t bytes, DType dtype, Shape shape);
  /// Exactly shape × dtype bytes, from the pool.
  Buffer alloc(DType dtype, Shape shape);
  std::vector<Buffer> alloc_batch(const std::vector<BufferSpec>& specs);
  /// Returns a buffer obtained from this pool to its bucket. Throws InvalidArgument for a buffer
  /// the pool did not hand out or already got back.
  void release(const Buffer& buffer);
  /// Arena reset: every outstanding pooled allocation goes back to the free lists. Buffers still
  /// held by callers must not be used afterwards (their memory will be handed out again).
  void reset();
  /// Tracks an existing buffer (weights): counted in registered_bytes(), never reused.
  void register_existing(const Buffer& buffer);
  /// Frees every idle allocation back to the device.
  void trim();

  std::size_t in_use_count() const;
  std::size_t free_count() const;
  std::size_t registered_count() const;
  /// Device bytes held by the pool (in use + free, rounded sizes).
  std::size_t pooled_bytes() const;
  std::size_t in_use_bytes() const;
  std::size_t registered_bytes() const;
  /// Bucket size a request of `bytes` gets.
  static std::size_t bucket_size(std::size_t bytes);

 private:
  Device device_;
  MemoryKind kind_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, Buffer> free_;     // bucket size -> idle whole allocation
  std::map<const void*, Buffer> in_use_;        // storage id -> whole allocation
  std::vector<Buffer> registered_;
};

}  // namespace mlxn
