// mlxn command-line entry point: picks the subcommand and turns errors into one `error:` line.
#include <cstdio>
#include <exception>
#include <string>

#include "apps/mlxn/commands.h"
#include "mlxn/core/error.h"

namespace {

constexpr const char* kUsage =
    "usage: mlxn <command> [options]\n"
    "\n"
    "commands:\n"
    "  version    print the version and the backends this build has\n"
    "  devices    list the devices mlxn can use\n"
    "  selftest   run an encoder session on every available backend and print its scoreboard\n"
    "  inspect    describe a model directory, .gguf or .safetensors file\n"
    "  tokenize   print the token ids of a text (JSON array)\n"
    "  detokenize print the text of token ids\n"
    "  score      write the logits of every position of a token sequence to a .npy file\n"
    "  generate   continue a prompt (or answer it with --chat), streaming the text\n"
    "  chat       talk with the model on stdin/stdout through its chat template\n"
    "  perplexity the perplexity of the model on a text file (sliding windows)\n"
    "  bench      prefill and decode speed on random prompt ids\n"
    "\n"
    "Run `mlxn <command> --help` for the options of a command.\n";

}  // namespace

namespace mlxn::cli {
bool wants_help(const Args& args) {
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}
}  // namespace mlxn::cli

int main(int argc, char** argv) {
  using namespace mlxn::cli;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  Args args(argv + 2, argv + argc);
  try {
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "version" || cmd == "--version") return cmd_version(args);
    if (cmd == "devices") return cmd_devices(args);
    if (cmd == "selftest") return cmd_selftest(args);
    if (cmd == "inspect") return cmd_inspect(args);
    if (cmd == "tokenize") return cmd_tokenize(args);
    if (cmd == "detokenize") return cmd_detokenize(args);
    if (cmd == "score") return cmd_score(args);
    if (cmd == "generate") return cmd_generate(args);
    if (cmd == "chat") return cmd_chat(args);
    if (cmd == "perplexity") return cmd_perplexity(args);
    if (cmd == "bench") return cmd_bench(args);
    std::fprintf(stderr, "error: unknown command '%s' (run `mlxn --help`)\n", cmd.c_str());
    return 2;
  } catch (const mlxn::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
