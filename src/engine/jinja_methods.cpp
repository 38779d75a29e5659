// The Python methods templates call on values ('x'.strip(), s.split(','), d.items(),
// d.get(k), xs.append(x), ...) and the global functions of the chat-template environment.
#include <chrono>
#include <ctime>
#include <stdexcept>

#include "engine/jinja_ops.h"
#include "engine/jinja_strings.h"

namespace mlxn::engine::jinja::detail {

namespace {

using Method = Value (*)(const Value& self, const CallArgs& args);

std::optional<std::string> optional_chars(const Params& p, std::size_t i) {
  const Value* v = p[i];
  if (!v || v->is_none() || v->is_undefined()) return std::nullopt;
  return to_str(*v, p.callee() + " argument");
}

template <bool Left, bool Right>
Value str_strip(const Value& self, const CallArgs& args) {
  Params p(args, "str.strip()", {"chars"});
  return Value(strip(self.as_string(), optional_chars(p, 0), Left, Right));
}

template <bool FromRight>
Value str_split(const Value& self, const CallArgs& args) {
  Params p(args, FromRight ? "str.rsplit()" : "str.split()", {"sep", "maxsplit"});
  const std::int64_t maxsplit = p[1] ? to_int(*p[1], "maxsplit") : -1;
  std::vector<std::string> parts;
  try {
    parts = split(self.as_string(), optional_chars(p, 0), maxsplit, FromRight);
  } catch (const std::invalid_argument&) {
    fail(p.callee() + ": empty separator");
  }
  Value::Array out;
  for (auto& s : parts) out.emplace_back(std::move(s));
  return Value(std::move(out));
}

Value str_splitlines(const Value& self, const CallArgs& args) {
  Params p(args, "str.splitlines()", {});
  Value::Array out;
  for (auto& s : split_lines(self.as_string())) out.emplace_back(std::move(s));
  return Value(std::move(out));
}

// startswith/endswith take one string or a tuple (list) of strings.
template <bool Start>
Value str_affix(const Value& self, const CallArgs& args) {
  Params p(args, Start ? "str.startswith()" : "str.endswith()", {"prefix"});
  if (!p[0]) fail(p.callee() + " needs an argument");
  const std::string& s = self.as_string();
  auto test = [&](const Value& v) {
    const std::string& a = to_str(v, p.callee() + " argument");
    if (a.size() > s.size()) return false;
    return Start ? s.compare(0, a.size(), a) == 0
                 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (p[0]->is_array()) {
    for (const Value& v : p[0]->as_array()) {
      if (test(v)) return Value(true);
    }
    return Value(false);
  }
  return Value(test(*p[0]));
}

Value str_upper(const Value& self, const CallArgs& args) {
  Params p(args, "str.upper()", {});
  return Value(upper(self.as_string()));
}
Value str_lower(const Value& self, const CallArgs& args) {
  Params p(args, "str.lower()", {});
  return Value(lower(self.as_string()));
}
Value str_title(const Value& self, const CallArgs& args) {
  Params p(args, "str.title()", {});
  return Value(title_method(self.as_string()));
}
Value str_capitalize(const Value& self, const CallArgs& args) {
  Params p(args, "str.capitalize()", {});
  return Value(capitalize(self.as_string()));
}

Value str_replace(const Value& self, const CallArgs& args) {
  Params p(args, "str.replace()", {"old", "new", "count"});
  if (!p[0] || !p[1]) fail("str.replace() needs the old and the new text");
  const std::int64_t count = p[2] ? to_int(*p[2], "count") : -1;
  return Value(replace(self.as_string(), to_str(*p[0], "old"), to_str(*p[1], "new"), count));
}

// find/rfind return a code point index, as Python does.
template <bool FromRight>
Value str_find(const Value& self, const CallArgs& args) {
  Params p(args, FromRight ? "str.rfind()" : "str.find()", {"sub"});
  if (!p[0]) fail(p.callee() + " needs an argument");
  const std::string& s = self.as_string();
  const std::string& sub = to_str(*p[0], "sub");
  const std::size_t hit = FromRight ? s.rfind(sub) : s.find(sub);
  if (hit == std::string::npos) return Value(std::int64_t{-1});
  return Value(static_cast<std::int64_t>(count_code_points(std::string_view(s).substr(0, hit))));
}

Value str_count(const Value& self, const CallArgs& args) {
  Params p(args, "str.count()", {"sub"});
  if (!p[0]) fail("str.count() needs an argument");
  return Value(static_cast<std::int64_t>(
      count_occurrences(self.as_string(), to_str(*p[0], "str.count() argument"))));
}

Value str_join(const Value& self, const CallArgs& args) {
  Params p(args, "str.join()", {"iterable"});
  if (!p[0]) fail("str.join() needs an argument");
  std::string out;
  bool first = true;
  for (const Value& v : iterate(*p[0])) {
    if (!first) out += self.as_string();
    first = false;
    out += to_str(v, "str.join() item");
  }
  return Value(std::move(out));
}

// str.format with {}, {0} and {name} fields; format specs are not supported.
Value str_format(const Value& self, const CallArgs& args) {
  const std::string& f = self.as_string();
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if ((c == '{' || c == '}') && i + 1 < f.size() && f[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const std::size_t close = f.find('}', i);
    if (close == std::string::npos) fail("str.format(): single '{' in format string");
    const std::string field = f.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) {
      fail("str.format(): format specs and conversions are not supported");
    }
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index < args.positional.size()) v = &args.positional[auto_index];
      ++auto_index;
    } else if (field.find_first_not_of("0123456789") == std::string::npos) {
      const std::size_t k = std::stoul(field);
      if (k < args.positional.size()) v = &args.positional[k];
    } else {
      for (const auto& [key, value] : args.keyword) {
        if (key == field) v = &value;
      }
    }
    if (!v) fail("str.format(): no argument for field {" + field + "}");
    out += v->str();
    i = close;
  }
  return Value(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value str_is(const Value& self, const CallArgs& args) {
  Params p(args, "str.is...()", {});
  const std::string& s = self.as_string();
  if (s.empty()) return Value(false);
  for (std::size_t i = 0; i < s.size();) {
    if (!Pred(decode_utf8(s, i))) return Value(false);
  }
  return Value(true);
}
bool digit_cp(char32_t c) {
  return c >= '0' && c <= '9';
}
bool alpha_cp(char32_t c) {
  return is_cased_letter(c) || (c > 0x7F && !is_space(c));
}
bool alnum_cp(char32_t c) {
  return digit_cp(c) || alpha_cp(c);
}

template <bool Upper>
Value str_is_case(const Value& self, const CallArgs& args) {
  Params p(args, Upper ? "str.isupper()" : "str.islower()", {});
  bool cased = false;
  const std::string& s = self.as_string();
  for (std::size_t i = 0; i < s.size();) {
    const char32_t c = decode_utf8(s, i);
    if (!is_cased_letter(c)) continue;
    cased = true;
    if (Upper ? to_upper(c) != c : to_lower(c) != c) return Value(false);
  }
  return Value(cased);
}

template <bool Prefix>
Value str_remove_affix(const Value& self, const CallArgs& args) {
  Params p(args, Prefix ? "str.removeprefix()" : "str.removesuffix()", {"affix"});
  if (!p[0]) fail(p.callee() + " needs an argument");
  const std::string& s = self.as_string();
  const std::string& a = to_str(*p[0], p.callee() + " argument");
  if (a.size() <= s.size()) {
    if (Prefix && s.compare(0, a.size(), a) == 0) return Value(s.substr(a.size()));
    if (!Prefix && s.compare(s.size() - a.size(), a.size(), a) == 0) {
      return Value(s.substr(0, s.size() - a.size()));
    }
  }
  return self;
}

// ---- list methods (lists are shared, so these mutate what every holder sees) ----

Value list_append(const Value& self, const CallArgs& args) {
  Params p(args, "list.append()", {"item"});
  if (!p[0]) fail("list.append() needs an argument");
  Value target = self;
  target.as_array().push_back(*p[0]);
  return Value::none();
}

Value list_extend(const Value& self, const CallArgs& args) {
  Params p(args, "list.extend()", {"iterable"});
  if (!p[0]) fail("list.extend() needs an argument");
  Value target = self;
  for (Value& v : iterate(*p[0])) target.as_array().push_back(std::move(v));
  return Value::none();
}

Value list_pop(const Value& self, const CallArgs& args) {
  Params p(args, "list.pop()", {"index"});
  Value target = self;
  auto& items = target.as_array();
  if (items.empty()) fail("pop from empty list");
  std::int64_t i = p[0] ? to_int(*p[0], "index") : -1;
  if (i < 0) i += static_cast<std::int64_t>(items.size());
  if (i < 0 || i >= static_cast<std::int64_t>(items.size())) fail("pop index out of range");
  Value out = items[static_cast<std::size_t>(i)];
  items.erase(items.begin() + i);
  return out;
}

Value list_insert(const Value& self, const CallArgs& args) {
  Params p(args, "list.insert()", {"index", "item"});
  if (!p[0] || !p[1]) fail("list.insert() needs an index and an item");
  Value target = self;
  auto& items = target.as_array();
  const auto n = static_cast<std::int64_t>(items.size());
  std::int64_t i = to_int(*p[0], "index");
  if (i < 0) i = std::max<std::int64_t>(0, i + n);
  items.insert(items.begin() + std::min(i, n), *p[1]);
  return Value::none();
}

Value list_index(const Value& self, const CallArgs& args) {
  Params p(args, "list.index()", {"item"});
  if (!p[0]) fail("list.index() needs an argument");
  const auto& items = self.as_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i] == *p[0]) return Value(static_cast<std::int64_t>(i));
  }
  fail(p[0]->repr() + " is not in list");
}

