// `mlxn bench`: prefill and decode throughput of a model on random prompt ids -- the numbers
// docs/perf.md records. Each repeat prefills N seeded random ids and decodes M tokens greedily
// (end-of-sequence ignored); the report gives the medians, the device, the model and whether
// decode steps run fused (Model::fused_decode_status).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "apps/mlxn/cli_options.h"
#include "apps/mlxn/commands.h"
#include "apps/mlxn/copy_bandwidth.h"
#include "apps/mlxn/model_path.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/generator.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/synthetic_model.h"

namespace mlxn::cli {

namespace {

using Json = nlohmann::ordered_json;

const std::string kHelp =
    "usage: mlxn bench [options]\n"
    "\n"
    "Measures prefill and decode speed: each repeat prefills a prompt of random token ids\n"
    "(seeded, so every run sees the same ids) and then decodes greedily, ignoring the\n"
    "end-of-sequence token. Reports the median prefill tok/s, decode tok/s and time to first\n"
    "token over the repeats, after an untimed warm-up run, with the device and the model.\n"
    "\n"
    "  --prompt N            prompt tokens (default 512)\n"
    "  --gen N               generated tokens (default 128)\n"
    "  --repeat R            timed runs (default 3)\n"
    "  --warmup W            untimed runs first (default 1)\n"
    "  --sync-decode         wait for each decode step before submitting the next (by default\n"
    "                        the next step is submitted first; for comparison)\n"
    "  --seed S              seed of the prompt ids (default 0)\n"
    "  --json                print one JSON object instead of text\n"
    "  --synthetic PRESET    random weights of a preset's shape, built in memory instead of\n"
    "                        --model (presets: " +
    engine::synthetic_presets() +
    ")\n"
    "  --quant KIND          storage of the synthetic weights: mlx4, mlx8, bf16, q4_0\n"
    "                        (default mlx4)\n"
    "  --bandwidth-gbs B     memory bandwidth the decode rate is compared with (default: the\n"
    "                        device's copy bandwidth, read + write, measured first)\n" +
    model_args_help(
        "  --context N           positions the KV cache holds (default: prompt + "
        "gen)\n");

struct Options {
  ModelArgs model;
  std::int64_t prompt = 512, gen = 128, repeat = 3, warmup = 1;
  std::uint64_t seed = 0;
  bool json = false;
  bool sync_decode = false;
  std::string synthetic;  // preset name, or empty to load --model
  engine::SyntheticQuant quant = engine::SyntheticQuant::Mlx4;
  bool quant_given = false;
  std::optional<double> bandwidth_gbs;  // --bandwidth-gbs; else measured
};

Options parse_options(const Args& args) {
  Options o;
  OptionParser parser("bench");
  o.model.add_to(parser, true);
  constexpr std::int64_t kMax = std::int64_t{1} << 24;
  parser
      .value("--prompt",
             [&o](const std::string& v) { o.prompt = parse_int("--prompt", v, 1, kMax); })
      .value("--gen", [&o](const std::string& v) { o.gen = parse_int("--gen", v, 1, kMax); })
      .value("--repeat",
             [&o](const std::string& v) { o.repeat = parse_int("--repeat", v, 1, 1000); })
      .value("--warmup",
             [&o](const std::string& v) { o.warmup = parse_int("--warmup", v, 0, 1000); })
      .value("--seed", [&o](const std::string& v) { o.seed = parse_u64("--seed", v); })
      .flag("--json", &o.json)
      .flag("--sync-decode", &o.sync_decode)
      .value("--synthetic", &o.synthetic)
      .value("--quant",
             [&o](const std::string& v) {
               const auto q = engine::parse_synthetic_quant(v);
               if (!q) {
                 throw UsageError{"--quant: '" + v + "' is not one of mlx4, mlx8, bf16, q4_0"};
               }
               o.quant = *q;
               o.quant_given = true;
             })
      .value("--bandwidth-gbs", [&o](const std::string& v) {
        o.bandwidth_gbs = parse_float("--bandwidth-gbs", v, 1e-3f, 1e9f);
      });
  parser.parse(args);
  if (!o.synthetic.empty() && !o.model.model.empty()) {
    throw UsageError{"--synthetic and --model cannot be used together"};
  }
  if (o.quant_given && o.synthetic.empty()) {
    throw UsageError{"--quant applies to --synthetic models only"};
  }
  return o;
}

// The model under test and where it came from: loaded from a path, or synthetic (random weights
// of a preset's shape built in memory, issue 7); the measurement below is the same.
struct BenchModel {
  engine::Model model;
  std::string source;  // the path, or a description of a synthetic model
};

BenchModel open_bench_model(const Options& o) {
  if (!o.synthetic.empty()) {
    engine::ModelOptions options = o.model.model_options(o.prompt + o.gen);
    options.progress = {};  // nothing is read from disk
    engine::Model model = engine::make_synthetic_model(o.synthetic, o.quant, options, o.seed);
    return BenchModel{std::move(model), "synthetic " + o.synthetic + " (" +
                                            std::string(engine::synthetic_quant_name(o.quant)) +
                                            ", random weights)"};
  }
  const auto path = resolve_model_path(o.model.model);
  const std::int64_t needed = o.prompt + o.gen;
  engine::Model model = o.model.load(path, needed);
  return BenchModel{std::move(model), path.string()};
}

// Whether the loader re-laid any 4-bit weight in the DecodeTiles order (CUDA, bf16, unless
// --row-order-weights), so that A/B outputs say which side they are.
bool holds_decode_tiles(const engine::ModelWeights& w) {
  const auto tiled = [](const engine::Linear& l) {
    return l.kind == engine::WeightKind::MlxQuant &&
           l.quant.layout == ops::QuantLayout::DecodeTiles;
  };
  if (tiled(w.lm_head)) return true;
  for (const engine::LayerWeights& l : w.layers) {
    if (tiled(l.attn.o) || tiled(l.attn.q) || (l.mlp && tiled(l.mlp->down))) return true;
  }
  return false;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "4-bit g64 (mlx affine)", the stored float dtype, or "" when the config does not say.
std::string storage_of(const io::ModelConfig& c) {
  if (c.quantization) {
    return std::to_string(c.quantization->defaults().bits) + "-bit g" +
           std::to_string(c.quantization->defaults().group_size) + " (" + c.quantization->mode() +
           ")";
  }
  return c.dtype_name;
}

int run(const Options& o) {
  BenchModel bench = open_bench_model(o);
  engine::Model& model = bench.model;
  const io::ModelConfig& config = model.config();
  const std::int64_t context = model.cache().options().context;
  if (o.prompt + o.gen > context) {
    throw Error(ErrorKind::InvalidArgument,
                "--prompt " + std::to_string(o.prompt) + " + --gen " + std::to_string(o.gen) +
                    " tokens do not fit the context of " + std::to_string(context) +
                    " positions (the model's maximum, or --context)");
  }
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<std::int32_t> pick_id(
      0, static_cast<std::int32_t>(config.vocab_size - 1));
  std::vector<std::int32_t> prompt(static_cast<std::size_t>(o.prompt));
  for (std::int32_t& id : prompt) id = pick_id(rng);

  engine::Generator generator(model);
  engine::SamplingParams params;  // greedy, no stop ids: always o.gen tokens
  params.temperature = 0.0f;
  params.max_tokens = o.gen;
  engine::GenerateOptions run_options;
  run_options.pipelined = !o.sync_decode;
  const auto once = [&] { return generator.generate(prompt, params, {}, {}, {}, run_options); };
  for (std::int64_t i = 0; i < o.warmup; ++i) once();

  std::vector<double> prefill, decode, ttft;
  Json runs = Json::array();
  for (std::int64_t i = 0; i < o.repeat; ++i) {
    const engine::GenerationResult r = once();
    prefill.push_back(r.prefill_tokens_per_second);
    decode.push_back(r.decode_tokens_per_second);
    ttft.push_back(r.time_to_first_token_seconds * 1e3);
    runs.push_back({{"prefill_tok_s", r.prefill_tokens_per_second},
                    {"decode_tok_s", r.decode_tokens_per_second},
                    {"ttft_ms", r.time_to_first_token_seconds * 1e3},
                    {"generated_tokens", r.tokens.size()}});
  }

  const std::string backend = backend_name(model.device().backend());
  const std::string device = model.device().name();
  const std::string dtype(dtype_name(model.compute_dtype()));
  const std::string arch(io::architecture_name(config.arch));
  const std::string storage =
      o.synthetic.empty() ? storage_of(config) : std::string(engine::synthetic_quant_name(o.quant));
  // Decode is bound by reading the weights once per token: bytes per token x tok/s against the
  // assumed bandwidth says how close to the limit it runs (the KV cache reads are not counted).
  const std::int64_t bytes_per_token = engine::decode_weight_bytes(model.weights());
  const double decode_gbs = median(decode) * static_cast<double>(bytes_per_token) / 1e9;
  // The limit: the device's copy bandwidth, measured here after the runs (their buffers stay
  // allocated, so a model that fills the device may leave no room: then none is given).
  std::optional<double> bandwidth = o.bandwidth_gbs;
  std::string bandwidth_source = "--bandwidth-gbs";
  if (!bandwidth) {
    const CopyBandwidth copy = measure_copy_bandwidth(model.device());
    bandwidth = copy.gbs;
    bandwidth_source = copy.gbs ? "measured copy (read + write)" : "not measured: " + copy.problem;
  }
  const std::optional<double> fraction =
      bandwidth ? std::optional<double>(decode_gbs / *bandwidth) : std::nullopt;
  // How the fused step's products took their inputs; empty when decode ran op by op.
  const std::optional<ops::FusedDecodeInputs> inputs = model.fused_decode_inputs();
  const bool one_plane = inputs == ops::FusedDecodeInputs::Int8;
  const std::string fused_inputs = !inputs ? "" : one_plane ? "int8" : "int8 pair";
  if (o.json) {
    Json j;
    j["model"] = bench.source;
    j["synthetic"] = o.synthetic.empty() ? Json(nullptr) : Json(o.synthetic);
    j["quant"] = o.synthetic.empty() ? Json(nullptr)
                                     : Json(std::string(engine::synthetic_quant_name(o.quant)));
    j["architecture"] = arch;
    j["layers"] = config.n_layers;
    j["hidden_size"] = config.hidden_size;
    j["vocab_size"] = config.vocab_size;
    j["storage"] = storage;
    j["weights_bytes"] = model.weights().bytes;
    j["backend"] = backend;
    j["device"] = device;
    j["dtype"] = dtype;
    j["prompt_tokens"] = o.prompt;
    j["gen_tokens"] = o.gen;
    j["repeat"] = o.repeat;
    j["pipelined_decode"] = !o.sync_decode;
    j["decode_tiles"] = holds_decode_tiles(model.weights());
    j["fused_decode"] = model.fused_decode_status();
    if (!fused_inputs.empty()) j["fused_decode_inputs"] = fused_inputs;
    j["prefill_tok_s"] = median(prefill);
    j["decode_tok_s"] = median(decode);
    j["ttft_ms"] = median(ttft);
    j["weight_bytes_per_token"] = bytes_per_token;
    j["decode_bandwidth_gbs"] = decode_gbs;
    j["bandwidth_gbs"] = bandwidth ? Json(*bandwidth) : Json(nullptr);
    j["bandwidth_source"] = bandwidth_source;
    j["bandwidth_fraction"] = fraction ? Json(*fraction) : Json(nullptr);
    j["runs"] = runs;
    std::puts(j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("model:    %s\n", bench.source.c_str());
  std::printf("          %s, %lld layers, hidden %lld, vocab %lld, %s, %.1f MiB of weights\n",
              arch.c_str(), static_cast<long long>(config.n_layers),
              static_cast<long long>(config.hidden_size), static_cast<long long>(config.vocab_size),
              storage.c_str(), static_cast<double>(model.weights().bytes) / (1024.0 * 1024.0));
  std::printf("device:   %s (%s), compute %s\n", device.c_str(), backend.c_str(), dtype.c_str());
  std::printf("fused decode: %s%s\n", model.fused_decode_status().c_str(),
              !inputs     ? ""
              : one_plane ? " (inputs: one int8 plane)"
                          : " (inputs: two int8 planes)");
  std::printf("run:      prompt %lld tokens, generate %lld tokens, %lld repeats (median)\n",
              static_cast<long long>(o.prompt), static_cast<long long>(o.gen),
              static_cast<long long>(o.repeat));
  std::printf("prefill:  %.1f tok/s\n", median(prefill));
  std::printf("decode:   %.1f tok/s (%s)\n", median(decode),
              o.sync_decode ? "each step waited for" : "pipelined");
  std::printf("ttft:     %.1f ms\n", median(ttft));
  std::printf("weights:  %.1f MiB read per decoded token -> %.1f GB/s",
              static_cast<double>(bytes_per_token) / (1024.0 * 1024.0), decode_gbs);
  if (fraction) {
    std::printf(", %.1f%% of %.0f GB/s (%s)\n", 100.0 * *fraction, *bandwidth,
                bandwidth_source.c_str());
  } else {
    std::printf(" (bandwidth %s)\n", bandwidth_source.c_str());
  }
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  return run_command("bench", kHelp.c_str(), args, [&] { return run(parse_options(args)); });
}

}  // namespace mlxn::cli
