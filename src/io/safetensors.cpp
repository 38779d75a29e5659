// SafetensorsFile: maps a safetensors file and validates its header before handing out views.
#include "mlxn/io/safetensors.h"

#include <algorithm>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "mlxn/core/error.h"
#include "safetensors_json.h"

namespace mlxn::io {

namespace {

using nlohmann::json;

// A tensor entry as declared, before the cross-tensor checks.
struct Entry {
  TensorView view;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

std::string offsets_text(std::uint64_t begin, std::uint64_t end) {
  // Built with += rather than "[" + ...: g++ 12 warns falsely (-Wrestrict) on the latter.
  std::string text = "[";
  text += std::to_string(begin);
  text += ", ";
  text += std::to_string(end);
  text += "]";
  return text;
}

// Parses and checks every entry of the header that describes a tensor (all keys except
// `__metadata__`); `fail` throws Error(Format) with the file and tensor named.
class HeaderReader {
 public:
  HeaderReader(const std::string& file, std::uint64_t data_size)
      : file_(file), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    throw Error(ErrorKind::Format, file_ + ": tensor " + detail::quote_name(tensor) + ": " + what);
  }

  Entry read_entry(const std::string& name, const json& value) const {
    if (!value.is_object()) fail(name, "entry is not a JSON object");
    for (const auto& [key, unused] : value.items()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets") {
        fail(name, "unexpected field " + detail::quote_name(key));
      }
    }
    Entry entry;
    entry.view.name = name;
    entry.view.dtype = read_dtype(name, value);
    entry.view.shape = read_shape(name, value);
    read_offsets(name, value, entry);
    check_size(entry);
    return entry;
  }

 private:
  const json& field(const std::string& name, const json& value, const char* key) const {
    const auto it = value.find(key);
    if (it == value.end()) fail(name, std::string("missing \"") + key + "\"");
    return *it;
  }

  TensorDType read_dtype(const std::string& name, const json& value) const {
    const json& dtype = field(name, value, "dtype");
    if (!dtype.is_string()) fail(name, "\"dtype\" is not a string");
    const auto& text = dtype.get_ref<const std::string&>();
    const std::optional<TensorDType> parsed = tensor_dtype_from_name(text);
    if (!parsed) fail(name, "unknown dtype " + detail::quote_name(text));
    return *parsed;
  }

  Shape read_shape(const std::string& name, const json& value) const {
    const json& shape = field(name, value, "shape");
    if (!shape.is_array()) fail(name, "\"shape\" is not an array");
    if (shape.size() > kMaxSafetensorsRank) {
      fail(name, "shape has " + std::to_string(shape.size()) + " dimensions (at most " +
                     std::to_string(kMaxSafetensorsRank) + ")");
    }
    Shape dims;
    for (const json& dim : shape) {
      // nlohmann stores non-negative integers as unsigned, negative ones (and "-0") as signed,
      // and integers too large for 64 bits as floating point.
      if (!dim.is_number_integer()) fail(name, "shape has a non-integer dimension " + dim.dump());
      if (!dim.is_number_unsigned() && dim.get<std::int64_t>() < 0) {
        fail(name, "shape has a negative dimension " + dim.dump());
      }
      const auto d = dim.is_number_unsigned() ? dim.get<std::uint64_t>() : 0;
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(name, "shape dimension " + std::to_string(d) + " is too large");
      }
      dims.push_back(static_cast<std::int64_t>(d));
    }
    return dims;
  }

