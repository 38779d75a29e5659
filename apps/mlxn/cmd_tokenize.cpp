// `mlxn tokenize`: the token ids of a text, as the model's tokenizer (tokenizer.json of a model
// directory, or the vocabulary inside a .gguf) produces them -- one JSON array on one line.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "apps/mlxn/commands.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

namespace {

constexpr const char* kHelp =
    "usage: mlxn tokenize --model PATH (--text STR | --file FILE) [--no-special]\n"
    "\n"
    "Prints the token ids of the text as a JSON array on one line.\n"
    "\n"
    "  --model PATH   a directory with tokenizer.json (no weights needed) or a .gguf file\n"
    "  --text STR     the text to tokenize\n"
    "  --file FILE    read the text from FILE byte for byte (\"-\": standard input)\n"
    "  --no-special   do not add the post-processor's BOS/EOS tokens (special-token text such\n"
    "                 as \"<|im_start|>\" is still recognised)\n";

std::string read_text(const std::string& path) {
  std::ostringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path + ": cannot open");
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int cmd_tokenize(const Args& args) {
  if (wants_help(args)) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  std::string model;
  std::optional<std::string> text, file;
  bool special = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--model" && has_value) {
      model = args[++i];
    } else if (a == "--text" && has_value) {
      text = args[++i];
    } else if (a == "--file" && has_value) {
      file = args[++i];
    } else if (a == "--no-special") {
      special = false;
    } else {
      std::fprintf(stderr,
                   "error: tokenize: unexpected argument '%s' (run `mlxn tokenize --help`)\n",
                   a.c_str());
      return 2;
    }
  }
  if (model.empty() || text.has_value() == file.has_value()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  const engine::Tokenizer tokenizer = engine::Tokenizer::from_path(model);
  const std::vector<std::int32_t> ids = tokenizer.encode(text ? *text : read_text(*file), special);
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  out += "]";
  std::puts(out.c_str());
  return 0;
}

}  // namespace mlxn::cli
