// The mlxn CLI's subcommands: each takes its arguments (after the subcommand name) and returns
// the process exit code. Errors are thrown as mlxn::Error and reported by main.
#pragma once

#include <string>
#include <vector>

namespace mlxn::cli {

using Args = std::vector<std::string>;

int cmd_version(const Args& args);
int cmd_devices(const Args& args);
int cmd_selftest(const Args& args);
int cmd_inspect(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_detokenize(const Args& args);
int cmd_score(const Args& args);
int cmd_generate(const Args& args);
int cmd_chat(const Args& args);
int cmd_perplexity(const Args& args);
int cmd_bench(const Args& args);

/// True when args holds -h or --help.
bool wants_help(const Args& args);

}  // namespace mlxn::cli
