// `mlxn inspect PATH`: what a weight file or model directory holds -- format, architecture,
// hyper-parameters, dtype and quantization summary, tensors and metadata -- as text or JSON.
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>

#include "apps/mlxn/commands.h"
#include "mlxn/core/error.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/model_config_gguf.h"
#include "mlxn/io/model_dir.h"
#include "mlxn/io/model_dir_gguf.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/io/safetensors_model.h"

namespace mlxn::cli {

namespace {

namespace fs = std::filesystem;
using io::TensorView;
using Json = nlohmann::ordered_json;

constexpr const char* kHelp =
    "usage: mlxn inspect PATH [--json] [--tensors]\n"
    "\n"
    "Describes a model directory (config.json + safetensors), a .gguf file, a .safetensors\n"
    "file or a model.safetensors.index.json: format, architecture, hyper-parameters, dtype and\n"
    "quantization, tensor count and bytes, metadata. Directories are validated against their\n"
    "architecture (every tensor present with the expected shape).\n"
    "\n"
    "  --json      print one JSON object instead of text\n"
    "  --tensors   also list every tensor: name, dtype, shape, bytes\n";

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

Json shape_json(const Shape& s) {
  Json a = Json::array();
  for (auto d : s) a.push_back(d);
  return a;
}

// Tensor list and dtype histogram of safetensors tensors.
void describe_tensors(Json& out, std::span<const TensorView> tensors, bool list) {
  std::map<std::string, std::int64_t> dtypes;
  std::uint64_t bytes = 0;
  for (const TensorView& t : tensors) {
    ++dtypes[std::string(io::tensor_dtype_name(t.dtype))];
    bytes += t.size_bytes();
  }
  out["tensor_count"] = tensors.size();
  out["tensor_bytes"] = bytes;
  out["tensor_dtypes"] = dtypes;
  if (!list) return;
  Json arr = Json::array();
  for (const TensorView& t : tensors) {
    arr.push_back({{"name", t.name},
                   {"dtype", io::tensor_dtype_name(t.dtype)},
                   {"shape", shape_json(t.shape)},
                   {"bytes", t.size_bytes()}});
  }
  out["tensors"] = arr;
}

Json rope_json(const io::RopeConfig& r) {
  Json j = {{"type", io::rope_type_name(r.type)}, {"theta", r.theta}};
  if (r.type != io::RopeType::Default) j["factor"] = r.factor;
  if (r.original_max_position_embeddings) {
    j["original_max_position_embeddings"] = r.original_max_position_embeddings;
  }
  if (r.partial_rotary_factor != 1.0) j["partial_rotary_factor"] = r.partial_rotary_factor;
  return j;
}

Json config_json(const io::ModelConfig& c) {
  Json j;
  j["architecture"] = io::architecture_name(c.arch);
  j["model_type"] = c.model_type;
  if (!c.architecture_class.empty()) j["architecture_class"] = c.architecture_class;
  j["supported"] = c.arch != io::Architecture::Unknown;
  j["dtype"] = c.dtype_name;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["rope"] = rope_json(c.rope);
  const std::int64_t sliding =
      std::count(c.layer_types.begin(), c.layer_types.end(), io::AttentionKind::Sliding);
  if (sliding > 0) {
    j["sliding_window"] = *c.sliding_window;
    j["sliding_layers"] = sliding;
    j["rope_local"] = rope_json(c.rope_local);
  }
  if (c.n_experts > 0) {
    j["num_experts"] = c.n_experts;
    j["num_experts_per_tok"] = c.n_experts_per_tok;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
  }
  return j;
}

// "model.layers.3.self_attn.q_proj" -> "attention"; "...mlp.experts.7.up_proj" ->
// "mlp.experts.up_proj": the module groups the quantization summary reports.
std::string module_group(const std::string& tensor_name) {
  static const std::regex layer(R"(^(?:.*\.)?layers\.\d+\.)");
  static const std::regex expert(R"(\.experts\.\d+\.)");
  std::string m = tensor_name.substr(0, tensor_name.rfind(".weight"));
  m = std::regex_replace(m, layer, "");
  m = std::regex_replace(m, expert, ".experts.");
  if (m.rfind("self_attn.", 0) == 0) return "attention";
  if (m == "mlp.gate") return "mlp.router";
  if (m.find("embed_tokens") != std::string::npos) return "embed_tokens";
  if (m.find("lm_head") != std::string::npos) return "lm_head";
  return m;
}

// Per module group: the distinct storage ("4-bit g64", "bf16") with module counts.
Json quant_summary(const io::WeightCheck& check, std::string& text) {
  std::map<std::string, std::map<std::string, int>> groups;
  std::vector<std::string> order;
  for (const io::TensorBinding& b : check.bindings) {
    if (!b.expected.quantizable) continue;
    const std::string g = module_group(b.expected.name);
    if (!groups.count(g)) order.push_back(g);
    const std::string how =
        b.quant ? std::to_string(b.quant->bits) + "-bit g" + std::to_string(b.quant->group_size)
                : std::string(io::tensor_dtype_name(b.dtype));
    ++groups[g][how];
  }
  Json j = Json::object();
  for (const std::string& g : order) {
    Json per = Json::object();
    std::string part = g + ": ";
    bool first = true;
    for (const auto& [how, n] : groups[g]) {
      per[how] = n;
      part +=
          (first ? "" : " / ") + how + (groups[g].size() > 1 ? " (" + std::to_string(n) + ")" : "");
      first = false;
    }
    j[g] = per;
    text += (text.empty() ? "" : ", ") + part;
  }
  return j;
}

Json inspect_directory(const fs::path& path, bool list) {
  const io::ModelDir m = io::ModelDir::open(path);
  Json out;
  out["path"] = path.string();
  if (m.format() == io::ModelFormat::Gguf) {
    out["format"] = "gguf";
    out["file"] = m.gguf()->name();  // (directories holding one .gguf go to inspect_gguf)
  } else {
    const auto& st = *m.safetensors();
    out["format"] = "safetensors";
    out["files"] = st.files().size();
    if (!st.index_path().empty()) out["index"] = st.index_path().filename().string();
  }
  out["config"] = config_json(m.config());
  out["tokenizer_files"] = m.tokenizer_files().present();
  if (const auto& q = m.config().quantization) {
    out["quantization"] = {{"mode", q->mode()},
                           {"bits", q->defaults().bits},
                           {"group_size", q->defaults().group_size},
                           {"overrides", q->overrides().size()}};
  }
  if (m.safetensors()) {
    describe_tensors(out, m.safetensors()->tensors(), list);
    if (m.config().arch == io::Architecture::Unknown) {
      out["weights"] = {{"checked", false},
                        {"reason", "architecture not supported (supported: " +
                                       io::supported_architectures() + ")"}};
    } else {
      const io::WeightCheck check = m.check_weights();  // throws naming the bad tensor
      std::string text;
      out["module_storage"] = quant_summary(check, text);
      out["module_storage_text"] = text;
      out["weights"] = {{"checked", true},
                        {"expected_tensors", check.bindings.size()},
                        {"unused_tensors", check.unused.size()}};
    }
  }
  return out;
}

Json inspect_gguf(const fs::path& path, bool list) {
  const io::GgufFile f = io::GgufFile::open(path);
  Json out;
  out["path"] = path.string();
  out["format"] = "gguf";
  out["version"] = f.version();
  out["alignment"] = f.alignment();
  try {
    const io::ModelConfig config = io::model_config_from_gguf(f);
    out["config"] = config_json(config);
    const io::WeightCheck check = io::check_gguf_weights(config, f);  // throws naming the tensor
    out["weights"] = {{"checked", true},
                      {"expected_tensors", check.bindings.size()},
                      {"unused_tensors", check.unused.size()}};
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Unsupported) throw;
    out["config"] = {{"supported", false}, {"reason", e.what()}};
  }
  std::map<std::string, std::int64_t> types;
  std::uint64_t bytes = 0;
  Json arr = Json::array();
  for (const io::GgufTensorInfo& t : f.tensors()) {
    ++types[io::ggml_type_name(t.type)];
    bytes += t.n_bytes;
    if (list) {
      arr.push_back({{"name", t.name},
                     {"dtype", io::ggml_type_name(t.type)},
                     {"shape", shape_json(t.shape())},
                     {"bytes", t.n_bytes}});
    }
  }
  out["tensor_count"] = f.tensors().size();
  out["tensor_bytes"] = bytes;
  out["tensor_dtypes"] = types;
  Json meta = Json::object();
  for (const io::GgufKv& kv : f.metadata()) meta[kv.key] = kv.value.to_string();
  out["metadata"] = meta;
  if (list) out["tensors"] = arr;
  return out;
}

Json inspect_safetensors(const fs::path& path, bool list) {
  Json out;
  out["path"] = path.string();
  out["format"] = "safetensors";
  if (path.extension() == ".json") {
    const io::SafetensorsModel m = io::SafetensorsModel::open(path);
    out["files"] = m.files().size();
    describe_tensors(out, m.tensors(), list);
    return out;
  }
  const io::SafetensorsFile f = io::SafetensorsFile::open(path);
  describe_tensors(out, f.tensors(), list);
  int quantized = 0;
  for (const TensorView& t : f.tensors()) {
    if (t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".scales") == 0) ++quantized;
  }
  if (quantized) out["mlx_quantized_modules"] = quantized;
  out["metadata"] = f.metadata();
  return out;
}

