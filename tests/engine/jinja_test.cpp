// The Jinja engine feature by feature: whitespace control, literals, operators, access, filters,
// tests, statements, macros, values and JSON, and the errors for bad templates. Expected
// strings follow Jinja2's documented semantics (and Python's for str()/repr()/json.dumps).
#include "mlxn/engine/jinja.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "mlxn/core/error.h"

namespace mlxn::engine::jinja {
namespace {

std::string render(std::string_view source, std::string_view context_json = "{}",
                   const Options& options = {}) {
  return Template::parse(source, "test", options).render(Value::from_json_text(context_json));
}

Options chat_options() {
  Options o;
  o.trim_blocks = true;
  o.lstrip_blocks = true;
  return o;
}

// The message of the mlxn::Error that `fn` throws, checking its kind.
template <typename F>
std::string error_of(F&& fn, ErrorKind kind) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error was thrown";
  return "";
}

std::string parse_error(std::string_view source) {
  return error_of([&] { Template::parse(source, "bad.jinja"); }, ErrorKind::Format);
}

std::string render_error(std::string_view source, std::string_view context = "{}") {
  return error_of([&] { render(source, context); }, ErrorKind::InvalidArgument);
}

// ---- text, comments, whitespace control ----

TEST(Jinja, PlainTextAndOutput) {
  EXPECT_EQ(render("plain text"), "plain text");
  EXPECT_EQ(render("a{{ x }}b", R"({"x": "X"})"), "aXb");
  EXPECT_EQ(render("a{# a comment {{ x }} #}b"), "ab");
  EXPECT_EQ(render(""), "");
}

TEST(Jinja, TrailingNewlineIsDroppedUnlessKept) {
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
  Options keep;
  keep.keep_trailing_newline = true;
  EXPECT_EQ(render("x\n", "{}", keep), "x\n");
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(Jinja, MinusStripsWhitespaceAroundTags) {
  EXPECT_EQ(render("a   {{- 'b' -}}   c"), "abc");
  EXPECT_EQ(render("a \n {%- if true -%} \n b \n {%- endif -%} \n c"), "abc");
  EXPECT_EQ(render("x  {#- c -#}  y"), "xy");
}

TEST(Jinja, TrimBlocksRemovesOneNewlineAfterBlockTags) {
  Options trim;
  trim.trim_blocks = true;
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny", "{}", trim), "x\ny");
  EXPECT_EQ(render("{% if true %}\n\nx{% endif %}", "{}", trim), "\nx");
  // Not after {{ }}; and "+%}" keeps the newline.
  EXPECT_EQ(render("{{ 'a' }}\nb", "{}", trim), "a\nb");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}", "{}", trim), "\nx");
  EXPECT_EQ(render("{# c #}\nx", "{}", trim), "x");
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny"), "\nx\n\ny");
}

TEST(Jinja, LstripBlocksRemovesIndentationBeforeBlockTags) {
  EXPECT_EQ(render("a\n    {% if true %}\n    b\n    {% endif %}\nc", "{}", chat_options()),
            "a\n    b\nc");
  Options lstrip;
  lstrip.lstrip_blocks = true;
  EXPECT_EQ(render("  {% if true %}x{% endif %}", "{}", lstrip), "x");
  // Only whitespace between the line start and the tag is removed, and never before {{ }}.
  EXPECT_EQ(render("a {% if true %}x{% endif %}", "{}", lstrip), "a x");
  EXPECT_EQ(render("  {{ 'x' }}", "{}", lstrip), "  x");
  // "{%+" opts out.
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}", "{}", lstrip), "  x");
  EXPECT_EQ(render("  {# c #}x", "{}", lstrip), "x");
}

TEST(Jinja, Raw) {
  EXPECT_EQ(render("{% raw %}{{ not parsed }} {% if %}{% endraw %}"), "{{ not parsed }} {% if %}");
  EXPECT_EQ(render("<{%- raw -%}  {{ x }}  {%- endraw -%}  >"), "<{{ x }}>");
}

// ---- literals and operators ----