  void read_offsets(const std::string& name, const json& value, Entry& entry) const {
    const json& offsets = field(name, value, "data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      fail(name, "\"data_offsets\" is not two non-negative integers [begin, end]");
    }
    entry.begin = offsets[0].get<std::uint64_t>();
    entry.end = offsets[1].get<std::uint64_t>();
    if (entry.end < entry.begin) {
      fail(name, "data_offsets " + offsets_text(entry.begin, entry.end) + " end before they begin");
    }
    if (entry.end > data_size_) {
      fail(name, "data_offsets " + offsets_text(entry.begin, entry.end) +
                     " reach past the data area (" + std::to_string(data_size_) + " bytes)");
    }
  }

  // shape × dtype size must equal the byte range; computed in u64 with overflow checks, and
  // the element count must also fit Shape's int64.
  void check_size(const Entry& entry) const {
    const TensorView& v = entry.view;
    std::uint64_t numel = 1;
    for (const std::int64_t d : v.shape) {
      if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel) ||
          numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(v.name, "shape " + shape_to_string(v.shape) + " has too many elements (overflow)");
      }
    }
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, tensor_dtype_size(v.dtype), &bytes)) {
      fail(v.name, "shape " + shape_to_string(v.shape) + " of " +
                       std::string(tensor_dtype_name(v.dtype)) + " overflows a byte count");
    }
    if (bytes != entry.end - entry.begin) {
      fail(v.name, "shape " + shape_to_string(v.shape) + " of " +
                       std::string(tensor_dtype_name(v.dtype)) + " needs " + std::to_string(bytes) +
                       " bytes but data_offsets " + offsets_text(entry.begin, entry.end) +
                       " span " + std::to_string(entry.end - entry.begin));
    }
  }

  const std::string& file_;
  std::uint64_t data_size_;
};

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile file;
  file.name_ = path.string();
  file.mapping_ = FileMapping::open(path);
  file.bytes_ = file.mapping_.bytes();
  file.parse();
  return file;
}

SafetensorsFile SafetensorsFile::from_bytes(std::string name, std::span<const std::byte> bytes) {
  SafetensorsFile file;
  file.name_ = std::move(name);
  file.owned_.assign(bytes.begin(), bytes.end());
  file.bytes_ = file.owned_;
  file.parse();
  return file;
}

void SafetensorsFile::parse() {
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::Format, name_ + ": " + what);
  };
  const std::size_t size = bytes_.size();
  if (size < 8) {
    fail("file is " + std::to_string(size) +
         " bytes, too short for the 8-byte header length of a safetensors file");
  }
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<std::uint8_t>(bytes_[i]);
  // Both checks come before anything is allocated or read based on the length.
  if (header_len > size - 8) {
    fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
         std::to_string(size) + " bytes)");
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    fail("header length " + std::to_string(header_len) + " exceeds the limit of " +
         std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  data_offset_ = 8 + static_cast<std::size_t>(header_len);
  const std::string_view text(reinterpret_cast<const char*>(bytes_.data()) + 8,
                              static_cast<std::size_t>(header_len));
  // Like the reference implementation, require '{' first: this also refuses a byte-order mark,
  // which nlohmann would otherwise skip.
  if (text.empty() || text.front() != '{')
    fail("header is not a JSON object (it must start with '{')");
  const json header = detail::parse_json_strict(text, name_, "header");
  if (!header.is_object()) fail("header is not a JSON object");

  const std::uint64_t data_size = size - data_offset_;
  const HeaderReader reader(name_, data_size);
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail("__metadata__ is not a JSON object");
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) {
          fail("__metadata__ value of " + detail::quote_name(mkey) + " is not a string");
        }
        metadata_.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    entries.push_back(reader.read_entry(key, value));
  }

  // File order; ties broken by name so the order never depends on the JSON library.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.view.name) < std::tie(b.begin, b.end, b.view.name);
  });
  // Empty tensors own no bytes and so overlap nothing; among the others, each must start at or
  // after the end of every tensor before it.
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    if (previous != nullptr && e.begin < previous->end) {
      reader.fail(e.view.name, "data_offsets " + offsets_text(e.begin, e.end) +
                                   " overlap those of tensor " +
                                   detail::quote_name(previous->view.name) + " " +
                                   offsets_text(previous->begin, previous->end));
    }
    if (previous == nullptr || e.end > previous->end) previous = &e;
  }

  tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    e.view.bytes = bytes_.subspan(data_offset_ + static_cast<std::size_t>(e.begin),
                                  static_cast<std::size_t>(e.end - e.begin));
    tensor_bytes_ += e.end - e.begin;
    index_.emplace(e.view.name, tensors_.size());
    tensors_.push_back(std::move(e.view));
  }
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& SafetensorsFile::at(std::string_view name) const {
  const TensorView* view = find(name);
  if (view == nullptr) {
    throw Error(ErrorKind::InvalidArgument,
                name_ + ": no tensor named " + detail::quote_name(name));
  }
  return *view;
}

void SafetensorsFile::prefetch() const {
  mapping_.advise_will_need(data_offset_,
                            mapping_.size() - std::min(data_offset_, mapping_.size()));
}

}  // namespace mlxn::io
