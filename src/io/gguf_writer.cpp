// GgufWriter: serializes metadata and tensors into the GGUF v3 layout.
#include "mlxn/io/gguf_writer.h"

#include <bit>
#include <cstring>
#include <fstream>

#include "mlxn/core/error.h"

namespace mlxn::io {
namespace {

class ByteSink {
 public:
  explicit ByteSink(std::vector<std::byte>& out) : out_(out) {}

  template <class T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    auto old = out_.size();
    out_.resize(old + sizeof(T));
    std::memcpy(out_.data() + old, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<std::uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_.insert(out_.end(), p, p + s.size());
  }
  void put_bytes(std::span<const std::byte> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void pad_to(std::uint32_t alignment) {
    out_.resize((out_.size() + alignment - 1) / alignment * alignment, std::byte{0});
  }

  void put_array(const GgufArray& a) {
    put<std::uint32_t>(static_cast<std::uint32_t>(a.element_type()));
    put<std::uint64_t>(a.size());
    std::visit(
        [&](const auto& v) {
          using E = typename std::decay_t<decltype(v)>::value_type;
          for (const auto& e : v) {
            if constexpr (std::is_same_v<E, std::string>) {
              put_string(e);
            } else if constexpr (std::is_same_v<E, GgufArray>) {
              put_array(e);
            } else if constexpr (std::is_same_v<E, bool>) {
              put<std::uint8_t>(e ? 1 : 0);
            } else {
              put<E>(e);
            }
          }
        },
        a.data());
  }

  void put_value(const GgufValue& value) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            put_string(v);
          } else if constexpr (std::is_same_v<T, GgufArray>) {
            put_array(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            put<std::uint8_t>(v ? 1 : 0);
          } else {
            put<T>(v);
          }
        },
        value.data());
  }

 private:
  std::vector<std::byte>& out_;
};

}  // namespace

void GgufWriter::add(std::string key, GgufValue value) {
  if (keys_.count(key)) {
    throw Error(ErrorKind::InvalidArgument, "GgufWriter: duplicate metadata key '" + key + "'");
  }
  if (key == "general.alignment") {
    if (!value.is<std::uint32_t>() || !std::has_single_bit(value.as<std::uint32_t>())) {
      throw Error(ErrorKind::InvalidArgument,
                  "GgufWriter: general.alignment must be a u32 power of two, got " +
                      gguf_describe_type(value) + " " + value.to_string());
    }
    if (!tensors_.empty()) {
      throw Error(ErrorKind::InvalidArgument,
                  "GgufWriter: general.alignment must be set before tensors are added");
    }
    alignment_ = value.as<std::uint32_t>();
  }
  keys_.emplace(key, kvs_.size());
  kvs_.push_back({std::move(key), std::move(value)});
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<std::uint64_t> dims,
                            std::span<const std::byte> data) {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::InvalidArgument, "GgufWriter: tensor '" + name + "' " + what);
  };
  if (tensor_names_.count(name)) fail("is a duplicate");
  if (dims.size() > kGgmlMaxDims) fail("has more than 4 dimensions");
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  if (traits.removed) fail("uses removed GGML type " + std::string(traits.name));
  std::uint64_t n = 1;
  for (std::uint64_t d : dims) {
    if (d != 0 && n > static_cast<std::uint64_t>(INT64_MAX) / d) fail("has overflowing dims");
    n *= d;
  }
  if (!dims.empty() && dims[0] % traits.block_size != 0) {
    fail("row length is not a multiple of the block size");
  }
  std::uint64_t n_bytes = ggml_row_size(type, n);
  if (n_bytes != data.size()) {
    fail("needs " + std::to_string(n_bytes) + " bytes, got " + std::to_string(data.size()));
  }
  std::uint64_t offset = 0;
  if (!tensors_.empty()) {
    const GgufTensorInfo& last = tensors_.back().info;
    offset = (last.offset + last.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  Tensor t;
  t.info.name = name;
  t.info.dims = std::move(dims);
  t.info.type = type;
  t.info.offset = offset;
  t.info.n_elements = n;
  t.info.n_bytes = n_bytes;
  t.data.assign(data.begin(), data.end());
  tensor_names_.emplace(name, tensors_.size());
  tensors_.push_back(std::move(t));
}

std::vector<std::byte> GgufWriter::to_bytes() const {
  std::vector<std::byte> out;
  ByteSink sink(out);
  sink.put<std::uint32_t>(0x46554747);  // "GGUF"
  sink.put<std::uint32_t>(3);
  sink.put<std::uint64_t>(tensors_.size());
  sink.put<std::uint64_t>(kvs_.size());
  for (const GgufKv& kv : kvs_) {
    sink.put_string(kv.key);
    sink.put<std::uint32_t>(static_cast<std::uint32_t>(kv.value.type()));
    sink.put_value(kv.value);
  }
  for (const Tensor& t : tensors_) {
    sink.put_string(t.info.name);
    sink.put<std::uint32_t>(static_cast<std::uint32_t>(t.info.dims.size()));
    for (std::uint64_t d : t.info.dims) sink.put<std::uint64_t>(d);
    sink.put<std::uint32_t>(static_cast<std::uint32_t>(t.info.type));
    sink.put<std::uint64_t>(t.info.offset);
  }
  sink.pad_to(alignment_);
  const std::size_t data_start = out.size();
  for (const Tensor& t : tensors_) {
    out.resize(data_start + t.info.offset, std::byte{0});
    sink.put_bytes(t.data);
  }
  sink.pad_to(alignment_);
  return out;
}

void GgufWriter::write(const std::filesystem::path& path) const {
  std::vector<std::byte> bytes = to_bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(ErrorKind::Io, path.string() + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw Error(ErrorKind::Io, path.string() + ": write failed");
}

}  // namespace mlxn::io
