// SafetensorsWriter: builds a valid safetensors file from named tensors and string metadata.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "mlxn/core/shape.h"
#include "mlxn/io/safetensors_dtype.h"

namespace mlxn::io {

/// Collects tensors (copied) and metadata, then writes them as one safetensors file: tensors in
/// the order they were added, packed back to back, with the JSON header padded with spaces so
/// that the data area starts 8-byte aligned.
class SafetensorsWriter {
 public:
  /// Adds a tensor. `data` holds shape-many elements of `dtype`, little-endian, row-major.
  /// Throws InvalidArgument for an empty or reserved ("__metadata__") or repeated name, a
  /// negative or overflowing shape, or a byte count that does not match the shape.
  void add(std::string name, TensorDType dtype, Shape shape, std::span<const std::byte> data);

  /// Adds a tensor from typed host values (float, uint16_t bits for F16/BF16, int32_t, ...).
  template <class T>
  void add(std::string name, TensorDType dtype, Shape shape, std::span<const T> values) {
    add(std::move(name), dtype, std::move(shape), std::as_bytes(values));
  }
  template <class T>
  void add(std::string name, TensorDType dtype, Shape shape, const std::vector<T>& values) {
    add(std::move(name), dtype, std::move(shape), std::span<const T>(values));
  }

  /// Sets one `__metadata__` entry (replacing an earlier value for the same key).
  void set_metadata(std::string key, std::string value);

  /// The complete file.
  std::vector<std::byte> to_bytes() const;

  /// Writes the file to `path` (through a temporary file renamed into place, so readers never
  /// see half a file); throws Error(Io) naming the path when writing fails.
  void write(const std::filesystem::path& path) const;

  std::size_t size() const { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    TensorDType dtype;
    Shape shape;
    std::vector<std::byte> data;
  };

  std::string header() const;

  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace mlxn::io
