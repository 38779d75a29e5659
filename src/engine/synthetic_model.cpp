// Synthetic models (synthetic_model.h): preset configs and random weights built straight as the
// bytes of their storage format. Every value comes from a counter-based hash of (seed, tensor,
// index), so the fill splits into parallel chunks and still gives the same bytes for a seed
// whatever the thread count. Scales are chosen so that each projection's weights have a standard
// deviation of about 1/sqrt(in): activations then keep their size through the layers.
#include "mlxn/engine/synthetic_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "engine/ggml_repack.h"
#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "mlxn/io/ggml_types.h"

namespace mlxn::engine {

namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from a 64-bit hash.
float unit(std::uint64_t h) {
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// Runs body(begin, end) over [0, n) in chunks on all host cores.
template <class Body>
void parallel_for(std::size_t n, const Body& body) {
  constexpr std::size_t kMinChunk = std::size_t{1} << 16;
  const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t threads = std::min(hw, n / kMinChunk + 1);
  if (threads <= 1) {
    body(std::size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  const std::size_t per = (n + threads - 1) / threads;
  for (std::size_t t = 0; t < threads; ++t) {
    const std::size_t b = t * per, e = std::min(n, b + per);
    if (b < e) pool.emplace_back([&body, b, e] { body(b, e); });
  }
  for (std::thread& th : pool) th.join();
}

std::uint16_t to_half_bits(DType dtype, float v) {
  return dtype == DType::BF16 ? f32_to_bf16_bits(v) : f32_to_f16_bits(v);
}

// Builds the tensors of one model; each tensor gets its own hash key.
class Filler {
 public:
  Filler(Device& device, DType dtype, std::uint64_t seed)
      : device_(device), dtype_(dtype), seed_(seed) {}

  std::int64_t bytes = 0;  // device bytes allocated so far

  Buffer upload(DType dtype, Shape shape, const void* data) {
    Buffer b = device_.alloc(dtype, std::move(shape));
    b.write(data, b.size_bytes());
    bytes += static_cast<std::int64_t>(b.size_bytes());
    return b;
  }

  // n random bytes (any bit pattern is a valid packed code).
  std::vector<std::uint8_t> random_bytes(std::size_t n) {
    const std::uint64_t key = next_key();
    std::vector<std::uint8_t> out(n);
    const std::size_t words = n / 8;
    parallel_for(words, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const std::uint64_t h = mix(key + i);
        std::memcpy(out.data() + 8 * i, &h, 8);
      }
    });
    for (std::size_t i = 8 * words; i < n; ++i) out[i] = static_cast<std::uint8_t>(mix(key + i));
    return out;
  }

  // Dense [rows, cols] in the compute dtype, uniform with standard deviation `std`.
  Buffer dense(std::int64_t rows, std::int64_t cols, float std) {
    const std::uint64_t key = next_key();
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    const float a = std * std::sqrt(3.0f);
    if (dtype_ == DType::F32) {
      std::vector<float> v(n);
      parallel_for(n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) v[i] = a * (2.0f * unit(mix(key + i)) - 1.0f);
      });
      return upload(dtype_, {rows, cols}, v.data());
    }
    std::vector<std::uint16_t> v(n);
    parallel_for(n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        v[i] = to_half_bits(dtype_, a * (2.0f * unit(mix(key + i)) - 1.0f));
      }
    });
    return upload(dtype_, {rows, cols}, v.data());
  }

  // [n] in the compute dtype, every element `value` (norm weights).
  Buffer constant(std::int64_t n, float value) {
    if (dtype_ == DType::F32) {
      std::vector<float> v(static_cast<std::size_t>(n), value);
      return upload(dtype_, {n}, v.data());
    }
    std::vector<std::uint16_t> v(static_cast<std::size_t>(n), to_half_bits(dtype_, value));
    return upload(dtype_, {n}, v.data());
  }

  // MLX affine [out, in]: random codes, bf16 scales s in [0.5, 1.5) * base and biases
  // -s * (levels - 1) / 2, so weights are centred on zero.
  ops::QuantizedWeight mlx(std::int64_t out, std::int64_t in, int bits, int group) {
    ops::QuantizedWeight w;
    w.bits = bits;
    w.group_size = group;
    const std::int64_t words = in * bits / 32;
    const std::vector<std::uint8_t> codes = random_bytes(static_cast<std::size_t>(out * words) * 4);
    w.packed = upload(DType::U32, {out, words}, codes.data());
    const float levels = static_cast<float>(1 << bits);
    const float code_std = std::sqrt((levels * levels - 1.0f) / 12.0f);
    const float base = 1.0f / (code_std * std::sqrt(static_cast<float>(in)));
    const std::uint64_t key = next_key();
    const std::size_t n = static_cast<std::size_t>(out * (in / group));
    std::vector<std::uint16_t> scales(n), biases(n);
    parallel_for(n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const float s = bf16_bits_to_f32(f32_to_bf16_bits(base * (0.5f + unit(mix(key + i)))));
        scales[i] = f32_to_bf16_bits(s);
        biases[i] = f32_to_bf16_bits(-s * (levels - 1.0f) * 0.5f);
      }
    });
    w.scales = upload(DType::BF16, {out, in / group}, scales.data());
    w.biases = upload(DType::BF16, {out, in / group}, biases.data());
    return w;
  }

  // GGML Q4_0 [out, in] as the loader holds it on this device: the blocks (an f16 d then 16
  // bytes of codes, weight d * (q - 8); random codes, d positive and small), or where the backend
  // repacks Q4_0 (detail::repacks_ggml), their exact MLX affine form -- what a GGUF file of these
  // blocks would load as, so the benchmark reads the bytes a real model does.
  void q4_0(Linear& l) {
    const std::size_t row = io::ggml_row_size(io::GgmlType::Q4_0, static_cast<std::uint64_t>(l.in));
    std::vector<std::uint8_t> bytes_ = random_bytes(static_cast<std::size_t>(l.out) * row);
    const float base = 1.0f / (std::sqrt((256.0f - 1.0f) / 12.0f) * std::sqrt(float(l.in)));
    const std::uint64_t key = next_key();
    const std::size_t blocks = bytes_.size() / 18;
    parallel_for(blocks, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const std::uint16_t d = f32_to_f16_bits(base * (0.5f + unit(mix(key + i))));
        std::memcpy(bytes_.data() + 18 * i, &d, 2);
      }
    });
    if (!detail::repacks_ggml(device_.backend(), io::GgmlType::Q4_0)) {
      l.kind = WeightKind::Ggml;
      l.ggml_type = io::GgmlType::Q4_0;
      l.ggml = upload(DType::U8, {l.out, static_cast<std::int64_t>(row)}, bytes_.data());
      return;
    }
    std::optional<detail::MlxRepacked> r =
        detail::repack_ggml(io::GgmlType::Q4_0, std::as_bytes(std::span(bytes_)));
    if (!r) {  // d is below 1, so -8 d always fits f16
      throw Error(ErrorKind::QuantConfig, "synthetic Q4_0 weight has no exact MLX form");
    }
    l.kind = WeightKind::MlxQuant;
    l.quant.bits = r->bits;
    l.quant.group_size = r->group_size;
    l.quant.packed = upload(DType::U32, {l.out, l.in * r->bits / 32}, r->packed.data());
    l.quant.scales = upload(DType::F16, {l.out, l.in / r->group_size}, r->scales.data());
    l.quant.biases = upload(DType::F16, {l.out, l.in / r->group_size}, r->biases.data());
  }

  Linear linear(SyntheticQuant quant, std::int64_t out, std::int64_t in) {
    Linear l;
    l.in = in;
    l.out = out;
    switch (quant) {
      case SyntheticQuant::Mlx4:
      case SyntheticQuant::Mlx8:
        l.kind = WeightKind::MlxQuant;
        l.quant = mlx(out, in, quant == SyntheticQuant::Mlx4 ? 4 : 8, 64);
        break;
      case SyntheticQuant::Bf16:
        l.kind = WeightKind::Dense;
        l.dense = dense(out, in, 1.0f / std::sqrt(static_cast<float>(in)));
        break;
      case SyntheticQuant::Q4_0:
        q4_0(l);
        break;
    }
    return l;
  }

 private:
  std::uint64_t next_key() { return mix(seed_ * 0x100000001b3ULL + ++tensor_) << 20; }

  Device& device_;
  DType dtype_;
  std::uint64_t seed_;
  std::uint64_t tensor_ = 0;
};

