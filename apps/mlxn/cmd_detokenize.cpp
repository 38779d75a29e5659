// `mlxn detokenize`: the text of a list of token ids, as the model's tokenizer decodes them.
#include <cstdio>
#include <string>
#include <vector>

#include "apps/mlxn/commands.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

namespace {

constexpr const char* kHelp =
    "usage: mlxn detokenize --model PATH --ids 1,2,3 [--skip-special]\n"
    "\n"
    "Prints the text of the token ids (followed by a newline).\n"
    "\n"
    "  --model PATH     a directory with tokenizer.json (no weights needed) or a .gguf file\n"
    "  --ids LIST       token ids separated by commas or spaces; \"[1, 2, 3]\" (the output of\n"
    "                   `mlxn tokenize`) works too\n"
    "  --skip-special   leave out special tokens such as BOS/EOS\n";

std::vector<std::int32_t> parse_ids(const std::string& s) {
  std::vector<std::int32_t> ids;
  std::size_t i = 0;
  auto separator = [](char c) { return c == ',' || c == ' ' || c == '[' || c == ']' || c == '\n'; };
  while (i < s.size()) {
    if (separator(s[i])) {
      ++i;
      continue;
    }
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s.substr(i), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || v < INT32_MIN || v > INT32_MAX ||
        (i + used < s.size() && !separator(s[i + used]))) {
      throw Error(ErrorKind::InvalidArgument,
                  "detokenize: --ids: expected integers separated by commas, found '" + s + "'");
    }
    ids.push_back(static_cast<std::int32_t>(v));
    i += used;
  }
  return ids;
}

}  // namespace

int cmd_detokenize(const Args& args) {
  if (wants_help(args)) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  std::string model, ids_text;
  bool have_ids = false, skip_special = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) {
      model = args[++i];
    } else if (a == "--ids" && has_value) {
      ids_text = args[++i];
      have_ids = true;
    } else if (a == "--skip-special") {
      skip_special = true;
    } else {
      std::fprintf(stderr,
                   "error: detokenize: unexpected argument '%s' (run `mlxn detokenize --help`)\n",
                   a.c_str());
      return 2;
    }
  }
  if (model.empty() || !have_ids) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  const std::vector<std::int32_t> ids = parse_ids(ids_text);
  const engine::Tokenizer tokenizer = engine::Tokenizer::from_path(model);
  const std::string text = tokenizer.decode(ids, skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace mlxn::cli
