// GGUF parser: strict, bounded validation of hostile input before any view is handed out.
#include "mlxn/io/gguf_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>

#include "mlxn/core/error.h"

namespace mlxn::io {
namespace {

static_assert(std::endian::native == std::endian::little,
              "GGUF values are little-endian and are copied as-is");

constexpr std::uint32_t kMagic = 0x46554747;                // "GGUF" read as a little-endian u32
constexpr std::size_t kMinKvBytes = 8 + 4 + 1;              // empty key, type id, 1-byte value
constexpr std::size_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims 0, type, offset
constexpr std::size_t kInitialReserveCap = 4096;  // counts are untrusted: grow beyond this

// Smallest encoding of one element of `type`: bounds element counts by the remaining bytes.
std::size_t min_encoded_size(GgufType type) {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::String:
      return 8;  // length prefix
    case GgufType::Array:
      return 4 + 8;  // element type + count
  }
  return 1;
}

// Reads little-endian fields from an untrusted byte span; every read is bounds-checked.
class Cursor {
 public:
  Cursor(const std::string& file, std::span<const std::byte> bytes) : file_(file), bytes_(bytes) {}

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorKind::Format, file_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

  const std::byte* take(std::size_t n, const char* what) {
    if (n > remaining()) {
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes but only " +
           std::to_string(remaining()) + " remain");
    }
    const std::byte* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }

