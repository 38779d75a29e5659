// Private to the Jinja engine: builds the syntax tree from tokens with Jinja's grammar and
// operator precedence; syntax errors name the template, line, column and what was expected.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "engine/jinja_ast.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

/// Parses a whole template. Throws Error(Format) on syntax errors, unknown tags, filters and
/// tests, and loop controls outside loops.
std::shared_ptr<const Program> parse_program(std::string_view source, std::string name,
                                             const Options& options);

}  // namespace mlxn::engine::jinja::detail
