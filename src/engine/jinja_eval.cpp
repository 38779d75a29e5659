// The Jinja interpreter: walks the syntax tree, keeping Jinja's scoping -- {% set %} inside a
// for loop or macro stays there (hence namespace()), {% if %} opens no scope -- and its
// evaluation rules (short-circuit and/or returning operands, chained comparisons, loop.*).
#include "engine/jinja_eval.h"

#include <unordered_map>

#include "engine/jinja_filters.h"
#include "engine/jinja_ops.h"
#include "mlxn/core/error.h"

namespace mlxn::engine::jinja::detail {

namespace {

struct Frame;
using FramePtr = std::shared_ptr<Frame>;

// One scope: the root (context and top-level sets), a loop iteration, a macro call, a with.
struct Frame {
  explicit Frame(FramePtr parent_frame) : parent(std::move(parent_frame)) {}
  std::unordered_map<std::string, Value> vars;
  FramePtr parent;

  const Value* lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get()) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

// Macros and caller() hold their scope weakly: a frame that stores a macro must not be kept
// alive by it (that cycle would leak every render's context).
using WeakFrame = std::weak_ptr<Frame>;

constexpr int kMaxCallDepth = 200;

class Interpreter {
 public:
  explicit Interpreter(const Program& program) : program_(program) {}

  std::string run(const Value& context) {
    auto globals = std::make_shared<Frame>(nullptr);
    for (const auto& [name, fn] : global_functions()) globals->vars[name] = fn;
    auto root = std::make_shared<Frame>(globals);
    if (context.is_object()) {
      for (const auto& [name, value] : context.as_object()) root->vars[name] = value.deep_copy();
    } else if (!context.is_undefined()) {
      throw Error(ErrorKind::InvalidArgument, "template '" + program_.name +
                                                  "': the render context must be a dict, not " +
                                                  context.type_name());
    }
    std::string out;
    exec_body(program_.body, root, out);
    return out;
  }

 private:
  enum class Flow { Normal, Break, Continue };

  // ---- statements ----

