// SafetensorsFile: a validated, memory-mapped safetensors file with zero-copy tensor views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/io/file_mapping.h"
#include "mlxn/io/safetensors_dtype.h"
#include "mlxn/io/safetensors_tensor.h"

namespace mlxn::io {

/// Largest JSON header accepted (bytes). Real headers are well under 10 MB even for thousands
/// of tensors; the cap bounds parse time and memory for hostile files.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

/// Most dimensions a tensor may declare.
inline constexpr std::size_t kMaxSafetensorsRank = 32;

/// A safetensors file: 8-byte little-endian header length N, N bytes of JSON header, then the
/// data area. Opening validates everything (header length, UTF-8 JSON object, dtypes, shapes,
/// offsets inside the data area without overlaps, byte sizes, unique names, string metadata)
/// and throws Error(Format) naming the file and tensor on the first problem, or Error(Io) when
/// the file cannot be read. Tensors are views into the mapping: nothing is copied.
/// Move-only; views stay valid across moves and until the file is destroyed.
class SafetensorsFile {
 public:
  /// Maps and validates the file at `path`.
  static SafetensorsFile open(const std::filesystem::path& path);

  /// Validates a copy of `bytes` (the whole file) kept by the returned object; `name` is used in
  /// error messages in place of a path. For fuzzing and for data that is not on disk.
  static SafetensorsFile from_bytes(std::string name, std::span<const std::byte> bytes);

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  /// The path given to open(), or the name given to from_bytes().
  const std::string& name() const { return name_; }
  /// The path given to open(); empty for from_bytes().
  const std::filesystem::path& path() const { return mapping_.path(); }

  /// All tensors in data-offset order (the order of the bytes in the file).
  std::span<const TensorView> tensors() const { return tensors_; }
  std::size_t size() const { return tensors_.size(); }
  /// The tensor called `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  /// The tensor called `name`; throws InvalidArgument naming the file when there is none.
  const TensorView& at(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  /// The `__metadata__` entries (empty when the header has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The whole file.
  std::span<const std::byte> bytes() const { return bytes_; }
  /// Where the data area starts (8 + header length); tensor offsets count from here.
  std::size_t data_offset() const { return data_offset_; }
  /// Sum of the tensors' byte sizes.
  std::uint64_t tensor_bytes() const { return tensor_bytes_; }

  /// Hints the OS to read the whole data area ahead (before a bulk upload).
  void prefetch() const;

 private:
  SafetensorsFile() = default;
  void parse();

  std::string name_;
  FileMapping mapping_;               // for open()
  std::vector<std::byte> owned_;      // for from_bytes()
  std::span<const std::byte> bytes_;  // one of the two above
  std::size_t data_offset_ = 0;
  std::uint64_t tensor_bytes_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

}  // namespace mlxn::io
