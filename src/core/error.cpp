// Error kinds and their names.
#include "mlxn/core/error.h"

namespace mlxn {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::DeviceNotFound: return "device not found";
    case ErrorKind::CommandBuffer: return "command buffer error";
    case ErrorKind::Allocation: return "allocation failed";
    case ErrorKind::InvalidArgument: return "invalid argument";
    case ErrorKind::KernelNotFound: return "kernel not found";
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::Format: return "format error";
    case ErrorKind::QuantConfig: return "quantization config error";
    case ErrorKind::UnsupportedDType: return "unsupported dtype";
    case ErrorKind::Unsupported: return "unsupported";
  }
  return "unknown error";
}

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

bool Error::is_transient() const {
  // Memory pressure and interrupted I/O can clear up; everything else is a fault of the input,
  // the program or the device state and fails the same way again.
  return kind_ == ErrorKind::Allocation || kind_ == ErrorKind::Io;
}

}  // namespace mlxn