std::int64_t linear_bytes(const Linear& l) {
  const auto sz = [](const Buffer& b) {
    return b.valid() ? static_cast<std::int64_t>(b.size_bytes()) : std::int64_t{0};
  };
  return sz(l.dense) + sz(l.quant.packed) + sz(l.quant.scales) + sz(l.quant.biases) + sz(l.ggml) +
         sz(l.bias);
}

io::ModelConfig llama_shape(std::int64_t hidden, std::int64_t layers, std::int64_t heads,
                            std::int64_t kv_heads, std::int64_t ffn, std::int64_t vocab) {
  io::ModelConfig c;
  c.arch = io::Architecture::Llama;
  c.model_type = "llama";
  c.architecture_class = "LlamaForCausalLM";
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.rms_norm_eps = 1e-5;
  c.dtype_name = "bfloat16";
  c.dtype = DType::BF16;
  c.hidden_act = "silu";
  c.layer_types.assign(static_cast<std::size_t>(layers), io::AttentionKind::Full);
  return c;
}

}  // namespace

std::optional<SyntheticQuant> parse_synthetic_quant(std::string_view name) {
  if (name == "mlx4") return SyntheticQuant::Mlx4;
  if (name == "mlx8") return SyntheticQuant::Mlx8;
  if (name == "bf16") return SyntheticQuant::Bf16;
  if (name == "q4_0") return SyntheticQuant::Q4_0;
  return std::nullopt;
}

