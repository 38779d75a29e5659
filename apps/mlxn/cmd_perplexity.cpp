// `mlxn perplexity`: the perplexity of a model on a text file, by the standard sliding-window
// evaluation (Hugging Face's perplexity guide): windows of `context` tokens advance by `stride`,
// and each window scores only the tokens no earlier window scored, each with all the context
// its window gives it.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "apps/mlxn/cli_options.h"
#include "apps/mlxn/commands.h"
#include "apps/mlxn/model_path.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

namespace {

constexpr std::int64_t kDefaultContext = 512;

const std::string kHelp =
    "usage: mlxn perplexity --file FILE [options]\n"
    "\n"
    "Computes the perplexity of the model on a text file. The text is tokenized as\n"
    "`mlxn tokenize` does (with the tokenizer's BOS/EOS). Windows of --context tokens start\n"
    "every --stride tokens; each scores only the tokens that no earlier window scored (the\n"
    "first token of the text has no context and is never scored). Prints the tokens scored,\n"
    "the mean negative log-likelihood (nats per token) and the perplexity exp(mean NLL).\n"
    "\n"
    "  --file FILE           the text (UTF-8)\n"
    "  --stride S            tokens between window starts (default: context / 2; at most the\n"
    "                        context)\n"
    "  --json                print one JSON object instead of text\n" +
    model_args_help(
        "  --context N           tokens per window (default 512, at most the model's\n"
        "                        maximum)\n");

struct Options {
  ModelArgs model;
  std::string file;
  std::optional<std::int64_t> stride;
  bool json = false;
};

Options parse_options(const Args& args) {
  Options o;
  OptionParser parser("perplexity");
  o.model.add_to(parser, true);
  parser.value("--file", &o.file)
      .value("--stride",
             [&o](const std::string& v) {
               o.stride = parse_int("--stride", v, 1, std::int64_t{1} << 24);
             })
      .flag("--json", &o.json);
  parser.parse(args);
  if (o.file.empty()) throw UsageError{"--file FILE is required"};
  if (o.stride && *o.stride > o.model.context.value_or(kDefaultContext)) {
    throw UsageError{"--stride " + std::to_string(*o.stride) + " is larger than the context (" +
                     std::to_string(o.model.context.value_or(kDefaultContext)) +
                     "): tokens between windows would never be scored"};
  }
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, "--file " + path + ": cannot open: " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorKind::Io, "--file " + path + ": cannot read");
  return text;
}

// -log softmax(row)[target], in double.
double token_nll(std::span<const float> row, std::int32_t target) {
  double max = -INFINITY;
  for (const float v : row) max = std::max(max, static_cast<double>(v));
  double sum = 0.0;
  for (const float v : row) sum += std::exp(static_cast<double>(v) - max);
  return max + std::log(sum) - static_cast<double>(row[static_cast<std::size_t>(target)]);
}

int run(const Options& o) {
  const auto path = resolve_model_path(o.model.model);
  const std::string text = read_file(o.file);
  const engine::Tokenizer tokenizer = engine::Tokenizer::from_path(path);
  const std::vector<std::int32_t> ids = tokenizer.encode(text);
  const auto n_ids = static_cast<std::int64_t>(ids.size());
  if (n_ids < 2) {
    throw Error(ErrorKind::InvalidArgument, "--file " + o.file + ": the text has " +
                                                std::to_string(n_ids) +
                                                " token(s); perplexity needs at least 2");
  }

  // The cache only ever holds one window.
  engine::Model model = o.model.load(path, kDefaultContext);
  const std::int64_t context = model.cache().options().context;  // clamped to the model's max
  const std::int64_t stride =
      std::min(o.stride.value_or(std::max<std::int64_t>(1, context / 2)), context);

  double nll_sum = 0.0;
  std::int64_t scored = 0, windows = 0, prev_end = 0;
  for (std::int64_t begin = 0;; begin += stride) {
    const std::int64_t end = std::min(begin + context, n_ids);
    const std::int64_t n = end - begin;
    const std::int64_t new_tokens = end - prev_end;  // not scored by an earlier window
    const std::span<const std::int32_t> window(ids.data() + begin, static_cast<std::size_t>(n));
    const std::vector<float> logits = model.score(window);
    const auto vocab = static_cast<std::int64_t>(logits.size()) / n;
    // Position j is predicted by the logits of position j - 1; position 0 has no context.
    for (std::int64_t j = std::max<std::int64_t>(1, n - new_tokens); j < n; ++j) {
      const std::span<const float> row(logits.data() + (j - 1) * vocab,
                                       static_cast<std::size_t>(vocab));
      nll_sum += token_nll(row, window[static_cast<std::size_t>(j)]);
      ++scored;
    }
    ++windows;
    prev_end = end;
    if (end == n_ids) break;
  }
  const double mean_nll = nll_sum / static_cast<double>(scored);
  const double ppl = std::exp(mean_nll);

  if (o.json) {
    nlohmann::ordered_json j;
    j["file"] = o.file;
    j["model"] = path.string();
    j["tokens"] = n_ids;
    j["tokens_scored"] = scored;
    j["windows"] = windows;
    j["context"] = context;
    j["stride"] = stride;
    j["mean_nll"] = mean_nll;
    j["perplexity"] = ppl;
    j["backend"] = backend_name(model.device().backend());
    j["dtype"] = std::string(dtype_name(model.compute_dtype()));
    std::puts(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  } else {
    std::printf("file:          %s (%lld tokens)\n", o.file.c_str(), static_cast<long long>(n_ids));
    std::printf("windows:       %lld (context %lld, stride %lld; %s, %s)\n",
                static_cast<long long>(windows), static_cast<long long>(context),
                static_cast<long long>(stride), backend_name(model.device().backend()),
                std::string(dtype_name(model.compute_dtype())).c_str());
    std::printf("tokens scored: %lld\n", static_cast<long long>(scored));
    std::printf("mean NLL:      %.6f\n", mean_nll);
    std::printf("perplexity:    %.4f\n", ppl);
  }
  return 0;
}

}  // namespace

int cmd_perplexity(const Args& args) {
  return run_command("perplexity", kHelp.c_str(), args, [&] { return run(parse_options(args)); });
}

}  // namespace mlxn::cli
