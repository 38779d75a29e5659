// Shape element counts and formatting.
#include "mlxn/core/shape.h"

#include <limits>

#include "mlxn/core/error.h"

namespace mlxn {

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) {
      throw Error(ErrorKind::InvalidArgument, "negative dimension in shape " + shape_to_string(shape));
    }
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) {
      throw Error(ErrorKind::InvalidArgument, "shape " + shape_to_string(shape) + " overflows");
    }
    n *= d;
  }
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace mlxn
