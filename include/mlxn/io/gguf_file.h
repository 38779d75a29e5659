// GgufFile: a validated, memory-mapped GGUF (v2/v3) file: metadata, tensor infos, tensor views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/shape.h"
#include "mlxn/io/file_mapping.h"
#include "mlxn/io/ggml_types.h"
#include "mlxn/io/gguf_value.h"

namespace mlxn::io {

/// GGML's limit on tensor dimensions; GGUF files never hold more.
inline constexpr std::uint32_t kGgmlMaxDims = 4;
/// Alignment of the data section and of tensor offsets when `general.alignment` is absent.
inline constexpr std::uint32_t kGgufDefaultAlignment = 32;
/// Deepest nesting of arrays inside arrays the parser accepts (a top-level array is level 1).
inline constexpr int kGgufMaxArrayDepth = 8;

/// One metadata entry, in file order.
struct GgufKv {
  std::string key;
  GgufValue value;
};

/// One tensor's header. Sizes are validated: n_elements and n_bytes fit in int64.
struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // innermost first, as stored: dims[0] is the row length
  GgmlType type = GgmlType::F32;
  std::uint64_t offset = 0;      // relative to the start of the data section
  std::uint64_t n_elements = 0;  // product of dims (1 for zero dims)
  std::uint64_t n_bytes = 0;     // bytes of data: n_elements / block_size * type_size

  /// The dimensions outermost first (row-major, mlxn's convention): dims reversed.
  Shape shape() const;
};

/// A parsed GGUF file. Every structural rule is checked at open, so views handed out later are
/// in bounds. Errors are Error(Format) naming the file (v1 and big-endian files: Unsupported).
class GgufFile {
 public:
  /// Maps and parses `path`; Io errors for unreadable files, Format for malformed ones.
  static GgufFile open(const std::filesystem::path& path);
  /// Parses an in-memory copy of a file; `name` stands for the file in messages.
  static GgufFile from_bytes(std::string name, std::vector<std::byte> bytes);
  /// Parses bytes the caller keeps alive for the GgufFile's lifetime (no copy; for fuzzing).
  static GgufFile from_span(std::string name, std::span<const std::byte> bytes);

  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;

  /// The path or name given at open, as used in messages.
  const std::string& name() const { return name_; }
  /// Format version (2 or 3).
  std::uint32_t version() const { return version_; }
  /// Data alignment from `general.alignment` (default 32).
  std::uint32_t alignment() const { return alignment_; }
  /// Absolute byte offset of the data section (tensor offsets are relative to it).
  std::uint64_t data_offset() const { return data_offset_; }
  /// The whole file.
  std::span<const std::byte> bytes() const { return bytes_; }

  /// Metadata entries in file order.
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  /// The value of `key`, or nullptr.
  const GgufValue* find(std::string_view key) const;
  /// True when `key` is present.
  bool has(std::string_view key) const { return find(key) != nullptr; }
  /// The value of `key`; throws Format "<file>: missing metadata key 'k'".
  const GgufValue& at(std::string_view key) const;
  /// The value of `key` as exactly T; throws Format naming the file and key on absence/mismatch.
  template <class T>
  const T& get(std::string_view key) const {
    return at(key).as<T>(key_context(key));
  }
  /// "<file>: key 'k'" — the context string accessors put in their messages.
  std::string key_context(std::string_view key) const;

  /// Tensor headers in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  /// The tensor named `name`, or nullptr.
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  /// The tensor named `name`; throws Format "<file>: no tensor 'x'".
  const GgufTensorInfo& tensor(std::string_view name) const;
  /// Absolute file offset of a tensor's first byte.
  std::uint64_t tensor_file_offset(const GgufTensorInfo& info) const {
    return data_offset_ + info.offset;
  }
  /// Zero-copy view of a tensor's bytes; throws InvalidArgument when `info` does not fit this
  /// file (e.g. it belongs to another one).
  std::span<const std::byte> tensor_data(const GgufTensorInfo& info) const;
  /// Zero-copy view of the named tensor's bytes.
  std::span<const std::byte> tensor_data(std::string_view name) const {
    return tensor_data(tensor(name));
  }

 private:
  GgufFile() = default;
  void parse();

  std::string name_;
  FileMapping mapping_;           // set by open()
  std::vector<std::byte> owned_;  // set by from_bytes()
  std::span<const std::byte> bytes_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kGgufDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::map<std::string, std::size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace mlxn::io