std::string_view synthetic_quant_name(SyntheticQuant quant) {
  switch (quant) {
    case SyntheticQuant::Mlx4:
      return "mlx4";
    case SyntheticQuant::Mlx8:
      return "mlx8";
    case SyntheticQuant::Bf16:
      return "bf16";
    case SyntheticQuant::Q4_0:
      return "q4_0";
  }
  return "?";
}

std::string synthetic_presets() {
  return "llama3-8b, tiny, small-fused";
}

io::ModelConfig synthetic_config(std::string_view preset) {
  if (preset == "llama3-8b") {
    // Llama 3.1 8B: its llama3 RoPE scaling lets the context reach 128k positions.
    io::ModelConfig c = llama_shape(4096, 32, 32, 8, 14336, 128256);
    c.max_position_embeddings = 131072;
    c.rope.type = io::RopeType::Llama3;
    c.rope.theta = 500000.0;
    c.rope.factor = 8.0;
    c.rope.low_freq_factor = 1.0;
    c.rope.high_freq_factor = 4.0;
    c.rope.original_max_position_embeddings = 8192;
    c.rope_local = c.rope;
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001};
    return c;
  }
  if (preset == "tiny") {
    io::ModelConfig c = llama_shape(256, 2, 4, 2, 512, 512);
    c.max_position_embeddings = 4096;
    c.rope.theta = 10000.0;
    c.rope_local = c.rope;
    return c;
  }
  if (preset == "small-fused") {
    // A small Llama shape the fused decode step runs (ops/fused_decode.h): head_dim 128, every
    // product's k a multiple of 2,048 and n of 16, GQA groups of 4 (as Llama 3's); the down
    // projection's three units a tile take the step's pair-then-single path (Llama 3's has 7).
    io::ModelConfig c = llama_shape(2048, 2, 16, 4, 6144, 4096);
    c.max_position_embeddings = 4096;
    c.rope.theta = 500000.0;
    c.rope_local = c.rope;
    return c;
  }
  throw Error(ErrorKind::InvalidArgument, "unknown synthetic preset '" + std::string(preset) +
                                              "' (presets: " + synthetic_presets() + ")");
}