TEST(Jinja, Literals) {
  EXPECT_EQ(render("{{ none }} {{ None }} {{ true }} {{ True }} {{ false }} {{ False }}"),
            "None None True True False False");
  EXPECT_EQ(render("{{ 42 }} {{ 1_000 }} {{ 1.5 }} {{ 1e3 }} {{ 2.5e-3 }}"),
            "42 1000 1.5 1000.0 0.0025");
  EXPECT_EQ(render(R"({{ 'a\nb' }}|{{ "it's" }}|{{ 'x\\y' }}|{{ '\u00e9\x41' }}|{{ 'a' "b" }})"),
            "a\nb|it's|x\\y|\xC3\xA9"
            "A|ab");
  EXPECT_EQ(render("{{ [1, 'a', none] }} {{ {'k': 1, 'j': [true]} }} {{ (1, 2)|list }}"),
            "[1, 'a', None] {'k': 1, 'j': [True]} [1, 2]");
  EXPECT_EQ(render("{{ [1, 2,] }}{{ {'a': 1,} }}"), "[1, 2]{'a': 1}");
}

TEST(Jinja, Arithmetic) {
  EXPECT_EQ(
      render("{{ 1 + 2 }} {{ 2 * 3 - 1 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}"),
      "3 5 3 -4 1 2");
  EXPECT_EQ(
      render("{{ 1 / 2 }} {{ 4 / 2 }} {{ 1.5 + 1 }} {{ 7.5 // 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
      "0.5 2.0 2.5 3.0 1024 0.5");
  // Jinja's ** is left-associative, unlike Python's.
  EXPECT_EQ(render("{{ 2 ** 3 ** 2 }}"), "64");
  EXPECT_EQ(render("{{ -3 }} {{ - 2 + 5 }} {{ +4 }} {{ 'ab' * 2 }} {{ [0] * 3 }} {{ [1] + [2] }}"),
            "-3 3 4 abab [0, 0, 0] [1, 2]");
  EXPECT_EQ(render("{{ 'n=' ~ 3 ~ true ~ none ~ missing ~ 1.5 }}"), "n=3TrueNone1.5");
  EXPECT_EQ(render("{{ true + 1 }}"), "2");
}

TEST(Jinja, FloatsPrintLikePython) {
  EXPECT_EQ(render("{{ 0.1 + 0.2 }}"), "0.30000000000000004");
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 1/7 }}"),
            "1e+16 1000000000000000.0 0.0001 1e-05 -0.0 0.14285714285714285");
  EXPECT_EQ(render("{{ 123456789.0 }} {{ 2.5e-300 }} {{ 1.5e300 }}"),
            "123456789.0 2.5e-300 1.5e+300");
}

TEST(Jinja, ComparisonsAndLogic) {
  EXPECT_EQ(
      render("{{ 1 < 2 }}{{ 2 <= 1 }}{{ 'a' == 'a' }}{{ 'a' != 'a' }}{{ 3 > 2 }}{{ 1 >= 1 }}"),
      "TrueFalseTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}"),
            "True False True True");
  EXPECT_EQ(
      render("{{ 1 == 1.0 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}"),
      "True True True True");
  // and/or return an operand, as in Python.
  EXPECT_EQ(
      render("{{ true and false }} {{ 0 or 'x' }} {{ 'a' and 'b' }} {{ none or [] }} {{ not 0 }}"),
      "False x b [] True");
  EXPECT_EQ(render("{{ not (1 == 2) }} {{ not 1 == 2 }}"), "True True");
}

TEST(Jinja, Membership) {
  const char* ctx = R"({"d": {"k": 1}})";
  EXPECT_EQ(render("{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'q' not in d }}", ctx),
            "TrueTrueTrueTrue");
  EXPECT_EQ(render("{{ not 'k' in d }}{{ 'x' in missing }}", ctx), "FalseFalse");
}

TEST(Jinja, ConditionalExpression) {
  EXPECT_EQ(render("{{ 'yes' if flag else 'no' }}", R"({"flag": true})"), "yes");
  EXPECT_EQ(render("[{{ 'a' if false }}]"), "[]");
  EXPECT_EQ(render("{{ 1 if 0 else 2 if 0 else 3 }}"), "3");
}

TEST(Jinja, StringFormattingOperator) {
  EXPECT_EQ(render("{{ '%s is %d' % ('x', 3) }}|{{ '%05.1f|%-4s|%x' % (3.14159, 'ab', 255) }}"),
            "x is 3|003.1|ab  |ff");
  EXPECT_EQ(render("{{ '%s!' % 'hi' }} {{ '100%%' % () }}"), "hi! 100%");
}

// ---- variables and access ----

TEST(Jinja, UndefinedPrintsEmptyAndIteratesEmpty) {
  EXPECT_EQ(render("[{{ missing }}]"), "[]");
  EXPECT_EQ(render("[{% for x in missing %}x{% endfor %}]"), "[]");
  EXPECT_EQ(render("{{ missing|length }} {{ missing is defined }} {{ missing is undefined }}"),
            "0 False True");
  // Attributes of undefined values are undefined too.
  EXPECT_EQ(render("[{{ missing.a.b }}] {{ missing.a is defined }}"), "[] False");
}

TEST(Jinja, UndefinedFailsWhenUsed) {
  EXPECT_NE(render_error("{{ missing + 1 }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ missing() }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ d.nope() }}", R"({"d": {}})").find("has no attribute 'nope'"),
            std::string::npos);
  EXPECT_NE(render_error("{{ missing < 2 }}").find("'missing' is undefined"), std::string::npos);
}

