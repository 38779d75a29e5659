// NumPy .npy reader and writer. The format (NEP 1): the magic "\x93NUMPY", a major and minor
// version byte, the header length (uint16 little-endian in 1.0, uint32 in 2.0 and 3.0), then the
// header -- a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), }
// padded with spaces and ended by '\n' -- then the raw array bytes.
#include "mlxn/io/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "mlxn/io/file_mapping.h"

namespace mlxn::io {

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
// np.save aligns the start of the data to this many bytes.
constexpr std::size_t kAlign = 64;
// np.save leaves room after the dict for the first axis to grow to this many digits, so that
// appending writers can rewrite the header in place; we pad the same way to match its bytes.
constexpr std::size_t kGrowthAxisMaxDigits = 21;

[[noreturn]] void format_error(std::string_view name, const std::string& what) {
  throw Error(ErrorKind::Format, std::string(name) + ": .npy: " + what);
}

// One entry of the descr table: the NumPy kind letter and item size of each mlxn dtype.
struct DescrEntry {
  DType dtype;
  char kind;
  int size;
};
constexpr DescrEntry kDescrs[] = {
    {DType::F16, 'f', 2}, {DType::F32, 'f', 4}, {DType::F64, 'f', 8}, {DType::I8, 'i', 1},
    {DType::I16, 'i', 2}, {DType::I32, 'i', 4}, {DType::I64, 'i', 8}, {DType::U8, 'u', 1},
    {DType::U16, 'u', 2}, {DType::U32, 'u', 4}, {DType::U64, 'u', 8}, {DType::Bool, 'b', 1},
};

// (Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.)
std::string quote(std::string_view s) {
  std::string q(1, '\'');
  q.append(s);
  q += '\'';
  return q;
}

// The dtype of a descr string such as "<f4" or "|u1".
DType dtype_from_descr(std::string_view descr, std::string_view name) {
  auto unsupported = [&](const std::string& why) -> DType {
    throw Error(ErrorKind::UnsupportedDType, std::string(name) + ": .npy: dtype " + quote(descr) +
                                                 " is not supported (" + why +
                                                 "; mlxn reads little-endian f2/f4/f8, "
                                                 "i1-i8, u1-u8 and b1)");
  };
  if (descr.size() < 3) return unsupported("not a byte order, kind and size");
  const char order = descr[0];
  const char kind = descr[1];
  std::string_view digits = descr.substr(2);
  int size = 0;
  for (char c : digits) {
    if (c < '0' || c > '9' || size > 1000) return unsupported("not a byte order, kind and size");
    size = size * 10 + (c - '0');
  }
  for (const DescrEntry& e : kDescrs) {
    if (e.kind != kind || e.size != size) continue;
    // One-byte types have no byte order: NumPy writes '|', and '<' / '>' mean the same.
    if (size == 1 && (order == '|' || order == '<' || order == '>')) return e.dtype;
    if (order == '<') return e.dtype;
    if (order == '>') return unsupported("big-endian");
    if (order == '|') return unsupported("'|' (no byte order) on a multi-byte type");
    return unsupported("byte order must be '<'");
  }
  return unsupported("unknown kind or size");
}

// A strict recursive-descent parser for the header's dict literal: exactly the subset of Python
// literal syntax that NumPy writes (quoted strings without escapes, True/False, tuples of
// non-negative decimal integers), with arbitrary spaces between tokens.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
  };

  // Parses "{...}" followed only by space padding (the caller stripped the final '\n').
  Header parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran;
    std::optional<Shape> shape;
    skip_spaces();
    expect('{', "the header to start with '{'");
    skip_spaces();
    while (!eat('}')) {
      const std::string key = parse_string("a quoted key or '}'");
      skip_spaces();
      expect(':', "':' after key " + quote(key));
      skip_spaces();
      if (key == "descr") {
        if (descr) fail("key 'descr' appears twice");
        if (peek() == '[') {
          throw Error(ErrorKind::UnsupportedDType,
                      std::string(name_) + ": .npy: structured dtypes are not supported");
        }
        descr = parse_string("a quoted dtype string after 'descr'");
      } else if (key == "fortran_order") {
        if (fortran) fail("key 'fortran_order' appears twice");
        fortran = parse_bool();
      } else if (key == "shape") {
        if (shape) fail("key 'shape' appears twice");
        shape = parse_shape();
      } else {
        fail("unexpected key " + quote(key) + " (expected 'descr', 'fortran_order', 'shape')");
      }
      skip_spaces();
      if (eat(',')) {
        skip_spaces();
      } else if (peek() != '}') {
        fail("expected ',' or '}' after the value of " + quote(key));
      }
    }
    skip_spaces();
    if (pos_ != s_.size()) fail("unexpected text after the dict at header byte " + at());
    if (!descr) fail("header lacks 'descr'");
    if (!fortran) fail("header lacks 'fortran_order'");
    if (!shape) fail("header lacks 'shape'");
    return {std::move(*descr), *fortran, std::move(*shape)};
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { format_error(name_, "header: " + what); }

  std::string at() const { return std::to_string(pos_); }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void expect(char c, const std::string& what) {
    if (!eat(c)) fail("expected " + what + " at byte " + at());
  }
  void skip_spaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }

  std::string parse_string(const std::string& what) {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected " + what + " at byte " + at());
    const std::size_t start = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != q) {
      // NumPy never writes escapes or control characters in the names it puts here.
      if (s_[pos_] == '\\' || static_cast<unsigned char>(s_[pos_]) < 0x20) {
        fail("unexpected character in a string at byte " + at());
      }
      ++pos_;
    }
    if (pos_ >= s_.size()) fail("unterminated string starting at byte " + std::to_string(start));
    return std::string(s_.substr(start, pos_++ - start));
  }

  bool parse_word(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    const std::size_t end = pos_ + word.size();
    // "Trueish" is not True.
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) {
      return false;
    }
    pos_ = end;
    return true;
  }

  bool parse_bool() {
    if (parse_word("True")) return true;
    if (parse_word("False")) return false;
    fail("expected True or False after 'fortran_order' at byte " + at());
  }

  std::int64_t parse_dim() {
    const std::size_t start = pos_;
    std::int64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const int d = s_[pos_] - '0';
      if (v > (std::numeric_limits<std::int64_t>::max() - d) / 10) {
        fail("shape dimension too large at byte " + std::to_string(start));
      }
      v = v * 10 + d;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer in 'shape' at byte " + at());
    // Python 3 rejects "007"; so do we.
    if (pos_ - start > 1 && s_[start] == '0') {
      fail("shape dimension with a leading zero at byte " + std::to_string(start));
    }
    return v;
  }

  // "()" | "(d,)" | "(d, d)" | "(d, d,)": a tuple; "(d)" is the integer d in Python, so a
  // one-dimensional shape needs its trailing comma.
  Shape parse_shape() {
    expect('(', "a tuple '(' after 'shape'");
    Shape shape;
    bool comma = false;  // whether a ',' followed the last dimension
    skip_spaces();
    while (!eat(')')) {
      if (!shape.empty() && !comma) fail("expected ',' or ')' in 'shape' at byte " + at());
      shape.push_back(parse_dim());
      skip_spaces();
      comma = eat(',');
      skip_spaces();
    }
    if (shape.size() == 1 && !comma) {
      fail("'shape' (n) is not a tuple; a one-dimensional shape is written (n,)");
    }
    return shape;
  }

  std::string_view s_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

