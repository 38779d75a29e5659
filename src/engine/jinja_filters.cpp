// Jinja's built-in filters with the semantics of jinja2.filters (3.1): what chat templates use
// (trim, length, tojson, selectattr, map, join, default, ...) and the common rest. Filters that
// stringify treat undefined as "", as Jinja's soft_str does.
#include "engine/jinja_filters.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "engine/jinja_ast.h"
#include "engine/jinja_ops.h"
#include "engine/jinja_strings.h"

namespace mlxn::engine::jinja::detail {

namespace {

using FilterFn = Value (*)(const Value& input, const CallArgs& args);

// ---- helpers ----

// Jinja's make_attrgetter: "a.b.0" walks items/attributes, digits index lists.
Value attribute_path(const Value& item, const std::string& path, const Value* fallback) {
  Value v = item;
  std::size_t begin = 0;
  while (begin <= path.size()) {
    std::size_t end = path.find('.', begin);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(begin, end - begin);
    if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos) {
      v = get_item(v, Value(static_cast<std::int64_t>(std::stoll(part))));
    } else {
      v = get_item(v, Value(part));
    }
    begin = end + 1;
  }
  if (v.is_undefined() && fallback) return *fallback;
  return v;
}

// Sort key: strings lower-cased unless case-sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(lower(v.as_string()));
  return v;
}

bool flag(const Params& p, std::size_t i) {
  return p[i] && p[i]->truthy();
}

std::string soft_str(const Value& v) {
  return v.str();
}

// The items with an optional attribute path applied.
Value::Array keyed(const Value::Array& items, const Value* attribute) {
  if (!attribute || attribute->is_none()) return items;
  const std::string& path = attribute->is_string() ? attribute->as_string() : attribute->str();
  Value::Array out;
  out.reserve(items.size());
  for (const Value& v : items) out.push_back(attribute_path(v, path, nullptr));
  return out;
}

CallArgs rest_args(const CallArgs& args, std::size_t skip) {
  CallArgs out;
  for (std::size_t i = skip; i < args.positional.size(); ++i)
    out.positional.push_back(args.positional[i]);
  out.keyword = args.keyword;
  return out;
}

// ---- filters ----

Value f_abs(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'abs'", {});
  require_defined(v);
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  const std::int64_t i = to_int(v, "abs input");
  if (i == INT64_MIN) fail("integer overflow in abs");
  return Value(i < 0 ? -i : i);
}

Value f_attr(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'attr'", {"name"});
  if (!p[0]) fail("filter 'attr' needs a name");
  return get_attr(v, to_str(*p[0], "attribute name"));
}

Value f_batch(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'batch'", {"linecount", "fill_with"});
  if (!p[0]) fail("filter 'batch' needs a line count");
  const std::int64_t n = to_int(*p[0], "batch size");
  if (n <= 0) fail("filter 'batch' needs a positive line count");
  Value::Array out, row;
  for (Value& item : iterate(v)) {
    row.push_back(std::move(item));
    if (static_cast<std::int64_t>(row.size()) == n) out.emplace_back(std::exchange(row, {}));
  }
  if (!row.empty()) {
    if (p[1] && !p[1]->is_none()) {
      while (static_cast<std::int64_t>(row.size()) < n) row.push_back(*p[1]);
    }
    out.emplace_back(std::move(row));
  }
  return Value(std::move(out));
}

Value f_capitalize(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'capitalize'", {});
  return Value(capitalize(soft_str(v)));
}

Value f_center(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'center'", {"width"});
  const std::string s = soft_str(v);
  const std::int64_t width = p[0] ? to_int(*p[0], "width") : 80;
  const auto len = static_cast<std::int64_t>(count_code_points(s));
  if (width <= len) return Value(s);
  const std::int64_t pad = width - len;
  const std::int64_t left = pad / 2 + (pad & width & 1);  // Python's str.center
  return Value(std::string(static_cast<std::size_t>(left), ' ') + s +
               std::string(static_cast<std::size_t>(pad - left), ' '));
}

Value f_default(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'default'", {"default_value", "boolean"});
  if (v.is_undefined() || (flag(p, 1) && !v.truthy())) return p[0] ? *p[0] : Value("");
  return v;
}

