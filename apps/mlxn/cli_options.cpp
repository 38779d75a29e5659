// Option parsing shared by the mlxn subcommands: see cli_options.h.
#include "apps/mlxn/cli_options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>

#include "apps/mlxn/progress_bar.h"
#include "mlxn/core/error.h"

namespace mlxn::cli {

OptionParser& OptionParser::value(const std::string& name, Setter set) {
  specs_[name] = Spec{true, false, std::move(set)};
  return *this;
}

OptionParser& OptionParser::repeated(const std::string& name, Setter set) {
  specs_[name] = Spec{true, true, std::move(set)};
  return *this;
}

OptionParser& OptionParser::flag(const std::string& name, std::function<void()> set) {
  specs_[name] = Spec{false, true, [set = std::move(set)](const std::string&) { set(); }};
  return *this;
}

OptionParser& OptionParser::value(const std::string& name, std::string* out) {
  return value(name, [out](const std::string& v) { *out = v; });
}

OptionParser& OptionParser::flag(const std::string& name, bool* out) {
  return flag(name, [out] { *out = true; });
}

void OptionParser::parse(const Args& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = name.substr(eq + 1);  // --name=value
      name.resize(eq);
    }
    const auto it = specs_.find(name);
    if (it == specs_.end()) {
      if (!name.empty() && name[0] == '-') {
        throw UsageError{"unknown option '" + name + "' (run `mlxn " + command_ + " --help`)"};
      }
      throw UsageError{"unexpected argument '" + name + "' (options need their --name)"};
    }
    const Spec& spec = it->second;
    std::string value;
    if (spec.takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        throw UsageError{name + " needs a value"};
      }
    } else if (inline_value) {
      throw UsageError{name + " takes no value"};
    }
    if (seen_[name]++ > 0 && !spec.repeatable) throw UsageError{name + " given more than once"};
    spec.set(value);
  }
}

std::int64_t parse_int(const std::string& name, const std::string& text, std::int64_t min,
                       std::int64_t max) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || v < min || v > max) {
    throw UsageError{name + " must be an integer in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "], not '" + text + "'"};
  }
  return v;
}

std::uint64_t parse_u64(const std::string& name, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || end != text.c_str() + text.size() || errno == ERANGE) {
    throw UsageError{name + " must be a non-negative 64-bit integer, not '" + text + "'"};
  }
  return v;
}

float parse_float(const std::string& name, const std::string& text, float min, float max) {
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v) ||
      v < min || v > max) {
    char range[96];
    std::snprintf(range, sizeof range, "[%g, %g]", static_cast<double>(min),
                  static_cast<double>(max));
    throw UsageError{name + " must be a number in " + range + ", not '" + text + "'"};
  }
  return v;
}

void ModelArgs::add_to(OptionParser& parser, bool with_context) {
  parser.value("--model", &model);
  parser.value("--backend", [this](const std::string& v) {
    if (v != "auto" && v != "cpu" && v != "cuda") {
      throw UsageError{"--backend must be auto, cpu or cuda, not '" + v + "'"};
    }
    backend = backend_from_name(v);
  });
  parser.value("--dtype", [this](const std::string& v) {
    if (v != "f32" && v != "bf16" && v != "f16") {
      throw UsageError{"--dtype must be f32, bf16 or f16, not '" + v + "'"};
    }
    dtype = dtype_from_name(v);
  });
  parser.value("--prefill-chunk", [this](const std::string& v) {
    prefill_chunk = parse_int("--prefill-chunk", v, 1, std::int64_t{1} << 20);
  });
  parser.flag("--row-order-weights", &row_order_weights);
  parser.flag("--per-op-decode", &per_op_decode);
  parser.flag("--int8-decode-inputs", &int8_decode_inputs);
  if (with_context) {
    parser.value("--context", [this](const std::string& v) {
      context = parse_int("--context", v, 1, std::int64_t{1} << 24);
    });
  }
}

engine::ModelOptions ModelArgs::model_options(std::int64_t default_context) const {
  engine::ModelOptions o;
  o.backend = backend;
  o.compute_dtype = dtype;
  o.context = context.value_or(default_context);
  if (prefill_chunk) o.prefill_chunk = *prefill_chunk;
  o.decode_tiles = !row_order_weights;
  o.fused_decode = !per_op_decode;
  o.fused_decode_inputs =
      int8_decode_inputs ? ops::FusedDecodeInputs::Int8 : ops::FusedDecodeInputs::Int8Pair;
  o.progress = make_load_progress();
  return o;
}

engine::Model ModelArgs::load(const std::filesystem::path& path,
                              std::int64_t default_context) const {
  engine::Model model = engine::Model::load(path, model_options(default_context));
  close_progress_line();
  return model;
}