std::uint64_t read_le(std::span<const std::byte> bytes, std::size_t offset, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(bytes[offset + i]) << (8 * i);
  }
  return v;
}

// The Python repr of a shape tuple: "()", "(3,)", "(2, 3)".
std::string shape_repr(const Shape& shape) {
  std::string s = "(";
  if (shape.size() == 1) return s.append(std::to_string(shape[0])).append(",)");
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

[[noreturn]] void throw_io(const std::filesystem::path& path, const std::string& what, int err) {
  throw Error(ErrorKind::Io, path.string() + ": " + what + ": " + std::strerror(err));
}

}  // namespace

std::int64_t NpyArray::numel() const {
  return shape_numel(shape);
}

std::string npy_descr(DType dtype) {
  if (dtype == DType::BF16) {
    throw Error(ErrorKind::UnsupportedDType,
                ".npy: NumPy has no bf16 dtype; convert to f32 before writing");
  }
  for (const DescrEntry& e : kDescrs) {
    if (e.dtype != dtype) continue;
    return std::string(1, e.size == 1 ? '|' : '<') + e.kind + std::to_string(e.size);
  }
  throw Error(ErrorKind::UnsupportedDType,
              std::string(".npy: no NumPy type for dtype ") + std::string(dtype_name(dtype)));
}

NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view name) {
  if (bytes.size() < kMagic.size() + 2) {
    format_error(name, "truncated: " + std::to_string(bytes.size()) +
                           " bytes, too short for the magic string and version");
  }
  if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
    format_error(name, "bad magic (not a NumPy .npy file)");
  }
  const int major = static_cast<int>(bytes[6]);
  const int minor = static_cast<int>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    format_error(name, "unsupported format version " + std::to_string(major) + "." +
                           std::to_string(minor) + " (mlxn reads 1.0, 2.0 and 3.0)");
  }
  const int len_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagic.size() + 2 + len_bytes;
  if (bytes.size() < prefix) format_error(name, "truncated in the header length");
  const std::uint64_t header_len = read_le(bytes, kMagic.size() + 2, len_bytes);
  if (header_len > bytes.size() - prefix) {
    format_error(name, "truncated: the header claims " + std::to_string(header_len) +
                           " bytes, the file has " + std::to_string(bytes.size() - prefix) +
                           " after the prefix");
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + prefix,
                                static_cast<std::size_t>(header_len));
  if (header.empty() || header.back() != '\n') {
    format_error(name, "header is not terminated by a newline");
  }
  // 1.0 and 2.0 headers are ASCII (3.0 allows UTF-8, which only structured field names use --
  // and those are rejected by the parser anyway).
  for (char c : header) {
    if (static_cast<unsigned char>(c) >= 0x80 && major < 3) {
      format_error(name, "header of a version " + std::to_string(major) + ".0 file is not ASCII");
    }
  }
  HeaderParser::Header h = HeaderParser(header.substr(0, header.size() - 1), name).parse();

  NpyArray out;
  out.dtype = dtype_from_descr(h.descr, name);
  if (h.fortran_order) {
    throw Error(ErrorKind::Unsupported,
                std::string(name) +
                    ": .npy: fortran_order is True; mlxn reads C-order arrays only "
                    "(save np.ascontiguousarray(a))");
  }
  out.shape = std::move(h.shape);
  const std::size_t item = dtype_size(out.dtype);
  std::uint64_t numel = 1;
  for (std::int64_t d : out.shape) {
    if (d != 0 && numel > std::numeric_limits<std::uint64_t>::max() / item / d) {
      format_error(name, "shape " + shape_to_string(out.shape) + " overflows");
    }
    numel *= static_cast<std::uint64_t>(d);
  }
  const std::uint64_t want = numel * item;
  const std::size_t have = bytes.size() - prefix - header_len;
  if (have != want) {
    format_error(name, std::string(have < want ? "truncated" : "trailing bytes") + ": shape " +
                           shape_to_string(out.shape) + " of " + h.descr + " needs " +
                           std::to_string(want) + " data bytes, the file has " +
                           std::to_string(have));
  }
  const std::byte* data = bytes.data() + prefix + header_len;
  out.data.assign(data, data + have);
  return out;
}

NpyArray read_npy(const std::filesystem::path& path) {
  const FileMapping file = FileMapping::open(path);
  return parse_npy(file.bytes(), path.string());
}

std::vector<std::byte> npy_bytes(DType dtype, const Shape& shape, std::span<const std::byte> data) {
  const std::string descr = npy_descr(dtype);
  const std::int64_t numel = shape_numel(shape);  // throws InvalidArgument on a negative dim
  if (static_cast<std::uint64_t>(numel) * dtype_size(dtype) != data.size()) {
    throw Error(ErrorKind::InvalidArgument,
                ".npy writer: shape " + shape_to_string(shape) + " of " + descr + " needs " +
                    std::to_string(static_cast<std::uint64_t>(numel) * dtype_size(dtype)) +
                    " bytes, got " + std::to_string(data.size()));
  }
  // Keys in sorted order, each followed by ", ", as the repr-based NumPy writer emits them.
  std::string header = "{'descr': " + quote(descr) +
                       ", 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) header.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  // Pad with spaces so that magic + version + length + header (with its '\n') is a multiple of
  // 64. Version 1.0 unless the header outgrows its 16-bit length (only absurd ranks do).
  int major = 1;
  std::size_t prefix = kMagic.size() + 2 + 2;
  if (prefix + header.size() + 1 + kAlign > std::numeric_limits<std::uint16_t>::max()) {
    major = 2;
    prefix = kMagic.size() + 2 + 4;
  }
  const std::size_t unpadded = prefix + header.size() + 1;
  header.append((kAlign - unpadded % kAlign) % kAlign, ' ');
  header.push_back('\n');

  std::vector<std::byte> out;
  out.reserve(prefix + header.size() + data.size());
  for (char c : kMagic) out.push_back(static_cast<std::byte>(c));
  out.push_back(static_cast<std::byte>(major));
  out.push_back(std::byte{0});
  const std::uint64_t len = header.size();
  for (std::size_t i = 0; i + kMagic.size() + 2 < prefix; ++i) {
    out.push_back(static_cast<std::byte>((len >> (8 * i)) & 0xFF));
  }
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_npy(const std::filesystem::path& path, DType dtype, const Shape& shape,
               std::span<const std::byte> data) {
  const std::vector<std::byte> bytes = npy_bytes(dtype, shape, data);
  // A unique temporary name next to the target (rename is atomic only within one file system);
  // O_EXCL never reuses someone else's file, and mode 0666 lets the umask decide as for fopen.
  static std::atomic<unsigned> counter{0};
  std::filesystem::path tmp = path;
  tmp += ".tmp" + std::to_string(::getpid()) + "." + std::to_string(counter++);
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_io(path, "cannot create " + tmp.filename().string(), errno);
  auto fail = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw_io(path, what, err);
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_io(path, "cannot write", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_io(path, "cannot rename into place", err);
  }
}

}  // namespace mlxn::io
