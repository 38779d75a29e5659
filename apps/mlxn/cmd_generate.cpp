// `mlxn generate`: continues a prompt (or answers it through the model's chat template with
// --chat), streaming the text to stdout as it is produced, and ends with one statistics line on
// stderr.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "apps/mlxn/chat_format.h"
#include "apps/mlxn/cli_options.h"
#include "apps/mlxn/commands.h"
#include "apps/mlxn/model_path.h"
#include "mlxn/engine/generator.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

namespace {

constexpr std::int64_t kDefaultMaxTokens = 256;
constexpr std::int64_t kDefaultContext = 4096;

const std::string kHelp =
    "usage: mlxn generate --prompt STR [options]\n"
    "\n"
    "Generates a continuation of the prompt and prints it to stdout as it is produced\n"
    "(followed by a newline). Generation ends at the model's end-of-sequence token, a --stop\n"
    "string, --max-tokens or a full context. A statistics line goes to stderr at the end:\n"
    "prompt tokens, prefill tok/s, decode tok/s, time to first token, generated tokens.\n"
    "Sampling defaults to temperature 0.7, top-p 0.9 with the fixed seed 0, so a rerun\n"
    "prints the same text; --temperature 0 is greedy decoding.\n"
    "\n"
    "  --prompt STR          the prompt (required)\n"
    "  --chat                wrap the prompt in the model's chat template as a user message\n"
    "                        (with the assistant header) and stop at the end of the turn\n"
    "  --system STR          with --chat: a system message before the prompt\n"
    "  --ignore-eos          keep going past the end-of-sequence token\n"
    "  --no-stats            do not print the statistics line\n" +
    sampling_args_help("default 256") +
    model_args_help(
        "  --context N           positions the KV cache holds (default 4096, at most "
        "the\n"
        "                        model's maximum)\n");

struct Options {
  ModelArgs model;
  SamplingArgs sampling{kDefaultMaxTokens};
  std::string prompt, system;
  bool have_prompt = false, chat = false, ignore_eos = false, stats = true;
};

Options parse_options(const Args& args) {
  Options o;
  OptionParser parser("generate");
  o.model.add_to(parser, true);
  o.sampling.add_to(parser);
  parser.value("--prompt", &o.prompt)
      .value("--system", &o.system)
      .flag("--chat", &o.chat)
      .flag("--ignore-eos", &o.ignore_eos)
      .flag("--no-stats", [&o] { o.stats = false; });
  parser.parse(args);
  if (!parser.seen("--prompt")) throw UsageError{"--prompt STR is required"};
  if (parser.seen("--system") && !o.chat) throw UsageError{"--system needs --chat"};
  return o;
}

void write_out(std::string_view text) {
  if (text.empty()) return;
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);  // stream: the reader sees each piece as it is produced
}

int run(Options& o) {
  const auto path = resolve_model_path(o.model.model);
  // The tokenizer first: it is cheap and its errors (missing files) come before a long load.
  const engine::Tokenizer tokenizer = engine::Tokenizer::from_path(path);
  engine::SamplingParams& params = o.sampling.params;

  std::vector<std::int32_t> prompt;
  if (o.chat) {
    const ChatFormat format(tokenizer);
    std::vector<ChatMessage> messages;
    if (!o.system.empty()) messages.push_back({"system", o.system});
    messages.push_back({"user", o.prompt});
    prompt = format.tokenize(messages, true);
    params.stop_ids = format.stop_ids();
    for (const std::string& s : format.stop_strings()) params.stop_strings.push_back(s);
  } else {
    prompt = tokenizer.encode(o.prompt);
    params.stop_ids = tokenizer.stop_ids();
  }
  if (o.ignore_eos) params.stop_ids.clear();
  if (prompt.empty()) {
    throw UsageError{
        "the prompt encodes to no tokens (the tokenizer adds no BOS); give a "
        "non-empty --prompt"};
  }
  engine::validate(params);  // before the load: a bad setting should not cost a model load

  engine::Model model = o.model.load(path, kDefaultContext);
  engine::Generator generator(model);
  // Special tokens other than the stop ids (which are never printed) are left out of the text.
  engine::TokenStreamDecoder decoder(tokenizer, /*skip_special_tokens=*/true);
  bool ends_with_newline = true;
  auto print = [&](std::string_view text) {
    if (text.empty()) return;
    write_out(text);
    ends_with_newline = text.back() == '\n';
  };
  const engine::GenerationResult r = generator.generate(
      prompt, params, {}, [&](std::int32_t id) { return decoder.push(id); }, print);
  // Bytes of an unfinished character are still held by the decoder (U+FFFD when incomplete).
  if (r.stop_reason != engine::StopReason::StopString) print(decoder.finish());
  if (!ends_with_newline) write_out("\n");

  if (o.stats) {
    std::fprintf(stderr,
                 "stats: prompt %lld tokens, prefill %.1f tok/s, decode %.1f tok/s, "
                 "ttft %.1f ms, generated %lld tokens, stop %s (%s, %s)\n",
                 static_cast<long long>(r.prompt_tokens), r.prefill_tokens_per_second,
                 r.decode_tokens_per_second, r.time_to_first_token_seconds * 1e3,
                 static_cast<long long>(r.tokens.size()),
                 std::string(engine::stop_reason_name(r.stop_reason)).c_str(),
                 backend_name(model.device().backend()),
                 std::string(dtype_name(model.compute_dtype())).c_str());
  }
  return 0;
}

}  // namespace

int cmd_generate(const Args& args) {
  return run_command("generate", kHelp.c_str(), args, [&] {
    Options o = parse_options(args);
    return run(o);
  });
}

}  // namespace mlxn::cli