Value f_dictsort(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'dictsort'", {"case_sensitive", "by", "reverse"});
  if (!v.is_object()) fail("filter 'dictsort' needs a dict, not " + std::string(v.type_name()));
  const bool by_value = p[1] && p[1]->is_string() && p[1]->as_string() == "value";
  const bool cs = flag(p, 0);
  Value::Array items;
  for (const auto& [k, val] : v.as_object()) items.emplace_back(Value::Array{Value(k), val});
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const std::size_t i = by_value ? 1 : 0;
    return less_than(sort_key(a.as_array()[i], cs), sort_key(b.as_array()[i], cs));
  });
  if (flag(p, 2)) std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}

Value f_escape(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'escape'", {});
  return Value(html_escape(soft_str(v)));
}

Value f_first(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'first'", {});
  Value::Array items = iterate(v);
  if (items.empty()) return Value::undefined("no first item, the sequence is empty");
  return items.front();
}

Value f_last(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'last'", {});
  Value::Array items = iterate(v);
  if (items.empty()) return Value::undefined("no last item, the sequence is empty");
  return items.back();
}

// Python's float(str): surrounding whitespace allowed, the whole text must be a number.
std::optional<double> parse_float(const std::string& text) {
  const std::string s = strip(text, std::nullopt, true, true);
  if (s.empty()) return std::nullopt;
  std::string digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  char* end = nullptr;
  const double d = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size()) return std::nullopt;
  return d;
}

Value f_float(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'float'", {"default"});
  const Value fallback = p[0] ? *p[0] : Value(0.0);
  if (v.is_number()) return Value(v.as_number());
  if (v.is_string()) {
    if (auto d = parse_float(v.as_string())) return Value(*d);
  }
  return fallback;
}

Value f_format(const Value& v, const CallArgs& args) {
  if (!args.keyword.empty()) fail("filter 'format' with keyword arguments is not supported");
  return Value(percent_format(soft_str(v), Value(args.positional)));
}

Value f_indent(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'indent'", {"width", "first", "blank"});
  std::string indent = "    ";
  if (p[0]) {
    indent =
        p[0]->is_string()
            ? p[0]->as_string()
            : std::string(
                  static_cast<std::size_t>(std::max<std::int64_t>(0, to_int(*p[0], "width"))), ' ');
  }
  // Jinja appends a newline before splitting so that a trailing newline survives.
  const std::vector<std::string> lines = split_lines(soft_str(v) + "\n");
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (flag(p, 2) || !lines[i].empty()) out += indent;
    }
    out += lines[i];
  }
  if (flag(p, 1)) out = indent + out;
  return Value(std::move(out));
}

Value f_int(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'int'", {"default", "base"});
  const Value fallback = p[0] ? *p[0] : Value(std::int64_t{0});
  std::int64_t base = p[1] ? to_int(*p[1], "base") : 10;
  if (base != 0 && (base < 2 || base > 36)) fail("filter 'int': base must be 0 or 2..36");
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(std::int64_t{v.as_bool() ? 1 : 0});
  if (v.is_float()) {
    const double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value(static_cast<std::int64_t>(d));
  }
  if (!v.is_string()) return fallback;
  std::string s = strip(v.as_string(), std::nullopt, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  // Python accepts a 0b/0o/0x prefix that matches the base (or any of them for base 0).
  const std::size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (s.size() > sign + 2 && s[sign] == '0') {
    const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[sign + 1])));
    const int prefix_base = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 0;
    if (prefix_base != 0 && (base == 0 || base == prefix_base)) {
      s.erase(sign, 2);
      base = prefix_base;
    }
  }
  if (base == 0) base = 10;
  if (!s.empty()) {
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(s.c_str(), &end, static_cast<int>(base));
    if (end == s.c_str() + s.size() && errno == 0) return Value(static_cast<std::int64_t>(n));
  }
  // "42.23"|int is 42: Jinja retries through float.
  if (auto d = parse_float(v.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
    return Value(static_cast<std::int64_t>(*d));
  }
  return fallback;
}

Value f_items(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'items'", {});
  if (v.is_undefined()) return Value(Value::Array{});
  if (!v.is_object()) fail("filter 'items' needs a dict, not " + std::string(v.type_name()));
  Value::Array out;
  for (const auto& [k, val] : v.as_object()) out.emplace_back(Value::Array{Value(k), val});
  return Value(std::move(out));
}