// The only .gguf file in `dir`, if there is exactly one.
std::optional<fs::path> single_gguf(const fs::path& dir) {
  std::error_code ec;
  std::optional<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".gguf") continue;
    if (found) return std::nullopt;
    found = entry.path();
  }
  return found;
}

void print_text(const Json& r) {
  auto line = [](const char* key, const std::string& value) {
    std::printf("%-14s %s\n", key, value.c_str());
  };
  line("path:", r["path"].get<std::string>());
  std::string format = r["format"].get<std::string>();
  if (r.contains("version")) format += " v" + std::to_string(r["version"].get<int>());
  if (r.contains("files")) format += " (" + std::to_string(r["files"].get<int>()) + " file(s))";
  line("format:", format);
  if (r.contains("config")) {
    const Json& c = r["config"];
    if (!c.value("supported", true) && !c.contains("hidden_size")) {
      line("architecture:", c.value("reason", "unsupported"));
    } else {
      std::string arch = c["architecture"].get<std::string>();
      if (c.contains("architecture_class"))
        arch += " (" + c["architecture_class"].get<std::string>() + ")";
      if (!c["supported"].get<bool>())
        arch += " [not supported: model_type " + c["model_type"].get<std::string>() + "]";
      line("architecture:", arch);
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "layers %lld, hidden %lld, heads %lld/%lld kv, head_dim %lld, vocab %lld, "
                    "ffn %lld",
                    c["num_hidden_layers"].get<long long>(), c["hidden_size"].get<long long>(),
                    c["num_attention_heads"].get<long long>(),
                    c["num_key_value_heads"].get<long long>(), c["head_dim"].get<long long>(),
                    c["vocab_size"].get<long long>(), c["intermediate_size"].get<long long>());
      line("config:", buf);
      line("rope:",
           c["rope"].dump() + (c.contains("rope_local") ? " local " + c["rope_local"].dump() : ""));
      if (c.contains("num_experts")) {
        line("experts:", std::to_string(c["num_experts"].get<long long>()) + " (top " +
                             std::to_string(c["num_experts_per_tok"].get<long long>()) + ")");
      }
      if (c.contains("sliding_window")) {
        line("sliding:", std::to_string(c["sliding_layers"].get<long long>()) + " layers, window " +
                             std::to_string(c["sliding_window"].get<long long>()));
      }
      if (!c["dtype"].get<std::string>().empty()) line("dtype:", c["dtype"].get<std::string>());
    }
  }
  if (r.contains("quantization")) {
    const Json& q = r["quantization"];
    line("quantization:", q["mode"].get<std::string>() + ", default " +
                              std::to_string(q["bits"].get<int>()) + "-bit g" +
                              std::to_string(q["group_size"].get<int>()) + ", " +
                              std::to_string(q["overrides"].get<int>()) + " per-module overrides");
  }
  if (r.contains("module_storage_text"))
    line("modules:", r["module_storage_text"].get<std::string>());
  std::string dtypes;
  for (const auto& [k, v] : r["tensor_dtypes"].items()) {
    dtypes += (dtypes.empty() ? "" : ", ") + k + " " + std::to_string(v.get<long long>());
  }
  line("tensors:", std::to_string(r["tensor_count"].get<long long>()) + " (" +
                       human_bytes(r["tensor_bytes"].get<std::uint64_t>()) + "): " + dtypes);
  if (r.contains("mlx_quantized_modules")) {
    line("quantized:", std::to_string(r["mlx_quantized_modules"].get<int>()) +
                           " MLX affine modules (bits/group size are in config.json)");
  }
  if (r.contains("tokenizer_files")) {
    std::string t;
    for (const auto& n : r["tokenizer_files"]) t += (t.empty() ? "" : ", ") + n.get<std::string>();
    line("tokenizer:", t.empty() ? "(none)" : t);
  }
  if (r.contains("weights")) {
    const Json& w = r["weights"];
    line("weights:", w["checked"].get<bool>()
                         ? "ok (" + std::to_string(w["expected_tensors"].get<long long>()) +
                               " expected tensors present, " +
                               std::to_string(w["unused_tensors"].get<long long>()) + " unused)"
                         : "not checked: " + w["reason"].get<std::string>());
  }
  if (r.contains("metadata") && !r["metadata"].empty()) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : r["metadata"].items()) {
      std::printf("  %s = %s\n", k.c_str(), v.get<std::string>().c_str());
    }
  }
  if (r.contains("tensors")) {
    std::printf("tensors:\n");
    for (const Json& t : r["tensors"]) {
      std::string shape = "[";
      for (const auto& d : t["shape"])
        shape += (shape.size() > 1 ? ", " : "") + std::to_string(d.get<long long>());
      shape += "]";
      std::printf("  %-60s %-6s %-20s %llu\n", t["name"].get<std::string>().c_str(),
                  t["dtype"].get<std::string>().c_str(), shape.c_str(),
                  static_cast<unsigned long long>(t["bytes"].get<std::uint64_t>()));
    }
  }
}

}  // namespace

