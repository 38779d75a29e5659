// Error: the one exception type mlxn throws, tagged with a kind so callers can react by category.
#pragma once

#include <stdexcept>
#include <string>

namespace mlxn {

/// What went wrong, by category. Messages name the file, tensor, op or kernel involved.
enum class ErrorKind {
  DeviceNotFound,    // no such backend or device index
  CommandBuffer,     // a submitted command buffer failed on the device
  Allocation,        // memory could not be allocated
  InvalidArgument,   // caller passed bad shapes, sizes, dtypes or states
  KernelNotFound,    // no kernel for this name + specialization on this backend
  Io,                // reading or writing a file failed
  Format,            // a file is malformed
  QuantConfig,       // quantization settings are inconsistent
  UnsupportedDType,  // the op does not handle this dtype
  Unsupported,       // a feature that is recognised but not implemented
};

/// Human-readable name of an error kind ("invalid argument", ...).
const char* error_kind_name(ErrorKind kind);

/// The exception thrown by every mlxn API. The library never exits the process.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);

  ErrorKind kind() const { return kind_; }

  /// True when retrying the same call may succeed (memory pressure, interrupted I/O);
  /// false when the input or program state is at fault.
  bool is_transient() const;

 private:
  ErrorKind kind_;
};

}  // namespace mlxn