Value list_count(const Value& self, const CallArgs& args) {
  Params p(args, "list.count()", {"item"});
  if (!p[0]) fail("list.count() needs an argument");
  std::int64_t n = 0;
  for (const Value& v : self.as_array()) n += v == *p[0] ? 1 : 0;
  return Value(n);
}

// ---- dict methods ----

Value dict_items(const Value& self, const CallArgs& args) {
  Params p(args, "dict.items()", {});
  Value::Array out;
  for (const auto& [k, v] : self.as_object()) out.emplace_back(Value::Array{Value(k), v});
  return Value(std::move(out));
}

Value dict_keys(const Value& self, const CallArgs& args) {
  Params p(args, "dict.keys()", {});
  Value::Array out;
  for (const auto& [k, v] : self.as_object()) out.emplace_back(k);
  return Value(std::move(out));
}

Value dict_values(const Value& self, const CallArgs& args) {
  Params p(args, "dict.values()", {});
  Value::Array out;
  for (const auto& [k, v] : self.as_object()) out.push_back(v);
  return Value(std::move(out));
}

Value dict_get(const Value& self, const CallArgs& args) {
  Params p(args, "dict.get()", {"key", "default"});
  if (!p[0]) fail("dict.get() needs a key");
  if (p[0]->is_string()) {
    if (const Value* v = self.as_object().find(p[0]->as_string())) return *v;
  }
  return p[1] ? *p[1] : Value::none();
}