Value f_join(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'join'", {"d", "attribute"});
  const std::string sep = p[0] ? soft_str(*p[0]) : "";
  std::string out;
  bool first = true;
  for (const Value& item : keyed(iterate(v), p[1])) {
    if (!first) out += sep;
    first = false;
    out += soft_str(item);
  }
  return Value(std::move(out));
}

Value f_length(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'length'", {});
  if (v.is_undefined()) return Value(std::int64_t{0});
  if (!v.is_string() && !v.is_array() && !v.is_object()) {
    fail(std::string("object of type '") + v.type_name() + "' has no len()");
  }
  return Value(static_cast<std::int64_t>(v.size()));
}

Value f_list(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'list'", {});
  return Value(iterate(v));
}

Value f_lower(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'lower'", {});
  return Value(lower(soft_str(v)));
}

Value f_map(const Value& v, const CallArgs& args) {
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, val] : args.keyword) {
    if (k == "attribute") attribute = &val;
    if (k == "default") fallback = &val;
  }
  Value::Array out;
  if (attribute) {
    const std::string& path = to_str(*attribute, "map attribute");
    for (const Value& item : iterate(v)) out.push_back(attribute_path(item, path, fallback));
    return Value(std::move(out));
  }
  if (args.positional.empty()) fail("filter 'map' needs a filter name or attribute=");
  const std::string& name = to_str(args.positional[0], "map filter name");
  const CallArgs rest = rest_args(args, 1);
  for (const Value& item : iterate(v)) out.push_back(apply_filter(name, item, rest));
  return Value(std::move(out));
}

template <bool Max>
Value f_minmax(const Value& v, const CallArgs& args) {
  Params p(args, Max ? "filter 'max'" : "filter 'min'", {"case_sensitive", "attribute"});
  const Value::Array items = iterate(v);
  const Value::Array keys = keyed(items, p[1]);
  if (items.empty()) return Value::undefined("no item, the sequence is empty");
  std::size_t best = 0;
  for (std::size_t i = 1; i < items.size(); ++i) {
    const Value a = sort_key(keys[i], flag(p, 0));
    const Value b = sort_key(keys[best], flag(p, 0));
    if (Max ? less_than(b, a) : less_than(a, b)) best = i;
  }
  return items[best];
}

Value f_replace(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'replace'", {"old", "new", "count"});
  if (!p[0] || !p[1]) fail("filter 'replace' needs the old and the new text");
  const std::int64_t count = p[2] && !p[2]->is_none() ? to_int(*p[2], "count") : -1;
  return Value(replace(soft_str(v), soft_str(*p[0]), soft_str(*p[1]), count));
}

Value f_reverse(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'reverse'", {});
  if (v.is_string()) {
    auto cps = code_points(v.as_string());
    std::string out;
    for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
    return Value(std::move(out));
  }
  Value::Array items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}

Value f_round(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'round'", {"precision", "method"});
  require_defined(v);
  if (!v.is_number()) fail("filter 'round' needs a number, not " + std::string(v.type_name()));
  const std::int64_t precision = p[0] ? to_int(*p[0], "precision") : 0;
  const std::string method = p[1] ? to_str(*p[1], "method") : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    fail("filter 'round': method must be 'common', 'ceil' or 'floor'");
  }
  const double x = v.as_number();
  if (method == "common") {
    // Python's round() keeps ints ints.
    if (!v.is_float()) {
      if (precision >= 0) return Value(static_cast<std::int64_t>(x));
      return Value(static_cast<std::int64_t>(round_half_even(x, static_cast<int>(precision))));
    }
    return Value(round_half_even(x, static_cast<int>(precision)));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  return Value((method == "ceil" ? std::ceil(x * scale) : std::floor(x * scale)) / scale);
}

