// Command-line plumbing shared by the mlxn subcommands: a small option parser (--name VALUE,
// --name=VALUE, flags, repeatable options), typed value checks, the option groups several
// commands share (model/backend/dtype/context, sampling), and the wrapper that turns --help,
// usage mistakes (exit 2) and runtime errors (exit 1) into the CLI's conventions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "apps/mlxn/commands.h"
#include "mlxn/core/device.h"
#include "mlxn/core/dtype.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/sampler.h"

namespace mlxn::cli {

/// A command-line mistake: reported as one `error: <command>: ...` line with exit code 2.
struct UsageError {
  std::string message;
};

/// Declared options of one subcommand, parsed in one pass. Every option is spelled --name;
/// valued options take the next argument or `--name=value`. Positional arguments and unknown
/// options are usage errors; a non-repeatable option given twice is one too.
class OptionParser {
 public:
  using Setter = std::function<void(const std::string& value)>;

  /// `command` names the subcommand in messages ("run `mlxn generate --help`").
  explicit OptionParser(std::string command) : command_(std::move(command)) {}

  /// --name VALUE, at most once; `set` validates and stores (throwing UsageError).
  OptionParser& value(const std::string& name, Setter set);
  /// --name VALUE, any number of times; `set` is called for each, in order.
  OptionParser& repeated(const std::string& name, Setter set);
  /// --name without a value.
  OptionParser& flag(const std::string& name, std::function<void()> set);
  /// Shorthands storing the raw text / true.
  OptionParser& value(const std::string& name, std::string* out);
  OptionParser& flag(const std::string& name, bool* out);

  void parse(const Args& args);
  /// True when the option appeared on the command line (after parse).
  bool seen(const std::string& name) const { return seen_.count(name) != 0; }
  const std::string& command() const { return command_; }

 private:
  struct Spec {
    bool takes_value = true;
    bool repeatable = false;
    Setter set;
  };
  std::string command_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, int> seen_;
};

/// Integer value of option `name` in [min, max]; UsageError naming the option otherwise.
std::int64_t parse_int(const std::string& name, const std::string& text, std::int64_t min,
                       std::int64_t max);
/// Unsigned 64-bit value (seeds).
std::uint64_t parse_u64(const std::string& name, const std::string& text);
/// Finite float value of option `name` in [min, max].
float parse_float(const std::string& name, const std::string& text, float min, float max);

/// The options of commands that load a model: --model, --backend, --dtype and (optionally)
/// --context.
struct ModelArgs {
  std::string model;  // empty: the bundled default model (model_path.h)
  Backend backend = Backend::Auto;
  std::optional<DType> dtype;
  std::optional<std::int64_t> context;
  std::optional<std::int64_t> prefill_chunk;
  bool row_order_weights = false;   // ModelOptions::decode_tiles off
  bool per_op_decode = false;       // ModelOptions::fused_decode off
  bool int8_decode_inputs = false;  // ModelOptions::fused_decode_inputs: one int8 plane

  /// Registers --model, --backend, --dtype, --prefill-chunk, --row-order-weights,
  /// --per-op-decode, --int8-decode-inputs, and --context when `with_context`.
  void add_to(OptionParser& parser, bool with_context);
  /// ModelOptions for these arguments (context: the given one, else `default_context`), with a
  /// progress bar on stderr for large models (progress_bar.h).
  engine::ModelOptions model_options(std::int64_t default_context) const;
  /// Model::load of `path` with model_options(default_context); ends the progress bar's line
  /// even when the loader's last report fell short of the total.
  engine::Model load(const std::filesystem::path& path, std::int64_t default_context) const;
};

/// Help text of the ModelArgs options (for the commands' --help), `context_line` included
/// when non-empty.
std::string model_args_help(const std::string& context_line);

/// The sampling options shared by generate and chat: --max-tokens, --temperature, --top-k,
/// --top-p, --min-p, --repeat-penalty, --presence-penalty, --frequency-penalty, --seed, --stop.
struct SamplingArgs {
  engine::SamplingParams params;

  /// The CLI's defaults: temperature 0.7, top-p 0.9, seed 0 (so a rerun gives the same text),
  /// at most `max_tokens` tokens.
  explicit SamplingArgs(std::int64_t max_tokens);
  void add_to(OptionParser& parser);
};

/// Help text of the sampling options; `max_tokens_default` describes --max-tokens' default.
std::string sampling_args_help(const std::string& max_tokens_default);

/// Runs a subcommand the CLI's way: prints `help` for -h/--help (exit 0); otherwise calls
/// `body`, mapping UsageError to `error: <command>: ...` with exit 2 and any other exception
/// to the same single line (newlines folded) with exit 1.
int run_command(const std::string& command, const char* help, const Args& args,
                const std::function<int()>& body);

/// `text` with newlines folded to spaces (error messages must stay on one line).
std::string one_line(std::string text);

}  // namespace mlxn::cli
