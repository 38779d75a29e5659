// libFuzzer harness: parses arbitrary bytes as a .npy file; anything but mlxn::Error is a bug,
// and an accepted array must hold exactly shape-many elements.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "mlxn/core/error.h"
#include "mlxn/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const mlxn::io::NpyArray a = mlxn::io::parse_npy(bytes, "fuzz");
    const auto want = static_cast<std::uint64_t>(a.numel()) * mlxn::dtype_size(a.dtype);
    if (a.data.size() != want) std::abort();
    // What was read writes back and reads again to the same array.
    const mlxn::io::NpyArray b =
        mlxn::io::parse_npy(mlxn::io::npy_bytes(a.dtype, a.shape, a.data), "fuzz");
    if (b.dtype != a.dtype || b.shape != a.shape || b.data != a.data) std::abort();
  } catch (const mlxn::Error&) {
    // Rejecting malformed input with an Error is the expected outcome.
  }
  return 0;
}