ModelWeights make_synthetic_weights(const io::ModelConfig& c, SyntheticQuant quant, Device& device,
                                    DType compute_dtype, std::uint64_t seed) {
  if (c.n_experts > 0) {
    throw Error(ErrorKind::Unsupported, "synthetic weights: mixture-of-experts configs");
  }
  Filler f(device, compute_dtype, seed);
  ModelWeights w;
  w.compute_dtype = compute_dtype;
  const std::int64_t h = c.hidden_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  if (quant == SyntheticQuant::Mlx4 || quant == SyntheticQuant::Mlx8) {
    const ops::QuantizedWeight t =
        f.mlx(c.vocab_size, h, quant == SyntheticQuant::Mlx4 ? 4 : 8, 64);
    w.embedding.quant = ops::QuantizedEmbedding{t.packed, t.scales, t.biases, t.bits, t.group_size};
  } else {
    w.embedding.dense = f.dense(c.vocab_size, h, 1.0f);
  }
  for (std::int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = w.layers.emplace_back();
    l.attn_norm = f.constant(h, 1.0f);
    l.ffn_norm = f.constant(h, 1.0f);
    // q/k/v and gate/up fused, as the loader stores a real model's (model_weights.h).
    l.attn.qkv = f.linear(quant, q + 2 * kv, h);
    l.attn.q = l.attn.qkv.rows(0, q);
    l.attn.k = l.attn.qkv.rows(q, kv);
    l.attn.v = l.attn.qkv.rows(q + kv, kv);
    l.attn.o = f.linear(quant, h, q);
    MlpWeights& m = l.mlp.emplace();
    const std::int64_t ffn = c.intermediate_size;
    m.gate_up = f.linear(quant, 2 * ffn, h);
    m.gate = m.gate_up.rows(0, ffn);
    m.up = m.gate_up.rows(ffn, ffn);
    m.down = f.linear(quant, h, ffn);
  }
  w.final_norm = f.constant(h, 1.0f);
  w.lm_head = f.linear(quant, c.vocab_size, h);
  w.bytes = f.bytes;
  return w;
}

std::int64_t decode_weight_bytes(const ModelWeights& w) {
  std::int64_t total = linear_bytes(w.lm_head);
  for (const LayerWeights& l : w.layers) {
    total += linear_bytes(l.attn.q) + linear_bytes(l.attn.k) + linear_bytes(l.attn.v) +
             linear_bytes(l.attn.o);
    if (l.mlp)
      total += linear_bytes(l.mlp->gate) + linear_bytes(l.mlp->up) + linear_bytes(l.mlp->down);
    if (l.moe) total += linear_bytes(l.moe->router);  // routed experts depend on the routing
  }
  const EmbeddingWeights& e = w.embedding;
  if (e.quant) {
    const std::int64_t rows = e.quant->packed.shape()[0];
    total += static_cast<std::int64_t>(e.quant->packed.size_bytes() + e.quant->scales.size_bytes() +
                                       e.quant->biases.size_bytes()) /
             rows;
  } else if (e.dense.valid()) {
    total += static_cast<std::int64_t>(e.dense.size_bytes()) / e.dense.shape()[0];
  }
  return total;
}

Model make_synthetic_model(std::string_view preset, SyntheticQuant quant,
                           const ModelOptions& options, std::uint64_t seed) {
  io::ModelConfig config = synthetic_config(preset);
  Device device = Device::open(options.backend);
  const DType dtype = resolved_compute_dtype(options, device.backend());
  ModelWeights weights = make_synthetic_weights(config, quant, device, dtype, seed);
  return Model::from_weights(std::move(config), std::move(weights), std::move(device), options);
}

}  // namespace mlxn::engine
