// SafetensorsWriter: serializes tensors and metadata in the safetensors layout.
#include "mlxn/io/safetensors_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

#include "mlxn/core/error.h"
#include "safetensors_json.h"

namespace mlxn::io {

namespace {

[[noreturn]] void throw_io(const std::filesystem::path& path, const char* what, int err) {
  throw Error(ErrorKind::Io, path.string() + ": " + what + ": " + std::strerror(err));
}

}  // namespace

void SafetensorsWriter::add(std::string name, TensorDType dtype, Shape shape,
                            std::span<const std::byte> data) {
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::InvalidArgument,
                "safetensors writer: tensor " + detail::quote_name(name) + ": " + what);
  };
  if (name.empty()) fail("empty name");
  if (name == "__metadata__") fail("the name is reserved for metadata");
  for (const Tensor& t : tensors_) {
    if (t.name == name) fail("added twice");
  }
  const std::int64_t numel = shape_numel(shape);  // throws on negative dims and overflow
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), tensor_dtype_size(dtype), &bytes) ||
      bytes != data.size()) {
    fail("shape " + shape_to_string(shape) + " of " + std::string(tensor_dtype_name(dtype)) +
         " does not match " + std::to_string(data.size()) + " bytes of data");
  }
  tensors_.push_back({std::move(name), dtype, std::move(shape), {data.begin(), data.end()}});
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

std::string SafetensorsWriter::header() const {
  // ordered_json keeps the insertion order, so the header lists tensors in file order.
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata_) meta[key] = value;
    json["__metadata__"] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    const std::uint64_t end = offset + t.data.size();
    json[t.name] = {
        {"dtype", tensor_dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = json.dump();
  } catch (const nlohmann::json::exception& e) {
    // dump() refuses names and metadata that are not valid UTF-8.
    throw Error(ErrorKind::InvalidArgument, std::string("safetensors writer: ") + e.what());
  }
  // The format allows trailing spaces in the header; pad so the data area is 8-byte aligned.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  return text;
}

std::vector<std::byte> SafetensorsWriter::to_bytes() const {
  const std::string text = header();
  std::size_t total = 8 + text.size();
  for (const Tensor& t : tensors_) total += t.data.size();
  std::vector<std::byte> out;
  out.reserve(total);
  const std::uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((len >> (8 * i)) & 0xFF));
  const auto* chars = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), chars, chars + text.size());
  for (const Tensor& t : tensors_) out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  const std::vector<std::byte> bytes = to_bytes();
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw_io(tmp, "cannot create", errno);
  const std::size_t written = std::fwrite(bytes.data(), 1, bytes.size(), f);
  const int write_err = errno;
  if (written != bytes.size()) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw_io(tmp, "cannot write", write_err);
  }
  if (std::fclose(f) != 0) {
    const int close_err = errno;
    std::remove(tmp.c_str());
    throw_io(tmp, "cannot write", close_err);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(ErrorKind::Io, path.string() + ": cannot rename into place: " + ec.message());
  }
}

}  // namespace mlxn::io