struct MethodEntry {
  Value::Kind kind;
  std::string_view name;
  Method method;
};

constexpr MethodEntry kMethods[] = {
    {Value::Kind::String, "strip", str_strip<true, true>},
    {Value::Kind::String, "lstrip", str_strip<true, false>},
    {Value::Kind::String, "rstrip", str_strip<false, true>},
    {Value::Kind::String, "split", str_split<false>},
    {Value::Kind::String, "rsplit", str_split<true>},
    {Value::Kind::String, "splitlines", str_splitlines},
    {Value::Kind::String, "startswith", str_affix<true>},
    {Value::Kind::String, "endswith", str_affix<false>},
    {Value::Kind::String, "upper", str_upper},
    {Value::Kind::String, "lower", str_lower},
    {Value::Kind::String, "title", str_title},
    {Value::Kind::String, "capitalize", str_capitalize},
    {Value::Kind::String, "replace", str_replace},
    {Value::Kind::String, "find", str_find<false>},
    {Value::Kind::String, "rfind", str_find<true>},
    {Value::Kind::String, "count", str_count},
    {Value::Kind::String, "join", str_join},
    {Value::Kind::String, "format", str_format},
    {Value::Kind::String, "isdigit", str_is<digit_cp>},
    {Value::Kind::String, "isalpha", str_is<alpha_cp>},
    {Value::Kind::String, "isalnum", str_is<alnum_cp>},
    {Value::Kind::String, "isspace", str_is<is_space>},
    {Value::Kind::String, "isupper", str_is_case<true>},
    {Value::Kind::String, "islower", str_is_case<false>},
    {Value::Kind::String, "removeprefix", str_remove_affix<true>},
    {Value::Kind::String, "removesuffix", str_remove_affix<false>},
    {Value::Kind::Array, "append", list_append},
    {Value::Kind::Array, "extend", list_extend},
    {Value::Kind::Array, "pop", list_pop},
    {Value::Kind::Array, "insert", list_insert},
    {Value::Kind::Array, "index", list_index},
    {Value::Kind::Array, "count", list_count},
    {Value::Kind::Object, "items", dict_items},
    {Value::Kind::Object, "keys", dict_keys},
    {Value::Kind::Object, "values", dict_values},
    {Value::Kind::Object, "get", dict_get},
};

