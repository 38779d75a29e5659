// Private to the Jinja engine: the syntax tree the parser builds and the interpreter walks, and
// the error type both use. Nodes are plain structs; one Expr/Stmt layout serves every kind.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

/// 1-based line and column (in bytes) in the template source.
struct Location {
  int line = 0;
  int column = 0;
};

/// A runtime error inside the engine; the interpreter attaches the line of the innermost node
/// being evaluated and Template::render turns it into mlxn::Error.
class RenderError : public std::runtime_error {
 public:
  explicit RenderError(const std::string& message) : std::runtime_error(message) {}
  int line = 0;
};

[[noreturn]] inline void fail(const std::string& message) {
  throw RenderError(message);
}

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

enum class ExprKind {
  Literal,    // literal
  Name,       // name
  List,       // items
  Tuple,      // items
  Dict,       // items: key, value, key, value, ...
  GetAttr,    // a.name
  GetItem,    // a[b]
  Slice,      // a[items[0] : items[1] : items[2]] (null parts omitted)
  Call,       // a(args)
  Filter,     // a | name(args); a is null for the body of {% filter %}
  Test,       // a is [not] name(args)
  Unary,      // op a (Neg, Pos)
  Binary,     // a op b (arithmetic and ~)
  And,        // a and b
  Or,         // a or b
  Not,        // not a
  Compare,    // a op0 items[0] op1 items[1] ... (chained)
  Condition,  // b if a else c (c may be null)
};

enum class Op { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat, Neg, Pos };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr {
  ExprKind kind;
  Location loc;
  Value literal;
  std::string name;
  Op op = Op::Add;
  bool negated = false;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<CompareOp> compare_ops;
  Arguments args;
};

/// Left side of an assignment: `x`, `a, b` (unpacking) or `ns.attr`.
struct Target {
  std::vector<std::string> names;
  bool unpack = false;
  std::string attr;  // set: names has one entry, the namespace
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

enum class StmtKind {
  Text,         // text
  Output,       // {{ expr }}
  If,           // branches (condition, body), else_body
  For,          // for target in expr [if filter]: body, else_body
  Set,          // set target = expr
  SetBlock,     // set target [| filter] %} body {% endset
  Macro,        // macro text(params): body
  CallBlock,    // call(params) expr: body (the body is caller())
  FilterBlock,  // filter expr (a Filter chain over the body): body
  With,         // with assignments: body
  Do,           // do expr
  Break,
  Continue,
};

struct Stmt {
  StmtKind kind;
  Location loc;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  std::vector<std::pair<Target, ExprPtr>> assignments;
};

/// A parsed template.
struct Program {
  std::string name;
  Body body;
};

}  // namespace mlxn::engine::jinja::detail
