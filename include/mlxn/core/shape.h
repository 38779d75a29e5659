// Shape: tensor dimensions, with overflow-checked element counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mlxn {

/// Dimensions, outermost first (row-major).
using Shape = std::vector<std::int64_t>;

/// Product of the dimensions; throws InvalidArgument on a negative dimension or overflow.
std::int64_t shape_numel(const Shape& shape);

/// "[2, 3, 4]".
std::string shape_to_string(const Shape& shape);

}  // namespace mlxn
