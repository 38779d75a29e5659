// `mlxn score`: runs a model over a fixed token sequence from an empty cache and writes the
// logits of every position as a float32 .npy [tokens, vocab] -- what transformers returns as
// model(input_ids).logits[0] -- so they can be compared with a reference in Python.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "apps/mlxn/commands.h"
#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/model.h"
#include "mlxn/io/npy.h"

namespace mlxn::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kHelp =
    "usage: mlxn score --model PATH (--tokens IDS | --tokens-file FILE) --out FILE.npy\n"
    "                  [--backend auto|cpu|cuda] [--dtype f32|bf16|f16]\n"
    "\n"
    "Runs the model over the token ids from an empty cache and writes the logits of every\n"
    "position as a float32 .npy array of shape [tokens, vocab], the logits transformers\n"
    "returns for input_ids. The file is written to a temporary name and renamed into place.\n"
    "\n"
    "  --model PATH        model directory or .gguf file\n"
    "  --tokens IDS        token ids separated by commas and/or whitespace, e.g. 1,2,3\n"
    "  --tokens-file FILE  read the ids from FILE instead (same separators)\n"
    "  --out FILE          the .npy file to write\n"
    "  --backend NAME      auto (CUDA when a GPU is present, else the CPU), cpu or cuda\n"
    "  --dtype NAME        compute dtype f32, bf16 or f16 (default: f32 on the CPU, bf16 on "
    "CUDA)\n";

// A command-line mistake: reported as one `error:` line with exit code 2, like other commands.
struct UsageError {
  std::string message;
};

struct Options {
  std::string model, tokens, tokens_file, out, backend = "auto", dtype;
};

