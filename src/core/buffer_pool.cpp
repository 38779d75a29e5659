// BufferPool: power-of-two buckets over device allocations, with arena reset.
#include "mlxn/core/buffer_pool.h"

#include <bit>
#include <string>

#include "mlxn/core/error.h"

namespace mlxn {

BufferPool::BufferPool(Device device, MemoryKind kind) : device_(std::move(device)), kind_(kind) {}

std::size_t BufferPool::bucket_size(std::size_t bytes) {
  if (bytes <= 256) return 256;  // below this, rounding costs more in count than it saves
  return std::bit_ceil(bytes);
}

Buffer BufferPool::alloc(std::size_t bytes, DType dtype, Shape shape) {
  if (bytes == 0) {
    throw Error(ErrorKind::InvalidArgument,
                "BufferPool::alloc: zero bytes requested (shape " + shape_to_string(shape) + ")");
  }
  const auto need = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (need > bytes) {
    throw Error(ErrorKind::InvalidArgument, "BufferPool::alloc: shape " + shape_to_string(shape) +
                                                " needs " + std::to_string(need) +
                                                " bytes, more than the " + std::to_string(bytes) +
                                                " requested");
  }
  const std::size_t bucket = bucket_size(bytes);
  Buffer whole;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bucket);
    if (it != free_.end()) {
      whole = it->second;
      free_.erase(it);
    }
  }
  if (!whole.valid()) whole = device_.alloc_buffer(bucket, DType::U8, {static_cast<std::int64_t>(bucket)}, kind_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_.emplace(whole.storage_id(), whole);
  }
  return whole.view(0, bytes, dtype, std::move(shape));
}

Buffer BufferPool::alloc(DType dtype, Shape shape) {
  const auto bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  return alloc(bytes, dtype, std::move(shape));
}

std::vector<Buffer> BufferPool::alloc_batch(const std::vector<BufferSpec>& specs) {
  std::vector<Buffer> out;
  out.reserve(specs.size());
  for (const auto& s : specs) out.push_back(alloc(s.dtype, s.shape));
  return out;
}

void BufferPool::release(const Buffer& buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(buffer.storage_id());
  if (!buffer.valid() || it == in_use_.end()) {
    throw Error(ErrorKind::InvalidArgument,
                "BufferPool::release: buffer was not handed out by this pool or was already "
                "released");
  }
  free_.emplace(it->second.size_bytes(), it->second);
  in_use_.erase(it);
}

void BufferPool::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, whole] : in_use_) free_.emplace(whole.size_bytes(), whole);
  in_use_.clear();
}

void BufferPool::register_existing(const Buffer& buffer) {
  if (!buffer.valid()) {
    throw Error(ErrorKind::InvalidArgument, "BufferPool::register_existing: empty buffer");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  registered_.push_back(buffer);
}

void BufferPool::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.clear();
}

std::size_t BufferPool::in_use_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_.size();
}

std::size_t BufferPool::free_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return free_.size();
}

std::size_t BufferPool::registered_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return registered_.size();
}

std::size_t BufferPool::pooled_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& [b, whole] : free_) n += b;
  for (const auto& [id, whole] : in_use_) n += whole.size_bytes();
  return n;
}

std::size_t BufferPool::in_use_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& [id, whole] : in_use_) n += whole.size_bytes();
  return n;
}

std::size_t BufferPool::registered_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& b : registered_) n += b.size_bytes();
  return n;
}

}  // namespace mlxn