int cmd_inspect(const Args& args) {
  if (wants_help(args)) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  bool json = false, list = false;
  std::string path;
  for (const std::string& a : args) {
    if (a == "--json") {
      json = true;
    } else if (a == "--tensors") {
      list = true;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "error: inspect: unknown option '%s' (run `mlxn inspect --help`)\n",
                   a.c_str());
      return 2;
    } else if (path.empty()) {
      path = a;
    } else {
      std::fprintf(stderr, "error: inspect: more than one PATH given\n");
      return 2;
    }
  }
  if (path.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  try {
    std::error_code ec;
    const fs::path p(path);
    Json report;
    if (fs::is_directory(p, ec) && !fs::exists(p / "config.json", ec) && single_gguf(p)) {
      report = inspect_gguf(*single_gguf(p), list);  // a directory holding one .gguf file
    } else if (fs::is_directory(p, ec)) {
      report = inspect_directory(p, list);
    } else if (p.extension() == ".gguf") {
      report = inspect_gguf(p, list);
    } else if (p.extension() == ".safetensors" || p.extension() == ".json") {
      report = inspect_safetensors(p, list);
    } else if (!fs::exists(p, ec)) {
      throw Error(ErrorKind::Io, "no such file or directory");
    } else {
      throw Error(ErrorKind::Format,
                  "not a model directory, .gguf, .safetensors or safetensors index file");
    }
    if (json) {
      std::puts(report.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
    } else {
      print_text(report);
    }
    return 0;
  } catch (const std::exception& e) {
    // One line "error: <path>: <what>": loaders name the file they read, which lies under
    // PATH; otherwise PATH is prefixed here.
    std::string what = e.what();
    for (char& ch : what) {
      if (ch == '\n' || ch == '\r') ch = ' ';
    }
    if (what.rfind(path, 0) != 0) what = path + ": " + what;
    std::fprintf(stderr, "error: %s\n", what.c_str());
    return 1;
  }
}

}  // namespace mlxn::cli