TEST(Jinja, AttributeAndItemAccess) {
  const char* ctx = R"({"xs": [1, 2, 3], "d": {"k": "v", "n": {"m": 5}}, "s": "hello"})";
  EXPECT_EQ(
      render("{{ xs[0] }}{{ xs[-1] }}{{ xs.1 }}{{ d['k'] }}{{ d.k }}{{ d.n.m }}{{ d['n']['m'] }}",
             ctx),
      "13"
      "2vv55");
  EXPECT_EQ(render("[{{ xs[5] }}][{{ d.missing }}][{{ s[1] }}][{{ s[-1] }}]", ctx), "[][][e][o]");
  // A dict key shadows nothing: d.items is the method, d['items'] the entry when present.
  EXPECT_EQ(render("{{ d['items'] }} {{ d.items()|list|length }}", R"({"d": {"items": "entry"}})"),
            "entry 1");
}

TEST(Jinja, Slices) {
  const char* ctx = R"({"xs": [1, 2, 3, 4]})";
  EXPECT_EQ(render("{{ xs[1:] }} {{ xs[:2] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[-2:-1] }}", ctx),
            "[2, 3, 4] [1, 2] [4, 3, 2, 1] [1, 3] [3]");
  EXPECT_EQ(
      render("{{ 'hello'[1:3] }} {{ 'hello'[-3:] }} {{ 'abcdef'[5:1:-2] }} {{ 'abc'[::-1] }}"),
      "el llo fd cba");
  EXPECT_EQ(render("{{ xs[10:] }} {{ xs[-10:1] }}", ctx), "[] [1]");
}

TEST(Jinja, StringsAreIndexedByCodePoint) {
  EXPECT_EQ(render("{% for c in 'h\xC3\xA9llo' %}{{ c }}.{% endfor %}"), "h.\xC3\xA9.l.l.o.");
  EXPECT_EQ(
      render("{{ 'h\xC3\xA9llo'|length }} {{ 'h\xC3\xA9llo'[1] }} {{ 'h\xC3\xA9llo'[::-1] }}"),
      "5 \xC3\xA9 oll\xC3\xA9h");
  EXPECT_EQ(render("{{ 'h\xC3\xA9llo'|upper }} {{ '\xC3\x80\xC3\x89'|lower }}"),
            "H\xC3\x89LLO \xC3\xA0\xC3\xA9");
}

// ---- filters ----

TEST(Jinja, StringFilters) {
  EXPECT_EQ(
      render("[{{ '  x  '|trim }}][{{ 'xxaxx'|trim('x') }}][{{ 'Ab'|upper }}][{{ 'Ab'|lower }}]"),
      "[x][a][AB][ab]");
  EXPECT_EQ(render("{{ 'hello world-foo(bar'|title }} {{ 'hELLO wORLD'|capitalize }}"),
            "Hello World-Foo(Bar Hello world");
  EXPECT_EQ(render("{{ 'aXbX'|replace('X', '-') }} {{ 'aaa'|replace('a', 'b', 2) }}"), "a-b- bba");
  EXPECT_EQ(render("{{ 'a b  c'|wordcount }} {{ '<a href=\"x\">&\\''|e }} {{ '<b>'|safe }}"),
            "3 &lt;a href=&#34;x&#34;&gt;&amp;&#39; <b>");
  EXPECT_EQ(render("{{ 5|string }}{{ none|string }}{{ [1]|string }}"), "5None[1]");
  EXPECT_EQ(render("[{{ 'ab'|center(6) }}]"), "[  ab  ]");
  EXPECT_EQ(render("{{ '%s-%s'|format('a', 1) }}"), "a-1");
}

TEST(Jinja, IndentFilter) {
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}"), "a\n  b\n\n  c");
  EXPECT_EQ(render("{{ 'a\nb'|indent(2, true) }}"), "  a\n  b");
  EXPECT_EQ(render("{{ 'a\n\nb'|indent(2, blank=true) }}"), "a\n  \n  b");
  EXPECT_EQ(render("{{ 'a\nb'|indent('> ') }}"), "a\n> b");
  EXPECT_EQ(render("{{ 'a\nb\n'|indent }}"), "a\n    b\n");
}

TEST(Jinja, DefaultFilter) {
  EXPECT_EQ(render("{{ missing|default('d') }} {{ missing|d('e') }} {{ ''|default('f') }}"),
            "d e ");
  EXPECT_EQ(
      render("{{ ''|default('f', true) }} {{ 0|d('z', boolean=true) }} {{ missing|default }}"),
      "f z ");
  EXPECT_EQ(render("{{ none|default('n') }}"), "None");
}

TEST(Jinja, SequenceFilters) {
  const char* ctx = R"({"xs": [1, 2, 3], "d": {"a": 1, "b": 2}})";
  EXPECT_EQ(render("{{ xs|length }} {{ xs|count }} {{ 'abc'|length }} {{ d|length }}", ctx),
            "3 3 3 2");
  EXPECT_EQ(render("{{ xs|first }} {{ xs|last }} {{ 'abc'|first }} [{{ []|first }}]", ctx),
            "1 3 a []");
  EXPECT_EQ(render("{{ xs|join('-') }} {{ xs|join }} {{ d|join(',') }}", ctx), "1-2-3 123 a,b");
  EXPECT_EQ(render("{{ xs|reverse|list }} {{ 'abc'|reverse }} {{ 'ab'|list }} {{ d|list }}", ctx),
            "[3, 2, 1] cba ['a', 'b'] ['a', 'b']");
  EXPECT_EQ(render("{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}", ctx), "a1b2");
  EXPECT_EQ(
      render("{{ xs|sum }} {{ xs|max }} {{ xs|min }} {{ [1, 2, 3, 4, 5]|batch(2)|list }}", ctx),
      "6 3 1 [[1, 2], [3, 4], [5]]");
  EXPECT_EQ(render("{{ [1, 2, 3]|batch(2, 'x')|list }}"), "[[1, 2], [3, 'x']]");
}

