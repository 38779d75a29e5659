// SafetensorsModel: opens a single file, a directory of shards, or a shard index, and checks that
// the index and the shards agree.
#include "mlxn/io/safetensors_model.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "mlxn/core/error.h"
#include "safetensors_json.h"

namespace mlxn::io {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A shard name from an index must be a plain file name next to the index: a hostile index must
// not reach other directories ("../../etc/passwd", "/dev/zero").
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\\\0", 3)) == std::string::npos;
}

// tensor names per shard file name, both sorted.
using WeightMap = std::map<std::string, std::vector<std::string>>;

WeightMap read_weight_map(const fs::path& index) {
  const std::string origin = index.string();
  const FileMapping mapping = FileMapping::open(index);
  if (mapping.size() > kMaxSafetensorsIndexBytes) {
    throw Error(ErrorKind::Format, origin + ": index is " + std::to_string(mapping.size()) +
                                       " bytes, over the limit of " +
                                       std::to_string(kMaxSafetensorsIndexBytes));
  }
  const std::string_view text(reinterpret_cast<const char*>(mapping.data()), mapping.size());
  const nlohmann::json json = detail::parse_json_strict(text, origin, "index");
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::Format, origin + ": " + what);
  };
  if (!json.is_object()) fail("index is not a JSON object");
  const auto it = json.find("weight_map");
  if (it == json.end()) fail("index has no \"weight_map\"");
  if (!it->is_object()) fail("\"weight_map\" is not a JSON object");
  if (it->empty()) fail("\"weight_map\" lists no tensors");
  WeightMap shards;
  for (const auto& [tensor, shard] : it->items()) {
    if (!shard.is_string()) {
      fail("\"weight_map\" entry for tensor " + detail::quote_name(tensor) + " is not a string");
    }
    const auto& file = shard.get_ref<const std::string&>();
    if (!is_plain_file_name(file)) {
      fail("tensor " + detail::quote_name(tensor) + " names shard " + detail::quote_name(file) +
           ", which is not a file name in the index's directory");
    }
    shards[file].push_back(tensor);
  }
  return shards;
}

}  // namespace

SafetensorsModel SafetensorsModel::open(const fs::path& path) {
  SafetensorsModel model;
  model.path_ = path;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    throw Error(ErrorKind::Io, path.string() + ": cannot open: " +
                                   (ec ? ec.message() : "No such file or directory"));
  }

  if (fs::is_directory(status)) {
    const fs::path index = path / kSafetensorsIndexName;
    if (fs::exists(index, ec)) {
      model.index_path_ = index;
    } else {
      std::vector<fs::path> found;
      for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
        if (entry.is_regular_file(ec) && entry.path().extension() == ".safetensors") {
          found.push_back(entry.path());
        }
      }
      if (ec) throw Error(ErrorKind::Io, path.string() + ": cannot list: " + ec.message());
      if (found.empty()) {
        throw Error(ErrorKind::Io, path.string() + ": no .safetensors files and no " +
                                       std::string(kSafetensorsIndexName));
      }
      std::sort(found.begin(), found.end());
      for (const fs::path& file : found) model.add_file(SafetensorsFile::open(file));
      return model;
    }
  } else if (ends_with(path.filename().string(), ".json")) {
    model.index_path_ = path;
  } else {
    model.add_file(SafetensorsFile::open(path));
    return model;
  }

  const fs::path& index = model.index_path_;
  const WeightMap shards = read_weight_map(index);
  const fs::path dir = index.parent_path();
  // Check that all shards exist before mapping any, so a missing one is reported at once.
  for (const auto& [shard, tensors] : shards) {
    if (!fs::is_regular_file(dir / shard, ec)) {
      throw Error(ErrorKind::Io, index.string() + ": shard " + detail::quote_name(shard) +
                                     " (listed for tensor " + detail::quote_name(tensors.front()) +
                                     ") is missing: " + (dir / shard).string());
    }
  }
  for (const auto& [shard, tensors] : shards) {
    SafetensorsFile file = SafetensorsFile::open(dir / shard);
    for (const std::string& tensor : tensors) {
      if (!file.contains(tensor)) {
        throw Error(ErrorKind::Format, index.string() + ": tensor " + detail::quote_name(tensor) +
                                           " is listed in shard " + detail::quote_name(shard) +
                                           " but that shard does not contain it");
      }
    }
    // Tensors a shard holds beyond its index entries are kept: they are in the files, and
    // the duplicate check below still covers them.
    model.add_file(std::move(file));
  }
  return model;
}

void SafetensorsModel::add_file(SafetensorsFile file) {
  const std::size_t file_index = files_.size();
  for (const TensorView& view : file.tensors()) {
    const auto [it, inserted] = index_.emplace(view.name, tensors_.size());
    if (!inserted) {
      throw Error(ErrorKind::Format, path_.string() + ": tensor " + detail::quote_name(view.name) +
                                         " appears in both " +
                                         files_[file_of_tensor_[it->second]].name() + " and " +
                                         file.name());
    }
    tensors_.push_back(view);
    file_of_tensor_.push_back(file_index);
    total_bytes_ += view.size_bytes();
  }
  // The views copied above point into the file's mapping, which moving the file keeps in place.
  files_.push_back(std::move(file));
}

const TensorView* SafetensorsModel::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& SafetensorsModel::at(std::string_view name) const {
  const TensorView* view = find(name);
  if (view == nullptr) {
    throw Error(ErrorKind::InvalidArgument,
                path_.string() + ": no tensor named " + detail::quote_name(name));
  }
  return *view;
}

const SafetensorsFile& SafetensorsModel::file_of(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) {
    throw Error(ErrorKind::InvalidArgument,
                path_.string() + ": no tensor named " + detail::quote_name(name));
  }
  return files_[file_of_tensor_[it->second]];
}

}  // namespace mlxn::io
