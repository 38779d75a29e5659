// Buffer views, bounds checks and host access.
#include "mlxn/core/buffer.h"

#include <cstring>
#include <string>

#include "core/backend.h"
#include "mlxn/core/error.h"

namespace mlxn {
namespace {

void require_valid(const Buffer& b, const char* what) {
  if (!b.valid()) throw Error(ErrorKind::InvalidArgument, std::string(what) + ": empty buffer");
}

void check_range(std::size_t at, std::size_t bytes, std::size_t size, const char* what) {
  if (at > size || bytes > size - at) {
    throw Error(ErrorKind::InvalidArgument,
                std::string(what) + ": " + std::to_string(bytes) + " bytes at offset " +
                    std::to_string(at) + " reach outside a buffer view of " +
                    std::to_string(size) + " bytes");
  }
}

}  // namespace

namespace detail {
Storage::~Storage() {
  if (backend && ptr) backend->deallocate(*this);
}
}  // namespace detail

Buffer::Buffer(std::shared_ptr<detail::Storage> storage, std::size_t offset, std::size_t bytes,
               DType dtype, Shape shape)
    : storage_(std::move(storage)),
      offset_(offset),
      size_(bytes),
      dtype_(dtype),
      shape_(std::move(shape)) {}

std::int64_t Buffer::numel() const {
  return static_cast<std::int64_t>(size_ / dtype_size(dtype_));
}

Backend Buffer::backend() const {
  require_valid(*this, "Buffer::backend");
  return storage_->backend->kind();
}

Buffer Buffer::view(std::size_t byte_offset, std::size_t bytes, DType dtype, Shape shape) const {
  require_valid(*this, "Buffer::view");
  check_range(byte_offset, bytes, size_, "Buffer::view");
  const auto need = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (need > bytes) {
    throw Error(ErrorKind::InvalidArgument,
                "Buffer::view: shape " + shape_to_string(shape) + " of " +
                    std::string(dtype_name(dtype)) + " needs " + std::to_string(need) +
                    " bytes but the view has " + std::to_string(bytes));
  }
  return Buffer(storage_, offset_ + byte_offset, bytes, dtype, std::move(shape));
}

Buffer Buffer::slice(std::int64_t first, std::int64_t count) const {
  require_valid(*this, "Buffer::slice");
  const auto es = static_cast<std::int64_t>(dtype_size(dtype_));
  if (first < 0 || count < 0 || first > numel() || count > numel() - first) {
    throw Error(ErrorKind::InvalidArgument,
                "Buffer::slice: elements [" + std::to_string(first) + ", " +
                    std::to_string(first + count) + ") outside a view of " +
                    std::to_string(numel()) + " elements");
  }
  return view(static_cast<std::size_t>(first * es), static_cast<std::size_t>(count * es), dtype_,
              {count});
}

Buffer Buffer::reshape(Shape shape) const {
  require_valid(*this, "Buffer::reshape");
  if (shape_numel(shape) != shape_numel(shape_)) {
    throw Error(ErrorKind::InvalidArgument, "Buffer::reshape: " + shape_to_string(shape_) +
                                                " cannot become " + shape_to_string(shape));
  }
  return Buffer(storage_, offset_, size_, dtype_, std::move(shape));
}

void Buffer::write(const void* src, std::size_t bytes, std::size_t at) {
  require_valid(*this, "Buffer::write");
  check_range(at, bytes, size_, "Buffer::write");
  if (bytes == 0) return;
  if (storage_->host) {
    std::memcpy(static_cast<char*>(storage_->host) + offset_ + at, src, bytes);
  } else {
    storage_->backend->write(*storage_, offset_ + at, src, bytes);
  }
}

void Buffer::read(void* dst, std::size_t bytes, std::size_t at) const {
  require_valid(*this, "Buffer::read");
  check_range(at, bytes, size_, "Buffer::read");
  if (bytes == 0) return;
  if (storage_->host) {
    std::memcpy(dst, static_cast<const char*>(storage_->host) + offset_ + at, bytes);
  } else {
    storage_->backend->read(*storage_, offset_ + at, dst, bytes);
  }
}

void Buffer::write_exact(const void* src, std::size_t bytes) {
  if (bytes != size_) {
    throw Error(ErrorKind::InvalidArgument, "Buffer::write: " + std::to_string(bytes) +
                                                " bytes given for a view of " +
                                                std::to_string(size_) + " bytes");
  }
  write(src, bytes, 0);
}

void Buffer::read_exact(void* dst, std::size_t bytes) const { read(dst, bytes, 0); }

void* Buffer::host_ptr() const {
  if (!storage_ || !storage_->host) return nullptr;
  return static_cast<char*>(storage_->host) + offset_;
}

void* Buffer::raw_ptr() const {
  if (!storage_) return nullptr;
  return static_cast<char*>(storage_->ptr) + offset_;
}

bool Buffer::is_host_visible() const { return storage_ && storage_->host != nullptr; }

}  // namespace mlxn