TEST(Jinja, SortAndUnique) {
  EXPECT_EQ(render("{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }}"),
            "[1, 2, 3] [3, 2, 1]");
  // Case-insensitive unless asked; stable.
  EXPECT_EQ(render("{{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }}"),
            "['A', 'b', 'c'] ['A', 'b', 'c']");
  EXPECT_EQ(
      render("{{ ['b', 'a', 'B']|sort(case_sensitive=true) }} {{ ['b', 'A', 'a']|unique|list }}"),
      "['B', 'a', 'b'] ['b', 'A']");
  EXPECT_EQ(render("{{ users|sort(attribute='age')|map(attribute='name')|join }}",
                   R"({"users": [{"name": "a", "age": 3}, {"name": "b", "age": 1}]})"),
            "ba");
  EXPECT_EQ(render("{% for k, v in {'b': 1, 'a': 2}|dictsort %}{{ k }}{{ v }}{% endfor %}"),
            "a2b1");
}

TEST(Jinja, SelectRejectMap) {
  const char* ctx =
      R"({"msgs": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b", "x": 1}]})";
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}", ctx), "1");
  EXPECT_EQ(
      render("{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|join }}", ctx),
      "b");
  EXPECT_EQ(render("{{ msgs|selectattr('x')|map(attribute='role')|list }}", ctx), "['bot']");
  EXPECT_EQ(render("{{ msgs|selectattr('x', 'defined')|list|length }}", ctx), "1");
  EXPECT_EQ(render("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('even')|list }}"),
            "[1, 3] [1, 3]");
  EXPECT_EQ(render("{{ [0, 1, '', 2]|select|list }} {{ [1, 5, 9]|select('gt', 4)|list }}"),
            "[1, 2] [5, 9]");
  EXPECT_EQ(render("{{ ['a', 'b']|map('upper')|list }} {{ [1, 2]|map('string')|join('+') }}"),
            "['A', 'B'] 1+2");
  EXPECT_EQ(
      render(
          "{{ [{'a': {'b': 5}}]|map(attribute='a.b')|list }} "
          "{{ [{}]|map(attribute='q', default='D')|list }} {{ [[1, 2]]|map(attribute='1')|list }}"),
      "[5] ['D'] [2]");
}

TEST(Jinja, NumberFilters) {
  // round() is Python's: ties go to even, and the result is a float for floats.
  EXPECT_EQ(
      render(
          "{{ 2.5|round }} {{ 3.5|round }} {{ -2.5|round }} {{ 3.14159|round(2) }} {{ 5|round }}"),
      "2.0 4.0 -2.0 3.14 5");
  EXPECT_EQ(
      render(
          "{{ 2.7|round(method='floor') }} {{ 2.1|round(0, 'ceil') }} {{ -3|abs }} {{ -1.5|abs }}"),
      "2.0 3.0 3 1.5");
  EXPECT_EQ(render("{{ '42'|int }} {{ '3.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ ' 12 '|int }} "
                   "{{ 3.9|int }}"),
            "42 3 0 7 12 3");
  EXPECT_EQ(render("{{ 'ff'|int(base=16) }} {{ 3|float }} {{ 'abc'|float }} {{ '1e3'|float }} {{ "
                   "true|int }}"),
            "255 3.0 0.0 1000.0 1");
}

TEST(Jinja, ToJsonFollowsTransformers) {
  // Key order kept, no HTML escaping, UTF-8 kept, json.dumps separators.
  EXPECT_EQ(render("{{ {'b': 1, 'a': [1, 'x', none, true, 1.5]}|tojson }}"),
            R"({"b": 1, "a": [1, "x", null, true, 1.5]})");
  EXPECT_EQ(render("{{ '<\xC3\xA9\"\n'|tojson }}"), "\"<\xC3\xA9\\\"\\n\"");
  EXPECT_EQ(render("{{ {'b': 1, 'a': {'c': []}}|tojson(indent=2) }}"),
            "{\n  \"b\": 1,\n  \"a\": {\n    \"c\": []\n  }\n}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}"), R"({"a": 2, "b": 1})");
  EXPECT_EQ(render("{{ {'a': [1, 2]}|tojson(separators=(',', ':')) }}"), R"({"a":[1,2]})");
  EXPECT_EQ(render("{{ '\xC3\xA9'|tojson(ensure_ascii=true) }}"), R"("\u00e9")");
  EXPECT_EQ(render("{{ x|tojson }}", R"({"x": {"f": 1.0, "i": 10000000000}})"),
            R"({"f": 1.0, "i": 10000000000})");
}

