// Shared helpers for io tests: temporary directories, writing and reading bytes, little-endian
// encoding, and checking the kind and message of an mlxn::Error.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "mlxn/core/error.h"

namespace mlxn::io::test {

/// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mlxn_io_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// path() / name.
  std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Bytes of a string (no terminator).
inline std::vector<std::byte> to_bytes(std::string_view text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}

/// Bytes of a vector of trivially copyable values, in host (little-endian) order.
template <class T>
std::vector<std::byte> to_bytes(const std::vector<T>& values) {
  const auto* p = reinterpret_cast<const std::byte*>(values.data());
  return {p, p + values.size() * sizeof(T)};
}

/// Appends `value` as `n_bytes` little-endian bytes.
inline void append_le(std::vector<std::byte>& out, std::uint64_t value, int n_bytes) {
  for (int i = 0; i < n_bytes; ++i)
    out.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xFF));
}

/// Appends raw bytes.
inline void append(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
inline void append(std::vector<std::byte>& out, std::string_view text) {
  append(out, std::span<const std::byte>(to_bytes(text)));
}

/// Writes `bytes` to `path`, replacing the file; fails the test on error.
inline void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}
inline void write_file(const std::filesystem::path& path, std::string_view text) {
  write_file(path, std::span<const std::byte>(to_bytes(text)));
}

/// The whole file; empty (and a test failure) when it cannot be read.
inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const std::byte*>(chars.data());
  return {p, p + chars.size()};
}

/// Runs `fn`, expecting an mlxn::Error of `kind` whose message contains every string of
/// `needles`; returns the message ("" when nothing or something else was thrown).
inline std::string expect_error(const std::function<void()>& fn, ErrorKind kind,
                                std::initializer_list<std::string_view> needles = {}) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.kind(), kind) << "kind " << error_kind_name(e.kind()) << ", expected "
                              << error_kind_name(kind) << ": " << message;
    for (std::string_view needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "message lacks \"" << needle << "\": " << message;
    }
    return message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected mlxn::Error(" << error_kind_name(kind)
                  << "), got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected mlxn::Error(" << error_kind_name(kind) << "), nothing was thrown";
  return "";
}

}  // namespace mlxn::io::test
