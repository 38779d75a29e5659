// Buffer: reference-counted device storage with a dtype, shape and byte offset. Views share storage.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"

namespace mlxn {

namespace detail {
struct Storage;
}

enum class Backend;

/// A typed window onto device memory. Copies are cheap (the storage is shared); the storage is
/// freed when the last Buffer, view or in-flight command buffer that uses it lets go.
/// Host access (write/read) is not ordered with device work: wait for the work first.
class Buffer {
 public:
  Buffer() = default;

  bool valid() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  /// Byte offset of this view into its storage.
  std::size_t offset() const { return offset_; }
  /// Bytes this view covers.
  std::size_t size_bytes() const { return size_; }
  /// Elements of dtype() that fit in size_bytes().
  std::int64_t numel() const;
  Backend backend() const;

  /// Zero-copy view of `bytes` bytes starting `byte_offset` into this view; throws
  /// InvalidArgument when it would reach outside this view or the shape does not fit.
  Buffer view(std::size_t byte_offset, std::size_t bytes, DType dtype, Shape shape) const;
  /// Zero-copy view of elements [first, first + count) as a 1-D buffer of the same dtype.
  Buffer slice(std::int64_t first, std::int64_t count) const;
  /// Same bytes, new shape (element count must match).
  Buffer reshape(Shape shape) const;

  /// Copies host bytes into the view at `at` (synchronous).
  void write(const void* src, std::size_t bytes, std::size_t at = 0);
  /// Copies bytes of the view starting at `at` to the host (synchronous).
  void read(void* dst, std::size_t bytes, std::size_t at = 0) const;

  /// Writes a whole span of elements; the span's byte size must equal size_bytes().
  template <class T>
  void write(std::span<const T> values) {
    write_exact(values.data(), values.size_bytes());
  }
  template <class T>
  void write(const std::vector<T>& values) {
    write_exact(values.data(), values.size() * sizeof(T));
  }
  /// Reads the whole view as elements of T (size_bytes() must be a multiple of sizeof(T)).
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out(size_bytes() / sizeof(T));
    read_exact(out.data(), out.size() * sizeof(T));
    return out;
  }

  /// Host pointer to the first byte of the view, or nullptr where the memory is not host-visible
  /// (always visible on CPU; pinned-mapped allocations on CUDA).
  void* host_ptr() const;
  /// Backend address of the first byte (a device pointer on CUDA). For kernels and backends.
  void* raw_ptr() const;
  bool is_host_visible() const;
  /// True when both views use the same storage (they may still not overlap).
  bool same_storage(const Buffer& other) const { return storage_ == other.storage_; }
  /// Address of the start of the storage; with offset() and size_bytes() this gives a view's range.
  const void* storage_id() const { return storage_.get(); }
  /// How many Buffers and in-flight command buffers hold the storage.
  long use_count() const { return storage_.use_count(); }

  /// For backends: wraps storage. Not for general use.
  Buffer(std::shared_ptr<detail::Storage> storage, std::size_t offset, std::size_t bytes,
         DType dtype, Shape shape);
  const std::shared_ptr<detail::Storage>& storage() const { return storage_; }

 private:
  void write_exact(const void* src, std::size_t bytes);
  void read_exact(void* dst, std::size_t bytes) const;

  std::shared_ptr<detail::Storage> storage_;
  std::size_t offset_ = 0;
  std::size_t size_ = 0;
  DType dtype_ = DType::U8;
  Shape shape_;
};

}  // namespace mlxn