// ---- tests ----

TEST(Jinja, Tests) {
  const char* ctx = R"({"x": 1, "n": null, "s": "s", "d": {}, "l": []})";
  EXPECT_EQ(render("{{ x is defined }}{{ y is defined }}{{ y is not defined }}{{ n is none }}"
                   "{{ n is not none }}{{ missing is none }}",
                   ctx),
            "TrueFalseTrueTrueFalseFalse");
  EXPECT_EQ(render("{{ s is string }}{{ x is string }}{{ d is mapping }}{{ l is mapping }}"
                   "{{ l is iterable }}{{ s is iterable }}{{ x is iterable }}{{ l is sequence }}",
                   ctx),
            "TrueFalseTrueFalseTrueTrueFalseTrue");
  EXPECT_EQ(
      render("{{ 1 is number }}{{ 1.0 is number }}{{ true is number }}{{ 1 is integer }}"
             "{{ true is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ 1 is boolean }}"),
      "TrueTrueTrueTrueFalseTrueTrueFalse");
  EXPECT_EQ(render("{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}"),
            "TrueFalseTrueFalse");
  EXPECT_EQ(
      render("{{ 2 is even }}{{ 2 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}"),
      "TrueFalseTrueFalse");
  EXPECT_EQ(render("{{ 'a' is equalto 'a' }}{{ 'a' is eq 'b' }}{{ 3 is gt 2 }}{{ 3 is lt 2 }}"
                   "{{ 3 is ge 3 }}{{ 3 is le 2 }}{{ 3 is ne 3 }}{{ 3 is in [3] }}"),
            "TrueFalseTrueFalseTrueFalseFalseTrue");
  EXPECT_EQ(render("{{ none is sameas none }}{{ 'abc' is lower }}{{ 'ABC' is upper }}"
                   "{{ range is callable }}{{ 'upper' is filter }}{{ 'odd' is test }}"),
            "TrueTrueTrueTrueTrueTrue");
}

// ---- methods ----

TEST(Jinja, StringMethods) {
  EXPECT_EQ(render("[{{ ' x '.strip() }}][{{ ' x '.lstrip() }}][{{ ' x '.rstrip() }}][{{ "
                   "'xax'.strip('x') }}]"),
            "[x][x ][ x][a]");
  EXPECT_EQ(render("{{ '\n\nhi\n'.lstrip('\n') }}|{{ 'a\n\n'.rstrip('\n') }}"), "hi\n|a");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b,c']");
  EXPECT_EQ(
      render("{{ 'a,b,c'.rsplit(',', 1) }} {{ ' a b '.split(None, 1) }} {{ 'x\ny'.splitlines() }}"),
      "['a,b', 'c'] ['a', 'b '] ['x', 'y']");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('x') }}{{ 'abc'.startswith(('x', "
                   "'a')) }}"),
            "TrueFalseTrue");
  EXPECT_EQ(render("{{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ \"it's a test\".title() }} {{ "
                   "'aBC'.capitalize() }}"),
            "AB ab It'S A Test Abc");
  EXPECT_EQ(
      render("{{ 'abcabc'.replace('b', 'X') }} {{ 'abcabc'.find('c') }} {{ 'abc'.find('z') }} "
             "{{ 'abcabc'.count('bc') }} {{ '-'.join(['a', 'b']) }}"),
      "aXcaXc 2 -1 2 a-b");
  EXPECT_EQ(render("{{ '{}-{}'.format(1, 'a') }} {{ '{0}{name}'.format('x', name='y') }} {{ "
                   "'{{}}'.format() }}"),
            "1-a xy {}");
  EXPECT_EQ(render("{{ '12'.isdigit() }}{{ 'a1'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}"
                   "{{ 'abc'.removeprefix('a') }}{{ 'abc'.removesuffix('c') }}"),
            "TrueFalseTrueTruebcab");
}

TEST(Jinja, DictAndListMethods) {
  const char* ctx = R"({"d": {"k": "v", "j": 2}})";
  EXPECT_EQ(render("{{ d.get('k') }} {{ d.get('q', 'dflt') }} {{ d.get('q') }}", ctx),
            "v dflt None");
  EXPECT_EQ(render("{{ d.keys()|list }} {{ d.values()|list }}", ctx), "['k', 'j'] ['v', 2]");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", ctx), "k=v;j=2;");
  EXPECT_EQ(render("{% set xs = [1] %}{% do xs.append(2) %}{{ xs }}{% set _ = xs.append(3) %}"
                   "{{ xs }} {{ xs.pop() }} {{ xs }} {{ xs.index(2) }} {{ [1, 1].count(1) }}"),
            "[1, 2][1, 2, 3] 3 [1, 2] 1 2");
}

// ---- statements ----

TEST(Jinja, IfElifElse) {
  EXPECT_EQ(render("{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many"
                   "{% endif %},{% endfor %}"),
            "one,two,many,");
  EXPECT_EQ(render("{% if [] %}a{% elif none %}b{% endif %}"), "");
}

TEST(Jinja, ForLoopVariables) {
  EXPECT_EQ(
      render("{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
             "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
             R"({"items": ["a", "b"]})"),
      "1021TrueFalse2;2110FalseTrue2;");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}"),
            "[|2][1|3][2|]");
  EXPECT_EQ(render("{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
  // The inner loop's `loop` shadows the outer one only inside it.
  EXPECT_EQ(render("{% for a in [1, 2] %}{% for b in [1, 2, 3] %}{{ loop.index }}{% endfor %}"
                   "{{ loop.index }}|{% endfor %}"),
            "1231|1232|");
}

TEST(Jinja, ForLoopForms) {
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}"), "xy");
  EXPECT_EQ(render("{% for k, v in {'x': 1}|items %}{{ k }}{{ v }}{% endfor %}"), "x1");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}"), "3,7,");
  // An inline filter runs before the loop, so loop.* counts only what is kept.
  EXPECT_EQ(
      render(
          "{% for m in ms if m.role != 'system' %}{{ loop.index }}{{ m.role }}/{{ loop.length }} "
          "{% endfor %}",
          R"({"ms": [{"role": "system"}, {"role": "user"}, {"role": "assistant"}]})"),
      "1user/2 2assistant/2 ");
  EXPECT_EQ(render("{% for x in [1] if false %}x{% else %}none kept{% endfor %}"), "none kept");
}

