// `mlxn chat`: a conversation on stdin/stdout through the model's chat template. Each input line
// is one user turn; the reply streams to stdout and ends with a newline. /reset clears the
// history, /exit (or end of input) quits. Works the same from a pipe, minus the prompts.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "apps/mlxn/chat_format.h"
#include "apps/mlxn/chat_session.h"
#include "apps/mlxn/cli_options.h"
#include "apps/mlxn/commands.h"
#include "apps/mlxn/model_path.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

namespace {

constexpr std::int64_t kDefaultMaxTokens = 1024;
constexpr std::int64_t kDefaultContext = 4096;

const std::string kHelp =
    "usage: mlxn chat [options]\n"
    "\n"
    "Talks with the model through its chat template. Every line read from stdin is one user\n"
    "message; the reply is printed to stdout as it is produced, followed by a newline. The\n"
    "history is kept (the oldest exchanges are dropped when it outgrows the context) and the\n"
    "KV cache is reused across turns, so only the new part of the conversation is prefilled.\n"
    "From a terminal a \"> \" prompt is shown; from a pipe only the replies are printed.\n"
    "\n"
    "  /reset    forget the conversation (the --system message stays)\n"
    "  /exit     quit (so does the end of input)\n"
    "\n"
    "  --system STR          a system message at the start of the conversation\n"
    "  --stats               print a statistics line per turn on stderr\n"
    "  --no-reuse            prefill the whole conversation every turn instead of reusing\n"
    "                        the KV cache (slower; gives the same replies)\n" +
    sampling_args_help("default 1024 per reply") +
    model_args_help(
        "  --context N           positions the KV cache holds (default 4096, at most "
        "the\n"
        "                        model's maximum)\n");

struct Options {
  ModelArgs model;
  SamplingArgs sampling{kDefaultMaxTokens};
  std::string system;
  bool stats = false, reuse = true;
};

Options parse_options(const Args& args) {
  Options o;
  OptionParser parser("chat");
  o.model.add_to(parser, true);
  o.sampling.add_to(parser);
  parser.value("--system", &o.system).flag("--stats", &o.stats).flag("--no-reuse", [&o] {
    o.reuse = false;
  });
  parser.parse(args);
  if (o.sampling.params.max_tokens == 0) {
    throw UsageError{"--max-tokens must be >= 1 (or -1) for chat"};
  }
  return o;
}

void write_out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Strips a trailing '\r' (input typed or saved on Windows) and surrounding blanks.
std::string trim(const std::string& line) {
  const auto first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = line.find_last_not_of(" \t\r");
  return line.substr(first, last - first + 1);
}

int run(Options& o) {
  const auto path = resolve_model_path(o.model.model);
  const engine::Tokenizer tokenizer = engine::Tokenizer::from_path(path);
  ChatFormat format(tokenizer);  // fails before the load when there is no chat template
  engine::Model model = o.model.load(path, kDefaultContext);
  ChatSession session(model, tokenizer, std::move(format), o.sampling.params, o.system, o.reuse);

  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive) {
    std::fprintf(stderr, "chat with %s (%s); /reset clears the conversation, /exit quits\n",
                 path.string().c_str(), backend_name(model.device().backend()));
  }
  int status = 0;
  std::string line;
  while (true) {
    if (interactive) write_out("> ");
    if (!std::getline(std::cin, line)) break;
    const std::string text = trim(line);
    if (text.empty()) continue;
    if (text == "/exit" || text == "/quit") break;
    if (text == "/reset") {
      session.reset();
      std::fputs("(conversation cleared)\n", stderr);
      continue;
    }
    bool ends_with_newline = true;
    try {
      const ChatTurn turn = session.reply(text, [&](std::string_view piece) {
        if (piece.empty()) return;
        write_out(piece);
        ends_with_newline = piece.back() == '\n';
      });
      if (!ends_with_newline || turn.text.empty()) write_out("\n");
      if (turn.dropped_messages > 0) {
        std::fprintf(stderr, "(dropped the %lld oldest messages to fit the context)\n",
                     static_cast<long long>(turn.dropped_messages));
      }
      if (o.stats) {
        const double decode_steps = static_cast<double>(turn.generated_tokens - 1);
        std::fprintf(stderr,
                     "stats: prompt %lld tokens (%lld reused), prefill %.1f tok/s, decode %.1f "
                     "tok/s, generated %lld tokens, stop %s\n",
                     static_cast<long long>(turn.prompt_tokens),
                     static_cast<long long>(turn.reused_tokens),
                     turn.prefill_seconds > 0
                         ? static_cast<double>(turn.prompt_tokens - turn.reused_tokens) /
                               turn.prefill_seconds
                         : 0.0,
                     turn.decode_seconds > 0 ? decode_steps / turn.decode_seconds : 0.0,
                     static_cast<long long>(turn.generated_tokens),
                     std::string(engine::stop_reason_name(turn.stop_reason)).c_str());
      }
    } catch (const Error& e) {
      // One bad turn (a message too long for the context) does not end the conversation, but
      // the exit status reports it.
      if (!ends_with_newline) write_out("\n");
      std::fprintf(stderr, "error: chat: %s\n", one_line(e.what()).c_str());
      status = 1;
    }
  }
  if (interactive) write_out("\n");
  return status;
}

}  // namespace

int cmd_chat(const Args& args) {
  return run_command("chat", kHelp.c_str(), args, [&] {
    Options o = parse_options(args);
    return run(o);
  });
}

}  // namespace mlxn::cli
