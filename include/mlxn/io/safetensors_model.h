// SafetensorsModel: the tensors of a model stored as one or more safetensors files (shards).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/io/safetensors.h"

namespace mlxn::io {

/// Name of the shard index that Hugging Face and mlx-lm write next to sharded weights.
inline constexpr std::string_view kSafetensorsIndexName = "model.safetensors.index.json";

/// Largest index file accepted (bytes); real ones are a few MB at most.
inline constexpr std::uintmax_t kMaxSafetensorsIndexBytes = 100ull << 20;

/// All tensors of a model across its safetensors files, each opened and validated lazily by
/// mapping (no tensor data is read). Opened from
///  - a `*.safetensors.index.json` file: its `weight_map` (tensor -> shard file name) decides
///    which shards are opened; every shard must exist, and every tensor it lists must be in
///    the shard it names;
///  - a directory: its `model.safetensors.index.json` when present, else every `*.safetensors`
///    file in it (for example a single model.safetensors);
///  - a single `.safetensors` file.
/// No tensor name may appear in two files. Errors: Error(Io) for missing or unreadable files,
/// Error(Format) for malformed ones, naming the index, shard and tensor involved.
class SafetensorsModel {
 public:
  /// Opens a file, a directory or an index, as described above.
  static SafetensorsModel open(const std::filesystem::path& path);

  SafetensorsModel(SafetensorsModel&&) noexcept = default;
  SafetensorsModel& operator=(SafetensorsModel&&) noexcept = default;
  SafetensorsModel(const SafetensorsModel&) = delete;
  SafetensorsModel& operator=(const SafetensorsModel&) = delete;

  /// All tensors: file by file (in index / file-name order), each file in data-offset order,
  /// so a pass over them reads each file front to back.
  std::span<const TensorView> tensors() const { return tensors_; }
  std::size_t size() const { return tensors_.size(); }
  /// The tensor called `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  /// The tensor called `name`; throws InvalidArgument naming the model when there is none.
  const TensorView& at(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  /// The file that holds `name`; throws InvalidArgument when there is no such tensor.
  const SafetensorsFile& file_of(std::string_view name) const;

  /// The opened files, in the order tensors() visits them.
  std::span<const SafetensorsFile> files() const { return files_; }
  /// The index that was used, or an empty path when there was none.
  const std::filesystem::path& index_path() const { return index_path_; }
  /// The path given to open().
  const std::filesystem::path& path() const { return path_; }
  /// Sum of the byte sizes of all tensors.
  std::uint64_t total_bytes() const { return total_bytes_; }

 private:
  SafetensorsModel() = default;
  void add_file(SafetensorsFile file);

  std::filesystem::path path_;
  std::filesystem::path index_path_;
  std::vector<SafetensorsFile> files_;
  std::vector<TensorView> tensors_;
  std::vector<std::size_t> file_of_tensor_;                // parallel to tensors_
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors_
  std::uint64_t total_bytes_ = 0;
};

}  // namespace mlxn::io