TEST(Jinja, BreakAndContinue) {
  EXPECT_EQ(render("{% for n in [1, 2, 3, 4] %}{% if n == 2 %}{% continue %}{% endif %}"
                   "{% if n == 4 %}{% break %}{% endif %}{{ n }}{% endfor %}"),
            "13");
  EXPECT_EQ(
      render(
          "{% for a in [1, 2] %}{% for b in [1, 2] %}{% break %}{% endfor %}{{ a }}{% endfor %}"),
      "12");
}

TEST(Jinja, SetAndScopes) {
  // A set inside a loop stays in its iteration; if blocks open no scope.
  EXPECT_EQ(render("{% set a = 1 %}{% for x in [1] %}{% set a = 2 %}{{ a }}{% endfor %}{{ a }}"
                   "{% if true %}{% set b = 3 %}{% endif %}{{ b }}"),
            "213");
  EXPECT_EQ(
      render(
          "{% set a = 0 %}{% for i in [1, 2] %}{{ a }}{% set a = i %}{{ a }}{% endfor %}{{ a }}"),
      "01020");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set (c, d) = [3, 4] %}{{ c }}{{ d }}"),
            "1234");
  EXPECT_EQ(render("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}s{% endset "
                   "%}{{ y }}"),
            "[inner 2]S");
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages|length }}",
                   R"({"messages": [1, 2, 3]})"),
            "2");
}

TEST(Jinja, Namespace) {
  EXPECT_EQ(render("{% set ns = namespace(found=false, n=0) %}{% for x in [1, 2, 3] %}"
                   "{% if x == 2 %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + x %}"
                   "{% endfor %}{{ ns.found }} {{ ns.n }}"),
            "True 6");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.index = 0 %}{{ ns.index }}"), "0");
  EXPECT_NE(render_error("{% set d = {} %}{% set d.x = 1 %}").find("not a namespace"),
            std::string::npos);
}

TEST(Jinja, Macros) {
  EXPECT_EQ(
      render("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}"
             "{{ greet('Bob') }} {{ greet('Al', greeting='Hi') }} {{ greet('X', 'Yo') }}"),
      "Hello, Bob! Hi, Al! Yo, X!");
  // Macros see template variables as they are when called.
  EXPECT_EQ(
      render("{% set v = 'early' %}{% macro show() %}{{ v }}{% endmacro %}{% set v = 'late' %}"
             "{{ show() }}"),
      "late");
  EXPECT_EQ(
      render(
          "{% macro m(a) %}{{ a }}{{ varargs|list }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}"),
      "1[2]{'k': 3}");
  EXPECT_EQ(render("{% macro m(a, b=a * 2) %}{{ b }}{% endmacro %}{{ m(4) }}"), "8");
  EXPECT_EQ(
      render(
          "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"),
      "321");
}