Options parse_options(const Args& args) {
  Options o;
  const std::map<std::string, std::string Options::*> valued = {
      {"--model", &Options::model},
      {"--tokens", &Options::tokens},
      {"--tokens-file", &Options::tokens_file},
      {"--out", &Options::out},
      {"--backend", &Options::backend},
      {"--dtype", &Options::dtype}};
  std::map<std::string, bool> seen;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = name.substr(eq + 1);  // --name=value
      name.resize(eq);
    }
    const auto it = valued.find(name);
    if (it == valued.end()) {
      if (!name.empty() && name[0] == '-') {
        throw UsageError{"unknown option '" + name + "' (run `mlxn score --help`)"};
      }
      throw UsageError{"unexpected argument '" + name + "' (options need their --name)"};
    }
    if (!value) {
      if (i + 1 >= args.size()) throw UsageError{name + " needs a value"};
      value = args[++i];
    }
    if (seen[name]) throw UsageError{name + " given more than once"};
    seen[name] = true;
    o.*(it->second) = *value;
  }
  if (o.model.empty()) throw UsageError{"--model PATH is required"};
  if (o.out.empty()) throw UsageError{"--out FILE is required"};
  if (seen["--tokens"] == seen["--tokens-file"]) {
    throw UsageError{"give exactly one of --tokens IDS and --tokens-file FILE"};
  }
  if (!o.dtype.empty() && o.dtype != "f32" && o.dtype != "bf16" && o.dtype != "f16") {
    throw UsageError{"--dtype must be f32, bf16 or f16, not '" + o.dtype + "'"};
  }
  if (o.backend != "auto" && o.backend != "cpu" && o.backend != "cuda") {
    throw UsageError{"--backend must be auto, cpu or cuda, not '" + o.backend + "'"};
  }
  return o;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Token ids separated by commas and/or whitespace. Every comma must separate two ids ("1,,2"
// and "1,2," are rejected as likely typos); `source` names the origin in messages.
std::vector<std::int32_t> parse_token_ids(const std::string& text, const std::string& source) {
  std::vector<std::int32_t> ids;
  bool comma_pending = false;  // a ',' was read and no id followed it yet
  std::size_t i = 0;
  auto fail = [&](const std::string& what) -> void {
    throw Error(ErrorKind::InvalidArgument, source + ": " + what);
  };
  while (true) {
    while (i < text.size() && is_space(text[i])) ++i;
    if (i == text.size()) break;
    if (text[i] == ',') {
      if (ids.empty() || comma_pending) {
        fail("empty item before the ',' at character " + std::to_string(i + 1));
      }
      comma_pending = true;
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < text.size() && text[i] != ',' && !is_space(text[i])) ++i;
    const std::string item = text.substr(start, i - start);
    std::int64_t v = 0;
    bool ok = item.size() <= 10;
    for (char c : item) ok = ok && c >= '0' && c <= '9';
    if (ok) v = std::stoll(item);
    if (!ok || v > std::numeric_limits<std::int32_t>::max()) {
      std::string shown = item.size() > 40 ? item.substr(0, 40) + "..." : item;
      fail("item " + std::to_string(ids.size() + 1) + " ('" + shown +
           "') is not a token id (a non-negative 32-bit integer)");
    }
    ids.push_back(static_cast<std::int32_t>(v));
    comma_pending = false;
  }
  if (comma_pending) fail("trailing ','");
  if (ids.empty()) fail("no token ids given");
  return ids;
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw Error(ErrorKind::Io, "--tokens-file " + path + ": is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorKind::Io, "--tokens-file " + path + ": cannot open: " + std::strerror(errno));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorKind::Io, "--tokens-file " + path + ": cannot read");
  return text;
}

// Fails early -- before the (possibly slow) model load -- when `out` cannot be written: a
// directory, or a missing / read-only parent. Probes by creating and removing a file next to it.
void check_writable(const fs::path& out) {
  std::error_code ec;
  if (fs::is_directory(out, ec)) {
    throw Error(ErrorKind::Io, "--out " + out.string() + ": is a directory");
  }
  fs::path probe = out;
  probe += ".probe" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error(ErrorKind::Io,
                "--out " + out.string() + ": cannot write there: " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int run(const Options& o) {
  const std::vector<std::int32_t> tokens =
      o.tokens_file.empty()
          ? parse_token_ids(o.tokens, "--tokens")
          : parse_token_ids(read_text_file(o.tokens_file), "--tokens-file " + o.tokens_file);
  const fs::path out(o.out);
  check_writable(out);

  engine::ModelOptions options;
  options.backend = backend_from_name(o.backend);
  if (!o.dtype.empty()) options.compute_dtype = dtype_from_name(o.dtype);
  // The cache only has to hold this one sequence.
  options.context = static_cast<std::int64_t>(tokens.size());
  engine::Model model = engine::Model::load(o.model, options);

  const std::int64_t vocab = model.config().vocab_size;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (vocab > 0 && tokens[i] >= vocab) {
      throw Error(ErrorKind::InvalidArgument, "token id " + std::to_string(tokens[i]) +
                                                  " at position " + std::to_string(i) +
                                                  " is out of range: the model's vocabulary has " +
                                                  std::to_string(vocab) + " tokens");
    }
  }

  const std::vector<float> logits = model.score(tokens);
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (logits.empty() || logits.size() % tokens.size() != 0) {
    throw Error(ErrorKind::InvalidArgument, "score: the model returned " +
                                                std::to_string(logits.size()) + " logits for " +
                                                std::to_string(n) + " tokens");
  }
  const auto n_vocab = static_cast<std::int64_t>(logits.size() / tokens.size());
  io::write_npy(out, Shape{n, n_vocab}, logits);
  std::printf("wrote %s: [%lld, %lld] float32 logits (%s, compute %s)\n", out.string().c_str(),
              static_cast<long long>(n), static_cast<long long>(n_vocab),
              backend_name(model.device().backend()),
              std::string(dtype_name(model.compute_dtype())).c_str());
  return 0;
}

}  // namespace

int cmd_score(const Args& args) {
  if (wants_help(args)) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  try {
    return run(parse_options(args));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: score: %s\n", e.message.c_str());
    return 2;
  } catch (const std::exception& e) {
    // One line, whatever the loader put in its message.
    std::fprintf(stderr, "error: score: %s\n", one_line(e.what()).c_str());
    return 1;
  }
}

}  // namespace mlxn::cli