// select/reject/selectattr/rejectattr share this: keep items whose (attribute) value passes the
// named test, or is truthy when no test is named.
Value select_items(const Value& v, const CallArgs& args, bool with_attribute, bool keep) {
  std::size_t skip = 0;
  std::string path;
  if (with_attribute) {
    if (args.positional.empty()) fail("selectattr/rejectattr need an attribute name");
    path = to_str(args.positional[0], "attribute name");
    skip = 1;
  }
  std::string test;
  if (args.positional.size() > skip) test = to_str(args.positional[skip], "test name");
  const CallArgs rest = rest_args(args, skip + 1);
  Value::Array out;
  for (const Value& item : iterate(v)) {
    const Value subject = with_attribute ? attribute_path(item, path, nullptr) : item;
    const bool pass = test.empty() ? subject.truthy() : apply_test(test, subject, rest);
    if (pass == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

Value f_select(const Value& v, const CallArgs& a) {
  return select_items(v, a, false, true);
}
Value f_reject(const Value& v, const CallArgs& a) {
  return select_items(v, a, false, false);
}
Value f_selectattr(const Value& v, const CallArgs& a) {
  return select_items(v, a, true, true);
}
Value f_rejectattr(const Value& v, const CallArgs& a) {
  return select_items(v, a, true, false);
}

Value f_safe(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'safe'", {});
  return v;
}

Value f_sort(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'sort'", {"reverse", "case_sensitive", "attribute"});
  Value::Array items = iterate(v);
  const Value::Array keys = keyed(items, p[2]);
  std::vector<std::size_t> order(items.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const bool cs = flag(p, 1);
  const bool rev = flag(p, 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Value ka = sort_key(keys[a], cs);
    const Value kb = sort_key(keys[b], cs);
    return rev ? less_than(kb, ka) : less_than(ka, kb);
  });
  Value::Array out;
  for (std::size_t i : order) out.push_back(items[i]);
  return Value(std::move(out));
}

Value f_string(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'string'", {});
  return Value(soft_str(v));
}

Value f_sum(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'sum'", {"attribute", "start"});
  Value total = p[1] ? *p[1] : Value(std::int64_t{0});
  for (const Value& item : keyed(iterate(v), p[0])) total = binary_op(Op::Add, total, item);
  return total;
}

Value f_title(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'title'", {});
  return Value(title_filter(soft_str(v)));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), in that parameter order.
Value f_tojson(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'tojson'", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonFormat format;
  format.ensure_ascii = flag(p, 0);
  if (p[1] && !p[1]->is_none()) format.indent = static_cast<int>(to_int(*p[1], "indent"));
  if (p[2] && !p[2]->is_none()) {
    if (!p[2]->is_array() || p[2]->as_array().size() != 2) {
      fail("filter 'tojson': separators must be an (item, key) pair");
    }
    format.item_separator = to_str(p[2]->as_array()[0], "item separator");
    format.key_separator = to_str(p[2]->as_array()[1], "key separator");
  }
  format.sort_keys = flag(p, 3);
  try {
    return Value(v.to_json(format));
  } catch (const std::exception& e) {
    fail(std::string("filter 'tojson': ") + e.what());
  }
}

Value f_trim(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'trim'", {"chars"});
  std::optional<std::string> chars;
  if (p[0] && !p[0]->is_none()) chars = to_str(*p[0], "chars");
  return Value(strip(soft_str(v), chars, true, true));
}

Value f_unique(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'unique'", {"case_sensitive", "attribute"});
  const Value::Array items = iterate(v);
  const Value::Array keys = keyed(items, p[1]);
  Value::Array seen, out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Value key = sort_key(keys[i], flag(p, 0));
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    out.push_back(items[i]);
  }
  return Value(std::move(out));
}

Value f_upper(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'upper'", {});
  return Value(upper(soft_str(v)));
}

// Words as Python's \w+ finds them: letters, digits, '_' and any non-ASCII letter.
Value f_wordcount(const Value& v, const CallArgs& args) {
  Params p(args, "filter 'wordcount'", {});
  const std::string s = soft_str(v);
  std::int64_t words = 0;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size();) {
    const char32_t c = decode_utf8(s, i);
    const bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '_' || (c > 0x7F && !is_space(c));
    if (word && !in_word) ++words;
    in_word = word;
  }
  return Value(words);
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_minmax<true>},
    {"min", f_minmax<false>},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

const FilterEntry* find_filter(std::string_view name) {
  for (const FilterEntry& f : kFilters) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace

bool has_filter(std::string_view name) {
  return find_filter(name) != nullptr;
}

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args) {
  const FilterEntry* f = find_filter(name);
  if (!f) fail("no filter named '" + std::string(name) + "'");
  return f->fn(input, args);
}

}  // namespace mlxn::engine::jinja::detail