// ---- globals ----

Value global_range(const CallArgs& args) {
  if (!args.keyword.empty()) fail("range() takes no keyword arguments");
  const auto& a = args.positional;
  if (a.empty() || a.size() > 3) fail("range() takes 1 to 3 arguments");
  std::int64_t start = 0, stop = 0, step = 1;
  if (a.size() == 1) {
    stop = to_int(a[0], "range() argument");
  } else {
    start = to_int(a[0], "range() argument");
    stop = to_int(a[1], "range() argument");
    if (a.size() == 3) step = to_int(a[2], "range() argument");
  }
  if (step == 0) fail("range() step must not be zero");
  constexpr std::int64_t kMaxRange = 100000;  // as Jinja's sandbox limits it
  Value::Array out;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<std::int64_t>(out.size()) >= kMaxRange) {
      fail("range() is too large (more than 100000 items)");
    }
    out.emplace_back(i);
  }
  return Value(std::move(out));
}

// dict(mapping or pairs, **kwargs) and namespace(...), which takes the same arguments.
Value make_dict(const CallArgs& args, const char* callee) {
  if (args.positional.size() > 1)
    fail(std::string(callee) + " takes at most 1 positional argument");
  Object out;
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_object()) {
      for (const auto& [k, v] : src.as_object()) out.set(k, v);
    } else {
      for (const Value& pair : iterate(src)) {
        if (!pair.is_array() || pair.as_array().size() != 2) {
          fail(std::string(callee) + ": each item must be a (key, value) pair");
        }
        out.set(to_str(pair.as_array()[0], std::string(callee) + " key"), pair.as_array()[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) out.set(k, v);
  return Value(std::move(out));
}

Value global_dict(const CallArgs& args) {
  return make_dict(args, "dict()");
}

Value global_namespace(const CallArgs& args) {
  Value ns = make_dict(args, "namespace()");
  ns.as_object().set_namespace(true);
  return ns;
}

// joiner(sep): a function returning "" on its first call and sep afterwards.
Value global_joiner(const CallArgs& args) {
  Params p(args, "joiner()", {"sep"});
  const std::string sep = p[0] ? to_str(*p[0], "joiner() separator") : ", ";
  auto used = std::make_shared<bool>(false);
  return Value::function("joiner", [sep, used](const CallArgs&) {
    if (!*used) {
      *used = true;
      return Value("");
    }
    return Value(sep);
  });
}

Value global_raise_exception(const CallArgs& args) {
  Params p(args, "raise_exception()", {"message"});
  fail(p[0] ? p[0]->str() : "raise_exception() called");
}

// Local time formatted with C strftime, as transformers' strftime_now uses datetime.now().
Value global_strftime_now(const CallArgs& args) {
  Params p(args, "strftime_now()", {"format"});
  if (!p[0]) fail("strftime_now() needs a format");
  const std::string& fmt = to_str(*p[0], "strftime_now() format");
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  std::string buf(256 + fmt.size() * 8, '\0');
  const std::size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &local);
  if (n == 0 && !fmt.empty()) fail("strftime_now(): the formatted date is empty or too long");
  buf.resize(n);
  return Value(std::move(buf));
}

}  // namespace

Value bound_method(const Value& obj, std::string_view name) {
  for (const MethodEntry& m : kMethods) {
    if (m.kind == obj.kind() && m.name == name) {
      return Value::function(
          std::string(obj.type_name()) + "." + std::string(name),
          [self = obj, method = m.method](const CallArgs& args) { return method(self, args); });
    }
  }
  return Value();
}

const Object& global_functions() {
  static const Object globals = [] {
    Object g;
    g.set("range", Value::function("range", global_range));
    g.set("dict", Value::function("dict", global_dict));
    g.set("namespace", Value::function("namespace", global_namespace));
    g.set("joiner", Value::function("joiner", global_joiner));
    g.set("raise_exception", Value::function("raise_exception", global_raise_exception));
    g.set("strftime_now", Value::function("strftime_now", global_strftime_now));
    return g;
  }();
  return globals;
}

}  // namespace mlxn::engine::jinja::detail