  Flow exec_body(const Body& body, const FramePtr& frame, std::string& out) {
    for (const StmtPtr& s : body) {
      const Flow flow = exec(*s, frame, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const FramePtr& frame, std::string& out) {
    try {
      return exec_inner(s, frame, out);
    } catch (RenderError& e) {
      if (e.line == 0) e.line = s.loc.line;
      throw;
    } catch (const Error& e) {
      RenderError located(e.what());
      located.line = s.loc.line;
      throw located;
    }
  }

  Flow exec_inner(const Stmt& s, const FramePtr& frame, std::string& out) {
    switch (s.kind) {
      case StmtKind::Text:
        out += s.text;
        return Flow::Normal;
      case StmtKind::Output:
        out += eval(*s.expr, frame).str();
        return Flow::Normal;
      case StmtKind::If:
        for (const auto& [cond, body] : s.branches) {
          if (eval(*cond, frame).truthy()) return exec_body(body, frame, out);
        }
        return exec_body(s.else_body, frame, out);
      case StmtKind::For:
        return exec_for(s, frame, out);
      case StmtKind::Set:
        assign(s.target, eval(*s.expr, frame), *frame);
        return Flow::Normal;
      case StmtKind::SetBlock: {
        std::string text;
        exec_body(s.body, std::make_shared<Frame>(frame), text);
        Value v(std::move(text));
        if (s.filter) v = apply_filter_chain(*s.filter, std::move(v), frame);
        assign(s.target, std::move(v), *frame);
        return Flow::Normal;
      }
      case StmtKind::Macro:
        frame->vars[s.text] = make_macro(s, frame);
        return Flow::Normal;
      case StmtKind::CallBlock:
        out += exec_call_block(s, frame).str();
        return Flow::Normal;
      case StmtKind::FilterBlock: {
        std::string text;
        exec_body(s.body, std::make_shared<Frame>(frame), text);
        out += apply_filter_chain(*s.filter, Value(std::move(text)), frame).str();
        return Flow::Normal;
      }
      case StmtKind::With: {
        auto inner = std::make_shared<Frame>(frame);
        for (const auto& [target, expr] : s.assignments) assign(target, eval(*expr, frame), *inner);
        return exec_body(s.body, inner, out);
      }
      case StmtKind::Do:
        eval(*s.expr, frame);
        return Flow::Normal;
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s, const FramePtr& frame, std::string& out) {
    Value::Array items = iterate(eval(*s.expr, frame));
    if (s.filter) {
      // `for x in xs if cond`: the filter runs first, so loop.length counts what is kept.
      Value::Array kept;
      for (Value& item : items) {
        auto probe = std::make_shared<Frame>(frame);
        assign(s.target, item, *probe);
        if (eval(*s.filter, probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(s.else_body, frame, out);
    const auto n = static_cast<std::int64_t>(items.size());
    for (std::int64_t i = 0; i < n; ++i) {
      auto iteration = std::make_shared<Frame>(frame);
      assign(s.target, items[static_cast<std::size_t>(i)], *iteration);
      iteration->vars["loop"] = loop_object(items, i);
      if (exec_body(s.body, iteration, out) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  static Value loop_object(const Value::Array& items, std::int64_t i) {
    const auto n = static_cast<std::int64_t>(items.size());
    Object loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(std::int64_t{1}));
    loop.set("depth0", Value(std::int64_t{0}));
    if (i > 0) loop.set("previtem", items[static_cast<std::size_t>(i - 1)]);
    if (i + 1 < n) loop.set("nextitem", items[static_cast<std::size_t>(i + 1)]);
    loop.set("cycle", Value::function("loop.cycle", [i](const CallArgs& args) {
               if (args.positional.empty()) fail("loop.cycle() needs at least one value");
               return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
             }));
    return Value(std::move(loop));
  }

  void assign(const Target& t, Value value, Frame& frame) {
    if (!t.attr.empty()) {
      const Value* ns = frame.lookup(t.names.front());
      if (!ns || !ns->is_object() || !ns->as_object().is_namespace()) {
        fail("cannot assign attribute '" + t.attr + "' on '" + t.names.front() +
             "': it is not a namespace() object");
      }
      Value target = *ns;  // shares the namespace's storage
      target.as_object().set(t.attr, std::move(value));
      return;
    }
    if (!t.unpack) {
      frame.vars[t.names.front()] = std::move(value);
      return;
    }
    const Value::Array parts = iterate(value);
    if (parts.size() != t.names.size()) {
      fail("cannot unpack " + std::to_string(parts.size()) + " value(s) into " +
           std::to_string(t.names.size()) + " name(s)");
    }
    for (std::size_t i = 0; i < parts.size(); ++i) frame.vars[t.names[i]] = parts[i];
  }

  // ---- macros and calls ----

  struct DepthGuard {
    explicit DepthGuard(int& d) : depth(d) {
      if (++depth > kMaxCallDepth) {
        --depth;
        fail("macro calls nest too deep (more than " + std::to_string(kMaxCallDepth) + ")");
      }
    }
    ~DepthGuard() { --depth; }
    int& depth;
  };

  static FramePtr lock(const WeakFrame& weak, const std::string& what) {
    FramePtr f = weak.lock();
    if (!f) fail(what + " was called after the scope that defined it ended");
    return f;
  }

  // Binds arguments to parameters; unbound ones take their default (evaluated in the new
  // scope, so it may refer to earlier parameters) or stay undefined.
  void bind_params(const std::vector<MacroParam>& params, const CallArgs& args,
                   const std::string& what, const FramePtr& f) {
    Value::Array varargs;
    Object kwargs;
    for (std::size_t i = 0; i < args.positional.size(); ++i) {
      if (i < params.size()) {
        f->vars[params[i].name] = args.positional[i];
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    for (const auto& [key, value] : args.keyword) {
      std::size_t j = 0;
      while (j < params.size() && params[j].name != key) ++j;
      if (j < params.size()) {
        if (j < args.positional.size())
          fail(what + " got multiple values for argument '" + key + "'");
        f->vars[key] = value;
      } else if (key == "caller") {
        f->vars["caller"] = value;
      } else {
        kwargs.set(key, value);
      }
    }
    for (const MacroParam& p : params) {
      if (f->vars.count(p.name)) continue;
      f->vars[p.name] = p.default_value
                            ? eval(*p.default_value, f)
                            : Value::undefined(what + ": parameter '" + p.name + "' was not given");
    }
    f->vars["varargs"] = Value(std::move(varargs));
    f->vars["kwargs"] = Value(std::move(kwargs));
  }

  Value make_macro(const Stmt& s, const FramePtr& frame) {
    const Stmt* macro = &s;
    WeakFrame defining = frame;
    return Value::function(s.text, [this, macro, defining](const CallArgs& args) {
      const std::string what = "macro '" + macro->text + "'";
      DepthGuard guard(depth_);
      auto f = std::make_shared<Frame>(lock(defining, what));
      bind_params(macro->params, args, what, f);
      std::string out;
      exec_body(macro->body, f, out);
      return Value(std::move(out));
    });
  }

  Value exec_call_block(const Stmt& s, const FramePtr& frame) {
    const Expr& call = *s.expr;
    const Value callee = eval(*call.a, frame);
    CallArgs args = eval_args(call.args, frame);
    const Stmt* block = &s;
    WeakFrame site = frame;
    args.keyword.emplace_back("caller",
                              Value::function("caller", [this, block, site](const CallArgs& cargs) {
                                DepthGuard guard(depth_);
                                auto f = std::make_shared<Frame>(lock(site, "caller()"));
                                bind_params(block->params, cargs, "caller()", f);
                                std::string out;
                                exec_body(block->body, f, out);
                                return Value(std::move(out));
                              }));
    return invoke(callee, args);
  }

  static Value invoke(const Value& callee, const CallArgs& args) {
    if (callee.is_function()) return callee.as_function().fn(args);
    if (callee.is_undefined()) {
      fail(callee.undefined_hint().empty() ? "an undefined value was called"
                                           : callee.undefined_hint());
    }
    fail(std::string("'") + callee.type_name() + "' object is not callable");
  }

  CallArgs eval_args(const Arguments& a, const FramePtr& frame) {
    CallArgs args;
    args.positional.reserve(a.positional.size());
    for (const ExprPtr& e : a.positional) args.positional.push_back(eval(*e, frame));
    for (const auto& [key, e] : a.keyword) args.keyword.emplace_back(key, eval(*e, frame));
    return args;
  }

  // A Filter chain whose innermost input is null applied to `input` ({% filter %}, set blocks).
  Value apply_filter_chain(const Expr& e, Value input, const FramePtr& frame) {
    if (e.kind != ExprKind::Filter) return input;
    Value inner = e.a ? apply_filter_chain(*e.a, std::move(input), frame) : std::move(input);
    return apply_filter(e.name, inner, eval_args(e.args, frame));
  }

  // ---- expressions ----

  Value eval(const Expr& e, const FramePtr& frame) {
    try {
      return eval_inner(e, frame);
    } catch (RenderError& err) {
      if (err.line == 0) err.line = e.loc.line;
      throw;
    } catch (const Error& err) {
      RenderError located(err.what());
      located.line = e.loc.line;
      throw located;
    }
  }

  bool compare(CompareOp op, const Value& a, const Value& b) {
    switch (op) {
      case CompareOp::Eq:
        return a == b;
      case CompareOp::Ne:
        return a != b;
      case CompareOp::Lt:
        return less_than(a, b);
      case CompareOp::Le:
        return !less_than(b, a);
      case CompareOp::Gt:
        return less_than(b, a);
      case CompareOp::Ge:
        return !less_than(a, b);
      case CompareOp::In:
        return contains(b, a);
      case CompareOp::NotIn:
        return !contains(b, a);
    }
    return false;
  }

  Value eval_inner(const Expr& e, const FramePtr& frame) {
    switch (e.kind) {
      case ExprKind::Literal:
        return e.literal;
      case ExprKind::Name: {
        if (const Value* v = frame->lookup(e.name)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case ExprKind::List:
      case ExprKind::Tuple: {
        Value::Array items;
        items.reserve(e.items.size());
        for (const ExprPtr& item : e.items) items.push_back(eval(*item, frame));
        return Value(std::move(items));
      }
      case ExprKind::Dict: {
        Object obj;
        for (std::size_t i = 0; i + 1 < e.items.size(); i += 2) {
          const Value key = eval(*e.items[i], frame);
          require_defined(key);
          obj.set(key.str(), eval(*e.items[i + 1], frame));
        }
        return Value(std::move(obj));
      }
      case ExprKind::GetAttr:
        return get_attr(eval(*e.a, frame), e.name);
      case ExprKind::GetItem:
        return get_item(eval(*e.a, frame), eval(*e.b, frame));
      case ExprKind::Slice: {
        auto part = [&](const ExprPtr& p) { return p ? eval(*p, frame) : Value::none(); };
        return slice(eval(*e.a, frame), part(e.items[0]), part(e.items[1]), part(e.items[2]));
      }
      case ExprKind::Call: {
        const Value callee = eval(*e.a, frame);
        return invoke(callee, eval_args(e.args, frame));
      }
      case ExprKind::Filter:
        return apply_filter(e.name, eval(*e.a, frame), eval_args(e.args, frame));
      case ExprKind::Test:
        return Value(apply_test(e.name, eval(*e.a, frame), eval_args(e.args, frame)) != e.negated);
      case ExprKind::Unary:
        return unary_op(e.op, eval(*e.a, frame));
      case ExprKind::Binary: {
        const Value a = eval(*e.a, frame);
        const Value b = eval(*e.b, frame);
        if (e.op == Op::Concat) return Value(a.str() + b.str());
        return binary_op(e.op, a, b);
      }
      case ExprKind::And: {
        Value a = eval(*e.a, frame);
        return a.truthy() ? eval(*e.b, frame) : a;
      }
      case ExprKind::Or: {
        Value a = eval(*e.a, frame);
        return a.truthy() ? a : eval(*e.b, frame);
      }
      case ExprKind::Not:
        return Value(!eval(*e.a, frame).truthy());
      case ExprKind::Compare: {
        Value left = eval(*e.a, frame);
        for (std::size_t i = 0; i < e.compare_ops.size(); ++i) {
          Value right = eval(*e.items[i], frame);
          if (!compare(e.compare_ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::Condition:
        if (eval(*e.a, frame).truthy()) return eval(*e.b, frame);
        if (e.c) return eval(*e.c, frame);
        return Value::undefined("the inline if-expression was false and has no else part");
    }
    return Value();
  }

  const Program& program_;
  int depth_ = 0;
};

}  // namespace

std::string render_program(const Program& program, const Value& context) {
  return Interpreter(program).run(context);
}

}  // namespace mlxn::engine::jinja::detail
