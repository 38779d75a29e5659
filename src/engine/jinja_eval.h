// Private to the Jinja engine: the interpreter that renders a parsed template.
#pragma once

#include <string>

#include "engine/jinja_ast.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

/// Renders `program` with the variables of `context` (a dict, or undefined for none). Throws
/// RenderError carrying the line of the innermost node that failed.
std::string render_program(const Program& program, const Value& context);

}  // namespace mlxn::engine::jinja::detail