std::string model_args_help(const std::string& context_line) {
  std::string s =
      "  --model PATH          model directory or .gguf file (default: the bundled model,\n"
      "                        $MLXN_DEFAULT_MODEL or models/default next to the binary)\n"
      "  --backend NAME        auto (CUDA when a GPU is present, else the CPU), cpu or cuda\n"
      "  --dtype NAME          compute dtype f32, bf16 or f16 (default: f32 on the CPU, bf16 on\n"
      "                        CUDA)\n"
      "  --prefill-chunk N     most prompt tokens per forward pass (default 512)\n"
      "  --row-order-weights   keep 4-bit weights in MLX's row order (default on CUDA with bf16:\n"
      "                        re-laid at load in the tile order batch-1 decode streams faster)\n"
      "  --per-op-decode       run decode steps op by op instead of the fused decode step (for\n"
      "                        side-by-side measurements)\n"
      "  --int8-decode-inputs  the fused decode step's products take their inputs as one int8\n"
      "                        plane (faster; several times bf16's rounding noise) instead of "
      "two\n";
  if (!context_line.empty()) s += context_line;
  return s;
}

SamplingArgs::SamplingArgs(std::int64_t max_tokens) {
  params.temperature = 0.7f;
  params.top_p = 0.9f;
  params.seed = 0;
  params.max_tokens = max_tokens;
}

void SamplingArgs::add_to(OptionParser& parser) {
  constexpr float kBig = 1e30f;
  engine::SamplingParams& p = params;
  parser
      .value("--max-tokens",
             [&p](const std::string& v) {
               p.max_tokens = parse_int("--max-tokens", v, -1, std::int64_t{1} << 40);
             })
      .value(
          "--temperature",
          [&p](const std::string& v) { p.temperature = parse_float("--temperature", v, 0, kBig); })
      .value("--top-k",
             [&p](const std::string& v) {
               p.top_k = static_cast<int>(
                   parse_int("--top-k", v, 0, std::numeric_limits<std::int32_t>::max()));
             })
      .value("--top-p",
             [&p](const std::string& v) {
               p.top_p = parse_float("--top-p", v, 0, 1);
               if (p.top_p <= 0.0f) throw UsageError{"--top-p must be > 0 (1 disables it)"};
             })
      .value("--min-p", [&p](const std::string& v) { p.min_p = parse_float("--min-p", v, 0, 1); })
      .value("--repeat-penalty",
             [&p](const std::string& v) {
               p.repetition_penalty = parse_float("--repeat-penalty", v, 0, kBig);
               if (p.repetition_penalty <= 0.0f) {
                 throw UsageError{"--repeat-penalty must be > 0 (1 disables it)"};
               }
             })
      .value("--repeat-last-n",
             [&p](const std::string& v) {
               p.penalty_last_n = static_cast<int>(parse_int("--repeat-last-n", v, -1, 1 << 30));
             })
      .value("--presence-penalty",
             [&p](const std::string& v) {
               p.presence_penalty = parse_float("--presence-penalty", v, -kBig, kBig);
             })
      .value("--frequency-penalty",
             [&p](const std::string& v) {
               p.frequency_penalty = parse_float("--frequency-penalty", v, -kBig, kBig);
             })
      .value("--seed", [&p](const std::string& v) { p.seed = parse_u64("--seed", v); })
      .repeated("--stop", [&p](const std::string& v) {
        if (v.empty()) throw UsageError{"--stop needs a non-empty string"};
        p.stop_strings.push_back(v);
      });
}

std::string sampling_args_help(const std::string& max_tokens_default) {
  return "  --max-tokens N        most tokens to generate (" + max_tokens_default +
         ";\n"
         "                        -1: until a stop or a full context)\n"
         "  --temperature T       0 picks the most likely token every step (greedy, "
         "deterministic);\n"
         "                        > 0 samples (default 0.7)\n"
         "  --top-k K             keep the K most likely tokens (default 0: off)\n"
         "  --top-p P             keep the most likely tokens whose mass reaches P (default 0.9;\n"
         "                        1: off)\n"
         "  --min-p P             drop tokens less likely than P x the top one (default 0: off)\n"
         "  --repeat-penalty R    penalize recent tokens' logits by R (default 1: off)\n"
         "  --repeat-last-n N     how many recent tokens the penalties look at (default 64;\n"
         "                        -1: all)\n"
         "  --presence-penalty P  subtract P once from recent tokens' logits (default 0)\n"
         "  --frequency-penalty F subtract F per occurrence from recent tokens' logits "
         "(default 0)\n"
         "  --seed S              seed of the draws (default 0): the same seed, prompt and\n"
         "                        settings give the same text\n"
         "  --stop STR            end generation where the text reaches STR (repeatable; STR\n"
         "                        is not printed)\n";
}

std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int run_command(const std::string& command, const char* help, const Args& args,
                const std::function<int()>& body) {
  if (wants_help(args)) {
    std::fputs(help, stdout);
    return 0;
  }
  try {
    return body();
  } catch (const UsageError& e) {
    close_progress_line();
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s: %s\n", command.c_str(), one_line(e.message).c_str());
    return 2;
  } catch (const std::exception& e) {
    close_progress_line();
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s: %s\n", command.c_str(), one_line(e.what()).c_str());
    return 1;
  }
}

}  // namespace mlxn::cli
