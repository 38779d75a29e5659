// FileMapping: POSIX mmap of a whole file, read-only, with errors reported as Error(Io).
#include "mlxn/io/file_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "mlxn/core/error.h"

namespace mlxn::io {

namespace {

[[noreturn]] void throw_io(const std::filesystem::path& path, const char* what, int err) {
  throw Error(ErrorKind::Io, path.string() + ": " + what + ": " + std::strerror(err));
}

// Closes the descriptor on every path out of open(); the mapping stays valid after close.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

FileMapping FileMapping::open(const std::filesystem::path& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_io(path, "cannot open", errno);
  FdGuard guard{fd};

  struct stat st;
  if (::fstat(fd, &st) != 0) throw_io(path, "cannot stat", errno);
  // Directories and devices would map nonsense (or fail late); reject them up front.
  if (!S_ISREG(st.st_mode)) throw_io(path, "not a regular file", EINVAL);

  FileMapping mapping;
  mapping.path_ = path;
  if (st.st_size == 0) return mapping;
  const auto size = static_cast<std::size_t>(st.st_size);
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (addr == MAP_FAILED) throw_io(path, "cannot mmap", errno);
  mapping.data_ = static_cast<const std::byte*>(addr);
  mapping.size_ = size;
  return mapping;
}

FileMapping::FileMapping(FileMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

FileMapping& FileMapping::operator=(FileMapping&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

FileMapping::~FileMapping() {
  reset();
}

void FileMapping::reset() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

void FileMapping::advise_will_need(std::size_t offset, std::size_t length) const {
  if (data_ == nullptr || offset >= size_) return;
  length = std::min(length, size_ - offset);
  // madvise wants a page-aligned start; round down and widen the range to match.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t start = offset / page * page;
  // Advice only: a failure changes nothing about correctness, so it is ignored.
  (void)::madvise(const_cast<std::byte*>(data_) + start, length + (offset - start), MADV_WILLNEED);
}

}  // namespace mlxn::io
