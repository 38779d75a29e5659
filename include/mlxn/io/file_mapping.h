// FileMapping: a read-only memory map of a whole file, so loaders can hand out zero-copy views.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace mlxn::io {

/// Read-only, private memory map of an entire file. Move-only; unmaps on destruction.
/// An empty file maps to an empty span (mmap refuses zero lengths, so nothing is mapped).
class FileMapping {
 public:
  FileMapping() = default;
  /// Maps `path`; throws Error(Io) naming the path and the OS error when it cannot be opened,
  /// is not a regular file, or cannot be mapped.
  static FileMapping open(const std::filesystem::path& path);

  FileMapping(FileMapping&& other) noexcept;
  FileMapping& operator=(FileMapping&& other) noexcept;
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  ~FileMapping();

  /// The file's bytes; valid while this mapping lives (moving the mapping keeps the address).
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  /// Hints the kernel that [offset, offset + length) will be read soon (readahead); a no-op on
  /// empty mappings, and ranges are clamped to the file.
  void advise_will_need(std::size_t offset, std::size_t length) const;

 private:
  void reset() noexcept;

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace mlxn::io
