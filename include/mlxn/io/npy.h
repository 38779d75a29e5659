// NumPy .npy files: reading (format versions 1.0, 2.0, 3.0) and writing (version 1.0, laid out
// byte for byte as np.save does) of little-endian, C-ordered arrays of plain numeric dtypes.
// Used to exchange logits and activations with Python tooling (reference fixtures, `mlxn score`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/error.h"
#include "mlxn/core/shape.h"

namespace mlxn::io {

/// An array read from a .npy file: dtype, shape (row-major) and the raw little-endian bytes.
struct NpyArray {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<std::byte> data;

  /// shape_numel(shape) (1 for a 0-d array).
  std::int64_t numel() const;

  /// The elements as T; throws UnsupportedDType when sizeof(T) differs from the dtype's size
  /// (callers pick T matching `dtype`: float for F32, std::int64_t for I64, ...).
  template <class T>
  std::vector<T> to_vector() const {
    if (sizeof(T) != dtype_size(dtype)) {
      throw Error(ErrorKind::UnsupportedDType, std::string(".npy array of dtype ") +
                                                   std::string(dtype_name(dtype)) +
                                                   " read as a different element size");
    }
    std::vector<T> out(data.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), data.data(), out.size() * sizeof(T));
    return out;
  }
};

/// The NumPy type string of a dtype ("<f4", "|u1", "|b1", ...); throws UnsupportedDType for
/// bf16, which NumPy has no type for.
std::string npy_descr(DType dtype);

/// Parses a whole .npy file held in `bytes`. `name` (usually the path) starts every error
/// message. Accepts versions 1.0/2.0/3.0, a header that is exactly one dict literal with the
/// keys 'descr', 'fortran_order' and 'shape', terminated by '\n'; little-endian (or byte-order
/// free) numeric descrs; C order; and exactly shape-many elements of data. Anything else throws
/// Error(Format), or Error(UnsupportedDType) / Error(Unsupported) for well-formed files with a
/// dtype or layout mlxn does not read (big-endian, structured, Fortran order).
NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view name);

/// Reads `path` (see parse_npy); Error(Io) when it cannot be opened.
NpyArray read_npy(const std::filesystem::path& path);

/// The bytes of a version-1.0 .npy file holding `data` (`shape`-many elements of `dtype`,
/// little-endian, row-major), with the header padded as np.save pads it (the data starts on a
/// 64-byte boundary). Throws InvalidArgument when the byte count does not match the shape.
std::vector<std::byte> npy_bytes(DType dtype, const Shape& shape, std::span<const std::byte> data);

/// Writes npy_bytes(...) to `path` through a temporary file in the same directory renamed into
/// place, so `path` never holds half a file; throws Error(Io) naming the path on failure.
void write_npy(const std::filesystem::path& path, DType dtype, const Shape& shape,
               std::span<const std::byte> data);

/// write_npy for f32 values.
inline void write_npy(const std::filesystem::path& path, const Shape& shape,
                      std::span<const float> values) {
  write_npy(path, DType::F32, shape, std::as_bytes(values));
}

}  // namespace mlxn::io