  template <class T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }

  std::string read_string(const char* what) {
    auto len = read<std::uint64_t>(what);
    if (len > remaining()) {
      fail(std::string(what) + " length " + std::to_string(len) + " exceeds the " +
           std::to_string(remaining()) + " bytes left in the file");
    }
    const std::byte* p = take(static_cast<std::size_t>(len), what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
  }

  GgufType read_type(const std::string& ctx) {
    auto id = read<std::uint32_t>("value type");
    if (id >= kGgufTypeCount) fail(ctx + ": unknown value type id " + std::to_string(id));
    return static_cast<GgufType>(id);
  }

  GgufValue read_value(GgufType type, const std::string& ctx) {
    switch (type) {
      case GgufType::U8:
        return read<std::uint8_t>("u8 value");
      case GgufType::I8:
        return read<std::int8_t>("i8 value");
      case GgufType::U16:
        return read<std::uint16_t>("u16 value");
      case GgufType::I16:
        return read<std::int16_t>("i16 value");
      case GgufType::U32:
        return read<std::uint32_t>("u32 value");
      case GgufType::I32:
        return read<std::int32_t>("i32 value");
      case GgufType::F32:
        return read<float>("f32 value");
      case GgufType::Bool:
        return read_bool(ctx);
      case GgufType::String:
        return read_string("string value");
      case GgufType::Array:
        return read_array(1, ctx);
      case GgufType::U64:
        return read<std::uint64_t>("u64 value");
      case GgufType::I64:
        return read<std::int64_t>("i64 value");
      case GgufType::F64:
        return read<double>("f64 value");
    }
    fail(ctx + ": unknown value type");
  }

  bool read_bool(const std::string& ctx) {
    auto b = read<std::uint8_t>("bool value");
    if (b > 1) fail(ctx + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
    return b != 0;
  }

  GgufArray read_array(int depth, const std::string& ctx) {
    if (depth > kGgufMaxArrayDepth) {
      fail(ctx + ": arrays nested deeper than " + std::to_string(kGgufMaxArrayDepth) + " levels");
    }
    GgufType type = read_type(ctx);
    auto n = read<std::uint64_t>("array length");
    std::size_t min_size = min_encoded_size(type);
    if (n > remaining() / min_size) {
      fail(ctx + ": array of " + std::to_string(n) + " " + gguf_type_name(type) +
           " elements cannot fit in the " + std::to_string(remaining()) + " bytes left");
    }
    auto count = static_cast<std::size_t>(n);
    switch (type) {
      case GgufType::U8:
        return GgufArray(read_pod<std::uint8_t>(count));
      case GgufType::I8:
        return GgufArray(read_pod<std::int8_t>(count));
      case GgufType::U16:
        return GgufArray(read_pod<std::uint16_t>(count));
      case GgufType::I16:
        return GgufArray(read_pod<std::int16_t>(count));
      case GgufType::U32:
        return GgufArray(read_pod<std::uint32_t>(count));
      case GgufType::I32:
        return GgufArray(read_pod<std::int32_t>(count));
      case GgufType::F32:
        return GgufArray(read_pod<float>(count));
      case GgufType::U64:
        return GgufArray(read_pod<std::uint64_t>(count));
      case GgufType::I64:
        return GgufArray(read_pod<std::int64_t>(count));
      case GgufType::F64:
        return GgufArray(read_pod<double>(count));
      case GgufType::Bool: {
        std::vector<bool> v(count);
        for (std::size_t i = 0; i < count; ++i) v[i] = read_bool(ctx);
        return GgufArray(std::move(v));
      }
      case GgufType::String: {
        std::vector<std::string> v;
        v.reserve(std::min(count, kInitialReserveCap));
        for (std::size_t i = 0; i < count; ++i) v.push_back(read_string("string element"));
        return GgufArray(std::move(v));
      }
      case GgufType::Array: {
        std::vector<GgufArray> v;
        v.reserve(std::min(count, kInitialReserveCap));
        for (std::size_t i = 0; i < count; ++i) v.push_back(read_array(depth + 1, ctx));
        return GgufArray(std::move(v));
      }
    }
    fail(ctx + ": unknown array element type");
  }

 private:
  template <class T>
  std::vector<T> read_pod(std::size_t count) {
    // count * sizeof(T) <= remaining() was checked by the caller, so this cannot overflow.
    std::vector<T> v(count);
    if (count > 0) std::memcpy(v.data(), take(count * sizeof(T), "array data"), count * sizeof(T));
    return v;
  }

  const std::string& file_;
  std::span<const std::byte> bytes_;
  std::size_t pos_ = 0;
};

std::string dims_to_string(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

Shape GgufTensorInfo::shape() const {
  Shape s(dims.rbegin(), dims.rend());
  return s;
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.name_ = path.string();
  f.mapping_ = FileMapping::open(path);
  f.bytes_ = f.mapping_.bytes();
  f.parse();
  return f;
}

GgufFile GgufFile::from_bytes(std::string name, std::vector<std::byte> bytes) {
  GgufFile f;
  f.name_ = std::move(name);
  f.owned_ = std::move(bytes);
  f.bytes_ = f.owned_;
  f.parse();
  return f;
}

GgufFile GgufFile::from_span(std::string name, std::span<const std::byte> bytes) {
  GgufFile f;
  f.name_ = std::move(name);
  f.bytes_ = bytes;
  f.parse();
  return f;
}

void GgufFile::parse() {
  Cursor c(name_, bytes_);
  if (bytes_.size() < 4 || c.read<std::uint32_t>("magic") != kMagic) {
    throw Error(ErrorKind::Format, name_ + ": not a GGUF file (bad magic)");
  }
  version_ = c.read<std::uint32_t>("version");
  if (version_ == 1) {
    throw Error(ErrorKind::Unsupported,
                name_ + ": GGUF version 1 is not supported (only versions 2 and 3)");
  }
  std::uint32_t swapped = __builtin_bswap32(version_);
  if (swapped == 2 || swapped == 3) {
    throw Error(ErrorKind::Unsupported, name_ + ": big-endian GGUF files are not supported");
  }
  if (version_ != 2 && version_ != 3) {
    throw Error(ErrorKind::Format, name_ + ": unknown GGUF version " + std::to_string(version_));
  }
  auto n_tensors = c.read<std::uint64_t>("tensor count");
  auto n_kv = c.read<std::uint64_t>("metadata count");
  // Each entry needs a minimum number of bytes, so counts beyond the file are lies.
  if (n_tensors > c.remaining() / kMinTensorInfoBytes || n_kv > c.remaining() / kMinKvBytes ||
      n_tensors * kMinTensorInfoBytes + n_kv * kMinKvBytes > c.remaining()) {
    c.fail("tensor count " + std::to_string(n_tensors) + " and metadata count " +
           std::to_string(n_kv) + " cannot fit in the " + std::to_string(c.remaining()) +
           " bytes left");
  }

  kvs_.reserve(std::min<std::size_t>(n_kv, kInitialReserveCap));
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    std::string ctx = "key '" + key + "'";
    if (kv_index_.count(key)) c.fail("duplicate metadata " + ctx);
    GgufType type = c.read_type(ctx);
    GgufValue value = c.read_value(type, ctx);
    kv_index_.emplace(key, kvs_.size());
    kvs_.push_back({std::move(key), std::move(value)});
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is<std::uint32_t>()) {
      throw Error(ErrorKind::Format,
                  name_ + ": general.alignment must be u32, found " + gguf_describe_type(*a));
    }
    std::uint32_t v = a->as<std::uint32_t>();
    if (!std::has_single_bit(v)) {
      throw Error(ErrorKind::Format,
                  name_ + ": general.alignment " + std::to_string(v) + " is not a power of two");
    }
    alignment_ = v;
  }

  tensors_.reserve(std::min<std::size_t>(n_tensors, kInitialReserveCap));
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string("tensor name");
    std::string ctx = "tensor '" + t.name + "'";
    if (tensor_index_.count(t.name)) c.fail("duplicate " + ctx);
    auto n_dims = c.read<std::uint32_t>("tensor dimension count");
    if (n_dims > kGgmlMaxDims) {
      c.fail(ctx + " has " + std::to_string(n_dims) + " dimensions; GGML allows at most " +
             std::to_string(kGgmlMaxDims));
    }
    t.dims.resize(n_dims);
    std::uint64_t n = 1;
    bool overflow = false;
    for (auto& d : t.dims) {
      d = c.read<std::uint64_t>("tensor dimension");
      constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      if (d > kMax || (d != 0 && n > kMax / d)) overflow = true;
      if (!overflow) n *= d;
    }
    if (overflow) c.fail(ctx + " dims " + dims_to_string(t.dims) + " overflow int64");
    t.n_elements = n;
    auto type_id = c.read<std::uint32_t>("tensor type");
    std::optional<GgmlType> type = ggml_type_from_id(type_id);
    if (!type) c.fail(ctx + " has unknown GGML type id " + std::to_string(type_id));
    t.type = *type;
    const GgmlTypeTraits& traits = ggml_type_traits(t.type);
    if (traits.removed) {
      throw Error(ErrorKind::Unsupported,
                  name_ + ": " + ctx + " uses GGML type " + std::string(traits.name) + " (id " +
                      std::to_string(type_id) + "), which ggml no longer supports");
    }
    std::uint64_t row = t.dims.empty() ? 1 : t.dims[0];
    if (row % traits.block_size != 0) {
      c.fail(ctx + " row length " + std::to_string(row) + " is not a multiple of " +
             std::string(traits.name) + "'s block size " + std::to_string(traits.block_size));
    }
    std::optional<std::uint64_t> n_bytes = ggml_try_row_size(t.type, n);
    if (!n_bytes ||
        *n_bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      c.fail(ctx + " byte size overflows");
    }
    t.n_bytes = *n_bytes;
    t.offset = c.read<std::uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0) {
      c.fail(ctx + " offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(alignment_));
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (pos <= file size < 2^63).
  std::uint64_t pos = c.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  const std::uint64_t size = bytes_.size();
  for (const GgufTensorInfo& t : tensors_) {
    if (t.n_bytes == 0) continue;
    if (data_offset_ > size || t.offset > size - data_offset_ ||
        t.n_bytes > size - data_offset_ - t.offset) {
      throw Error(ErrorKind::Format,
                  name_ + ": tensor '" + t.name + "' data (offset " + std::to_string(t.offset) +
                      ", " + std::to_string(t.n_bytes) + " bytes, data section at " +
                      std::to_string(data_offset_) + ") lies outside the file of " +
                      std::to_string(size) + " bytes");
    }
  }
  std::vector<std::size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), 0);
  std::erase_if(order, [&](std::size_t i) { return tensors_[i].n_bytes == 0; });
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (std::size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& prev = tensors_[order[i - 1]];
    const GgufTensorInfo& cur = tensors_[order[i]];
    if (prev.offset + prev.n_bytes > cur.offset) {  // both inside the file: no overflow
      throw Error(ErrorKind::Format,
                  name_ + ": data of tensors '" + prev.name + "' and '" + cur.name + "' overlap");
    }
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v)
    throw Error(ErrorKind::Format, name_ + ": missing metadata key '" + std::string(key) + "'");
  return *v;
}

std::string GgufFile::key_context(std::string_view key) const {
  return name_ + ": key '" + std::string(key) + "'";
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) throw Error(ErrorKind::Format, name_ + ": no tensor '" + std::string(name) + "'");
  return *t;
}

std::span<const std::byte> GgufFile::tensor_data(const GgufTensorInfo& info) const {
  const std::uint64_t size = bytes_.size();
  if (info.n_bytes == 0) return {};
  if (data_offset_ > size || info.offset > size - data_offset_ ||
      info.n_bytes > size - data_offset_ - info.offset) {
    throw Error(ErrorKind::InvalidArgument,
                name_ + ": tensor '" + info.name + "' does not lie inside this file");
  }
  return bytes_.subspan(static_cast<std::size_t>(data_offset_ + info.offset),
                        static_cast<std::size_t>(info.n_bytes));
}

}  // namespace mlxn::io
