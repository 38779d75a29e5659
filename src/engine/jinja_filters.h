// Private to the Jinja engine: the built-in filters (x | name(args)) and tests
// (x is name(args)), looked up by name. tojson follows transformers' override: no key sorting,
// no HTML escaping, ensure_ascii off.
#pragma once

#include <string_view>

#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
/// Applies a filter; RenderError when the name is unknown or the arguments do not fit.
Value apply_filter(std::string_view name, const Value& input, const CallArgs& args);
/// Applies a test; RenderError when the name is unknown or the arguments do not fit.
bool apply_test(std::string_view name, const Value& input, const CallArgs& args);

}  // namespace mlxn::engine::jinja::detail