TEST(Jinja, CallFilterWithDoBlocks) {
  EXPECT_EQ(render("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}body{% endcall %}"),
            "[body]");
  EXPECT_EQ(render("{% macro n(x) %}{{ caller(x * 2) }}{% endmacro %}{% call(v) n(4) %}v={{ v }}{% "
                   "endcall %}"),
            "v=8");
  EXPECT_EQ(render("{% filter upper %}hello {{ 'x' }}{% endfilter %}"), "HELLO X");
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
  EXPECT_EQ(render("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(Jinja, Globals) {
  EXPECT_EQ(render("{% for i in range(3) %}{{ i }}{% endfor %} {{ range(2, 10, 3)|list }} {{ "
                   "range(5, 0, -2)|list }}"),
            "012 [2, 5, 8] [5, 3, 1]");
  EXPECT_EQ(render("{{ dict(a=1, b=2) }} {{ dict(a=1)|tojson }} {{ namespace(a=1).a }}"),
            "{'a': 1, 'b': 2} {\"a\": 1} 1");
  EXPECT_EQ(
      render("{% set j = joiner(', ') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}"),
      "1, 2, 3");
}

TEST(Jinja, RaiseException) {
  const std::string msg = render_error("line one\n{{ raise_exception('Roles must alternate!') }}");
  EXPECT_NE(msg.find("Roles must alternate!"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'test'"), std::string::npos) << msg;
}

TEST(Jinja, StrftimeNow) {
  char year[8];
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(year, sizeof(year), "%Y", &local);
  const std::string out = render("{{ strftime_now('%Y') }}");
  // The render may straddle New Year; both renders must then still look like years.
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out == year || std::stoi(out) == std::stoi(year) + 1) << out;
}

TEST(Jinja, ContextFunctionsOverrideGlobals) {
  Value ctx = Value::object();
  ctx.set("strftime_now", Value::function("strftime_now", [](const CallArgs& args) {
            return Value("fixed:" + args.positional.at(0).as_string());
          }));
  EXPECT_EQ(Template::parse("{{ strftime_now('%d') }}").render(ctx), "fixed:%d");
}

// ---- values ----

TEST(JinjaValue, PrintsLikePython) {
  const Value v = Value::from_json_text(
      R"([1.0, "it's", "say \"hi\"", "both ' \"", "tab\there", null, true, {"k": [1]}])");
  EXPECT_EQ(v.str(),
            R"([1.0, "it's", 'say "hi"', 'both \' "', 'tab\there', None, True, {'k': [1]}])");
  EXPECT_EQ(Value("x").repr(), "'x'");
  EXPECT_EQ(Value("x").str(), "x");
  EXPECT_EQ(Value().str(), "");
}

TEST(JinjaValue, JsonRoundTripKeepsKeyOrder) {
  const std::string text = R"({"z": 1, "a": [true, null, 2.5, "s"], "m": {}})";
  const Value v = Value::from_json_text(text);
  EXPECT_EQ(v.to_json(), text);
  EXPECT_EQ(v.get("z").as_int(), 1);
  EXPECT_TRUE(v.get("missing").is_undefined());
  EXPECT_EQ(v.size(), 3u);
  JsonFormat pretty;
  pretty.indent = 1;
  EXPECT_EQ(Value::from_json_text(R"({"a": [1]})").to_json(pretty), "{\n \"a\": [\n  1\n ]\n}");
}

TEST(JinjaValue, ListsAndDictsAreShared) {
  Value a = Value::array();
  Value b = a;
  b.push_back(Value(1));
  EXPECT_EQ(a.size(), 1u);
  const Value c = a.deep_copy();
  b.push_back(Value(2));
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(a.size(), 2u);
}

TEST(JinjaValue, EqualityAndTruthiness) {
  EXPECT_EQ(Value(1), Value(1.0));
  EXPECT_EQ(Value(true), Value(1));
  EXPECT_NE(Value("1"), Value(1));
  EXPECT_EQ(Value::from_json_text(R"({"a": 1, "b": 2})"),
            Value::from_json_text(R"({"b": 2, "a": 1})"));
  EXPECT_NE(Value(), Value::none());
  EXPECT_FALSE(Value::array().truthy());
  EXPECT_TRUE(Value("x").truthy());
  EXPECT_FALSE(Value(0.0).truthy());
}

TEST(JinjaValue, KindMismatchesAndBadJsonThrow) {
  error_of([] { (void)Value("x").as_int(); }, ErrorKind::InvalidArgument);
  error_of([] { Value::from_json_text("{\"a\": }"); }, ErrorKind::Format);
  error_of([] { (void)Value().to_json(); }, ErrorKind::InvalidArgument);
}

TEST(Jinja, RenderDoesNotModifyTheContext) {
  const Value ctx = Value::from_json_text(R"({"xs": [1]})");
  EXPECT_EQ(Template::parse("{% do xs.append(2) %}{{ xs }}").render(ctx), "[1, 2]");
  EXPECT_EQ(ctx.get("xs").size(), 1u);
}

TEST(Jinja, TemplateIsReusable) {
  const Template t = Template::parse("Hi {{ name }}!", "greeting");
  EXPECT_EQ(t.name(), "greeting");
  EXPECT_EQ(t.render(Value::from_json_text(R"({"name": "A"})")), "Hi A!");
  EXPECT_EQ(t.render(Value::from_json_text(R"({"name": "B"})")), "Hi B!");
  EXPECT_EQ(t.render(Value()), "Hi !");
}

// ---- errors ----

TEST(JinjaErrors, SyntaxErrorsNameLineColumnAndExpectation) {
  std::string msg = parse_error("ok\n{% if x %}\nno end");
  EXPECT_NE(msg.find("template 'bad.jinja'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'if' block opened at line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'endif'"), std::string::npos) << msg;

  msg = parse_error("a\nb {{ x ");
  EXPECT_NE(msg.find("line 2 column 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'}}'"), std::string::npos) << msg;

  msg = parse_error("{% for x in xs %}{% endif %}");
  EXPECT_NE(msg.find("line 1 column 21"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'endfor'"), std::string::npos) << msg;

  msg = parse_error("{{ 1 + }}");
  EXPECT_NE(msg.find("line 1 column 8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected an expression"), std::string::npos) << msg;
}

TEST(JinjaErrors, UnclosedThings) {
  EXPECT_NE(parse_error("{# never closed").find("comment is never closed"), std::string::npos);
  EXPECT_NE(parse_error("{% if true ").find("'%}'"), std::string::npos);
  EXPECT_NE(parse_error("{{ 'abc }}").find("string literal is never closed"), std::string::npos);
  EXPECT_NE(parse_error("{% raw %}x").find("endraw"), std::string::npos);
  EXPECT_NE(parse_error("{{ [1, 2 }}").find("line 1"), std::string::npos);
  EXPECT_NE(parse_error("{{ (1, 2] }}").find("unexpected ']'"), std::string::npos);
}

TEST(JinjaErrors, UnknownNames) {
  std::string msg = parse_error("line\n{{ x | frobnicate }}");
  EXPECT_NE(msg.find("no filter named 'frobnicate'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2 column 8"), std::string::npos) << msg;
  EXPECT_NE(parse_error("{{ x is frobnicated }}").find("no test named 'frobnicated'"),
            std::string::npos);
  EXPECT_NE(parse_error("{% frob %}").find("unknown tag 'frob'"), std::string::npos);
  EXPECT_NE(parse_error("{% include 'x' %}").find("not supported"), std::string::npos);
  EXPECT_NE(parse_error("{% endfor %}").find("no block is open"), std::string::npos);
}

TEST(JinjaErrors, BadStatements) {
  EXPECT_NE(parse_error("{% break %}").find("outside of a for loop"), std::string::npos);
  EXPECT_NE(parse_error("{% set true = 1 %}").find("cannot assign"), std::string::npos);
  EXPECT_NE(parse_error("{% for x in xs recursive %}{% endfor %}").find("recursive"),
            std::string::npos);
  EXPECT_NE(parse_error("{{ f(a=1, 2) }}").find("positional argument follows"), std::string::npos);
  EXPECT_NE(parse_error("{{ 1 ! 2 }}").find("unexpected character '!'"), std::string::npos);
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  std::string msg = render_error("a\nb\n{{ 1 + 'x' }}");
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unsupported operand"), std::string::npos) << msg;
  msg = render_error("{% for x in 5 %}{% endfor %}");
  EXPECT_NE(msg.find("not iterable"), std::string::npos) << msg;
  msg = render_error("{{ 1 // 0 }}");
  EXPECT_NE(msg.find("division or modulo by zero"), std::string::npos) << msg;
  msg = render_error("{{ 'abc' < 1 }}");
  EXPECT_NE(msg.find("not supported between"), std::string::npos) << msg;
}

TEST(JinjaErrors, RuntimeErrorsInsideMacrosNameTheMacroLine) {
  const std::string msg =
      render_error("{% macro m() %}\n{{ 1 + none }}\n{% endmacro %}\n{{ m() }}");
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
}

TEST(JinjaErrors, ToJsonOfUndefinedFails) {
  EXPECT_NE(render_error("{{ missing|tojson }}").find("not JSON serializable"), std::string::npos);
}

TEST(JinjaErrors, WrongArguments) {
  EXPECT_NE(render_error("{{ 'a'|trim(1, 2) }}").find("takes at most 1"), std::string::npos);
  EXPECT_NE(render_error("{{ 'a'|default(bogus=1) }}").find("unexpected keyword argument 'bogus'"),
            std::string::npos);
  EXPECT_NE(render_error("{{ range(1, 2, 0) }}").find("step must not be zero"), std::string::npos);
  EXPECT_NE(render_error("{{ 'abc'.nope() }}").find("has no attribute 'nope'"), std::string::npos);
  EXPECT_NE(render_error("{{ 5() }}").find("not callable"), std::string::npos);
  EXPECT_NE(render_error("{% set a, b = [1] %}").find("cannot unpack"), std::string::npos);
}

TEST(JinjaErrors, DeepNestingIsASyntaxErrorNotACrash) {
  const std::string ok = "{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}";
  EXPECT_EQ(render(ok), "1");
  const std::string deep =
      "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_NE(parse_error(deep).find("nest too deep"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 10000; ++i) blocks += "{% if true %}";
  EXPECT_NE(parse_error(blocks).find("nest too deep"), std::string::npos);
}

TEST(JinjaErrors, RunawayRecursionIsStopped) {
  EXPECT_NE(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nest too deep"),
            std::string::npos);
}

}  // namespace
}  // namespace mlxn::engine::jinja
