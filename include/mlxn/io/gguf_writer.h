// GgufWriter: builds valid GGUF v3 files (metadata of every type, aligned tensor data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "mlxn/io/ggml_types.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/gguf_value.h"

namespace mlxn::io {

/// Collects metadata and tensors, then serializes them as GGUF v3. Tensors are laid out in the
/// order added, each at an offset that is a multiple of the alignment, with zero padding.
class GgufWriter {
 public:
  /// Adds a metadata entry; throws InvalidArgument on a duplicate key, and on a
  /// `general.alignment` that is not a u32 power of two (it sets the file's alignment).
  void add(std::string key, GgufValue value);
  /// Adds a tensor. dims innermost first (as GGUF stores them); `data` must hold exactly the
  /// tensor's bytes. Throws InvalidArgument on a duplicate name, > 4 dims, a row length that is
  /// not a multiple of the block size, or a data size mismatch. The data is copied.
  void add_tensor(std::string name, GgmlType type, std::vector<std::uint64_t> dims,
                  std::span<const std::byte> data);

  /// Alignment in effect (32 unless `general.alignment` was added).
  std::uint32_t alignment() const { return alignment_; }
  /// The serialized file.
  std::vector<std::byte> to_bytes() const;
  /// Writes the serialized file to `path`; throws Io on failure.
  void write(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    GgufTensorInfo info;
    std::vector<std::byte> data;
  };

  std::uint32_t alignment_ = kGgufDefaultAlignment;
  std::vector<GgufKv> kvs_;
  std::map<std::string, std::size_t, std::less<>> keys_;
  std::vector<Tensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_names_;
};

}  // namespace mlxn::io
