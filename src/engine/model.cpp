// Model: loads a model (config, weights, block features, KV cache) and runs it -- chunked
// prefill, one-token decode, greedy generation and sampled generation steps -- one command buffer
// per call (all-logits calls commit per chunk so that device logits stay one chunk large).
// Activation buffers are allocated once, for the largest chunk, and every chunk size uses views of
// their leading rows; token ids live in a per-position buffer and positions in a constant
// 0..context-1 buffer, so chunks only take slices and nothing is allocated per call (the all-logits
// buffer once, at first use).
//
// Picking a token on the device (greedy or sampled) writes it into the ids slot of the next
// position, so the following decode step reads its input from there: a sampled step uploads only
// its settings and penalty pairs (one write) and reads back one i32.
//
// Pipelined decoding (queue_sample / take_sample): a decode step needs nothing from the host but
// the settings, so the next step can be encoded and submitted while the previous one still runs
// on the GPU; the host's encoding of ~10 dispatches a layer then hides behind the device's work
// instead of adding to it every token. Two steps are in flight at most, and the settings buffer
// has a slot for each, so the host never rewrites one the device may still read.
//
// Fused decode (ModelOptions::fused_decode): where the model fits it (fused_decode_setup.h), a
// one-token step that needs no all-logits row runs the embedding and then every layer and the
// head as one persistent launch (ops::fused_decode_step); the pick, the pipelining and the cache
// bookkeeping around it are the per-op path's. Prefill and all-logits calls always run op by op.
//
// RoPE tables: computed on the host with ops::rope_inv_freq and kept on the device. Schemes that
// do not depend on the sequence length (default, linear, llama3, yarn) are uploaded once. Dynamic
// NTK and LongRoPE depend on it; like transformers, which recomputes them per forward call from
// max(position_ids) + 1, they are recomputed at the start of every forward call (and decode step)
// for the length the cache reaches at the end of that call, and re-uploaded only when the table
// changes. Keys already in the cache keep the rotation they were written with, as in
// transformers' generation.
#include "mlxn/engine/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <numeric>
#include <string>

#include "decode_tiles.h"
#include "fused_decode_setup.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/error.h"
#include "mlxn/core/half.h"
#include "mlxn/engine/transformer.h"
#include "mlxn/ops/attention.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/fused_decode.h"
#include "mlxn/ops/penalties.h"
#include "mlxn/ops/rope.h"
#include "mlxn/ops/sampling.h"

namespace mlxn::engine {

namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, what);
}

float round_to_dtype(DType dtype, float x) {
  switch (dtype) {
    case DType::F16:
      return f16_bits_to_f32(f32_to_f16_bits(x));
    case DType::BF16:
      return bf16_bits_to_f32(f32_to_bf16_bits(x));
    default:
      return x;
  }
}

bool is_float_dtype(DType d) {
  return d == DType::F32 || d == DType::F16 || d == DType::BF16;
}

// One RoPE table on the device and what it was computed from.
struct RopeState {
  ops::RopeConfig config;
  bool length_dependent = false;
  std::vector<float> uploaded;  // empty until the first upload
  Buffer inv_freq;              // f32 [rotary_dim / 2]
  float scale = 1.0f;

  // `before_write` runs before a changed table is written: pipelined decode steps still in
  // flight read the table they were queued with, so the caller waits for them first.
  template <class BeforeWrite>
  void update(std::int64_t seq_len, const BeforeWrite& before_write) {
    if (!uploaded.empty() && !length_dependent) return;
    ops::RopeTable t = ops::rope_inv_freq(config, seq_len);
    if (t.inv_freq != uploaded) {
      before_write();
      inv_freq.write(t.inv_freq);
      uploaded = std::move(t.inv_freq);
    }
    scale = t.attention_scale;
  }
};

RopeState make_rope(Device& device, const ops::RopeConfig& config) {
  RopeState r;
  r.config = config;
  r.length_dependent = config.scaling == ops::RopeScaling::DynamicNtk ||
                       config.scaling == ops::RopeScaling::LongRope;
  r.inv_freq = device.alloc(DType::F32, {config.rotary_dim / 2});
  r.update(1, [] {});  // validates the config now rather than at the first forward call
  return r;
}

// What a run of the layers produces.
enum class Head {
  AllLogits,   // f32 logits of every token, read back chunk by chunk
  LastLogits,  // f32 logits of the last token
  Argmax,      // argmax of the last token's logits, written to the ids slot after it
  Sample,      // penalties + argmax or sample (a SampleStep), written to the ids slot after it
};

// Layout of the i32 step buffer forward_and_sample uploads: five settings (f32 bits, top_k as
// i32), padding to 32 bytes, then the (id, count) pairs.
enum StepSlot : std::int64_t {
  kStepTemperature = 0,
  kStepTopK = 1,
  kStepTopP = 2,
  kStepMinP = 3,
  kStepU = 4,
  kStepPairs = 8,
};

bool has_penalties(const SampleStep& s) {
  return !s.penalty_counts.empty() && (s.repetition_penalty != 1.0f || s.presence_penalty != 0.0f ||
                                       s.frequency_penalty != 0.0f);
}

}  // namespace

struct Model::Impl {
  io::ModelConfig config;
  BlockFeatures features;
  Device device;
  DType dtype = DType::F32;
  ModelWeights weights;
  KvCache cache;
  std::int64_t context = 0;
  std::int64_t chunk = 0;
  ForwardScratch scratch;
  // i32 [context + 1]: the token at each position; the extra slot takes the id greedy decoding
  // picks after the last position.
  Buffer ids;
  Buffer positions;  // i32 [context]: 0, 1, ..., context - 1 (chunks take slices)
  RopeState rope_global, rope_local;
  Buffer logits;      // [logit_rows, vocab] in the compute dtype
  Buffer logits_f32;  // [logit_rows, vocab] f32 (the same buffer when computing in f32)
  std::int64_t logit_rows = 0;
  Buffer argmax_value;  // f32 [1]
  // i32 [kStepPairs + 2 * pair_capacity]: settings and penalty pairs of a sampled step; `step` is
  // the slot of the step being encoded (step_slots[0] outside pipelined decoding).
  Buffer step;
  Buffer step_slots[2];
  std::int64_t pair_capacity = 0;
  // Pipelined decode steps submitted and not yet taken, oldest first: the encoder to wait on,
  // the ids slot its pick lands in, and the position of its input token.
  struct Pending {
    CommandEncoder enc;
    Buffer next;
    std::int64_t start;
  };
  std::deque<Pending> pending;
  std::int64_t queued_total = 0;  // steps ever queued: picks the settings slot
  std::vector<std::int32_t> step_host;
  // The position whose ids slot holds the token the last device pick wrote (-1: none), and that
  // token: a decode step feeding it back needs no upload.
  std::int64_t picked_pos = -1;
  std::int32_t picked_token = -1;
  ops::FusedDecodePlan fused;  // valid when one-token steps run fused
  std::string fused_status;    // "on" or "off: <why>"

  explicit Impl(Device d) : device(std::move(d)) {}
  // Queued steps still read the buffers below: wait for them before anything is freed.
  ~Impl() {
    for (Pending& p : pending) {
      try {
        p.enc.wait();
      } catch (...) {  // a device error has no caller left to report to
      }
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  BlockContext context_of() const { return BlockContext{config, features, weights.norm_weight}; }

  void ensure_logit_rows(std::int64_t rows) {
    if (rows <= logit_rows) return;
    logits = device.alloc(dtype, {rows, config.vocab_size});
    logits_f32 = dtype == DType::F32 ? logits : device.alloc(DType::F32, {rows, config.vocab_size});
    logit_rows = rows;
  }

  // Row r of a [m, cols] buffer as [1, cols].
  static Buffer row(const Buffer& b, std::int64_t r) {
    const std::int64_t cols = b.shape().back();
    const std::size_t bytes = static_cast<std::size_t>(cols) * dtype_size(b.dtype());
    return b.view(static_cast<std::size_t>(r) * bytes, bytes, b.dtype(), {1, cols});
  }

  static Buffer rows_of(const Buffer& b, std::int64_t n) {
    const std::int64_t cols = b.shape().back();
    return b.view(0, static_cast<std::size_t>(n * cols) * dtype_size(b.dtype()), b.dtype(),
                  {n, cols});
  }

  Buffer step_view(std::int64_t slot, DType dtype) const {
    return step.view(static_cast<std::size_t>(slot) * 4, 4, dtype, {1});
  }

  // Uploads a sampled step's settings and penalty pairs (one write); returns the pairs in use.
  // `slot` picks the settings buffer (pipelined steps alternate); only called with no step in
  // flight that reads `slot`, and reallocation happens only with none in flight at all. A step
  // that reads nothing from it (greedy, no penalties: encode_pick runs a plain argmax) skips the
  // upload, a synchronous host-to-device write per token otherwise; a later step that samples
  // writes its own slot before it is encoded.
  std::int64_t stage_step(const SampleStep& s, int slot = 0) {
    const std::int64_t n_pairs =
        has_penalties(s) ? static_cast<std::int64_t>(s.penalty_counts.size() / 2) : 0;
    if (!step_slots[0].valid() || n_pairs > pair_capacity) {
      std::int64_t cap = 64;
      while (cap < n_pairs) cap *= 2;
      for (Buffer& b : step_slots) b = device.alloc(DType::I32, {kStepPairs + 2 * cap});
      pair_capacity = cap;
    }
    step = step_slots[slot];
    if (n_pairs == 0 && !(s.temperature > 0.0f)) return 0;
    step_host.assign(static_cast<std::size_t>(kStepPairs + 2 * n_pairs), 0);
    const auto put_f32 = [&](std::int64_t slot, float v) {
      std::memcpy(&step_host[static_cast<std::size_t>(slot)], &v, 4);
    };
    put_f32(kStepTemperature, s.temperature);
    step_host[kStepTopK] = s.top_k;
    put_f32(kStepTopP, s.top_p);
    put_f32(kStepMinP, s.min_p);
    put_f32(kStepU, s.u);
    std::copy_n(s.penalty_counts.begin(), 2 * n_pairs, step_host.begin() + kStepPairs);
    step.write(step_host.data(), step_host.size() * sizeof(std::int32_t));
    return n_pairs;
  }

  // Encodes the pick of a sampled step from `lg` ([1, vocab], penalized in place) into `next`.
  void encode_pick(CommandEncoder& enc, const Buffer& lg, const SampleStep& s, std::int64_t n_pairs,
                   const Buffer& next) {
    if (n_pairs > 0) {
      const Buffer pairs = step.view(kStepPairs * 4, static_cast<std::size_t>(8 * pair_capacity),
                                     DType::I32, {1, pair_capacity, 2});
      ops::apply_penalties(enc, lg, pairs, n_pairs, s.repetition_penalty, s.presence_penalty,
                           s.frequency_penalty);
    }
    if (s.temperature > 0.0f) {
      const ops::SamplingRowParams p{
          step_view(kStepTemperature, DType::F32), step_view(kStepTopK, DType::I32),
          step_view(kStepTopP, DType::F32), step_view(kStepMinP, DType::F32)};
      ops::sample(enc, lg, p, step_view(kStepU, DType::F32), next);
    } else {
      ops::argmax(enc, lg, next, argmax_value);
    }
  }

  // Whether positions [start, start + n) run as one fused decode step: one token, a plan, and a
  // head that reads only that token's logits. The plan's cache holds `context` positions (full
  // layers only), which stage_tokens and the decode entry points already keep start below.
  bool runs_fused(std::int64_t start, std::int64_t n, Head head) const {
    return n == 1 && fused.valid() && head != Head::AllLogits && start < fused.capacity();
  }

  // Encodes the fused step of the token at `start`: its embedding into the scratch row, then
  // every layer and the head into row 0 of `logits`, as the per-op path leaves them.
  void encode_fused_step(CommandEncoder& enc, const BlockContext& ctx, std::int64_t start) {
    const ChunkBuffers buf = chunk_buffers(scratch, config, 1);
    encode_embedding(enc, ctx, weights.embedding, ids.slice(start, 1), buf.x);
    // attention_decode's default for a scale of 0; the fused op takes the value itself.
    const float attn_scale = features.attn_scale > 0.0f
                                 ? features.attn_scale
                                 : 1.0f / std::sqrt(static_cast<float>(config.head_dim));
    ops::fused_decode_step(enc, fused, buf.x, start, rope_global.inv_freq, rope_global.scale,
                           attn_scale, row(logits, 0));
  }

  // Runs positions [start, start + n), whose ids are already in `ids`, through the model in
  // chunks. AllLogits fills `out` ([n, vocab]) and commits per chunk (so device memory for logits
  // stays one chunk); the other heads encode the whole call into one command buffer. Sample
  // needs `sample` and the pairs count stage_step returned.
  // `defer` (pick heads only): submit without waiting and queue the step in `pending`; its token
  // is read by take().
  std::int32_t run(std::int64_t start, std::int64_t n, Head head, std::vector<float>* out,
                   const SampleStep* sample = nullptr, std::int64_t n_pairs = 0,
                   bool defer = false) {
    // A length-dependent table (LongRoPE past its original length, dynamic NTK) changes between
    // steps; queued steps must finish with the old one before it is overwritten.
    const auto finish_queued = [this] {
      for (Pending& p : pending) p.enc.wait();
    };
    rope_global.update(start + n, finish_queued);
    rope_local.update(start + n, finish_queued);
    const RopeBuffers rope{rope_global.inv_freq, rope_global.scale, rope_local.inv_freq,
                           rope_local.scale};
    const BlockContext ctx = context_of();
    const std::int64_t vocab = config.vocab_size;
    ensure_logit_rows(head == Head::AllLogits ? std::min(n, chunk) : 1);
    if (out) out->clear();
    if (out && head == Head::AllLogits) out->reserve(static_cast<std::size_t>(n * vocab));

    CommandEncoder enc = device.command_encoder();
    // Barriers where one dispatch consumes another's output: bookkeeping on an in-order queue,
    // the ordering once a call is replayed as a graph.
    enc.set_auto_barriers(true);
    enc.set_label("forward");
    const bool fused_step = runs_fused(start, n, head);
    if (fused_step) encode_fused_step(enc, ctx, start);
    for (std::int64_t off = 0; off < n && !fused_step; off += chunk) {
      const std::int64_t m = std::min(chunk, n - off);
      const std::int64_t pos0 = start + off;
      const ChunkBuffers buf = chunk_buffers(scratch, config, m);
      const ChunkPositions where{pos0, positions.slice(pos0, m)};
      encode_embedding(enc, ctx, weights.embedding, ids.slice(pos0, m), buf.x);
      for (std::int64_t l = 0; l < config.n_layers; ++l) {
        LayerLinks links;
        links.input_normed = l > 0;
        if (l + 1 < config.n_layers) {
          links.next_norm = &weights.layers[static_cast<std::size_t>(l + 1)].attn_norm;
        }
        encode_layer(enc, ctx, l, weights.layers[static_cast<std::size_t>(l)], cache.layer(l), rope,
                     where, buf, links);
      }
      if (head == Head::AllLogits) {
        const Buffer lg = rows_of(logits, m);
        const Buffer lg32 = rows_of(logits_f32, m);
        encode_logits(enc, ctx, weights, buf.x, buf.xn, lg);
        if (dtype != DType::F32) ops::cast(enc, lg, lg32);
        enc.commit_and_wait();
        const std::vector<float> part = lg32.to_vector<float>();
        out->insert(out->end(), part.begin(), part.end());
      }
    }
    std::int32_t token = -1;
    if (head != Head::AllLogits) {
      const Buffer lg = row(logits, 0);
      if (!fused_step) {
        const std::int64_t m = (n - 1) % chunk + 1;  // tokens of the last chunk
        const ChunkBuffers buf = chunk_buffers(scratch, config, m);
        encode_logits(enc, ctx, weights, row(buf.x, m - 1), row(buf.xn, m - 1), lg);
      }
      if (head == Head::LastLogits) {
        const Buffer lg32 = row(logits_f32, 0);
        if (dtype != DType::F32) ops::cast(enc, lg, lg32);
        enc.commit_and_wait();
        *out = lg32.to_vector<float>();
      } else {
        const Buffer next = ids.slice(start + n, 1);
        if (head == Head::Sample) {
          encode_pick(enc, lg, *sample, n_pairs, next);
        } else {
          ops::argmax(enc, lg, next, argmax_value);
        }
        if (defer) {
          enc.commit();
          pending.push_back(Pending{std::move(enc), next, start + n - 1});
          cache.set_length(start + n);
          return -1;
        }
        enc.commit_and_wait();
        token = next.to_vector<std::int32_t>().at(0);
        picked_pos = start + n;
        picked_token = token;
      }
    }
    cache.set_length(start + n);
    return token;
  }

  // Waits for the oldest pipelined step and returns its token.
  std::int32_t take() {
    Pending p = std::move(pending.front());
    pending.pop_front();
    p.enc.wait();
    const std::int32_t token = p.next.to_vector<std::int32_t>().at(0);
    picked_pos = p.start + 1;
    picked_token = token;
    return token;
  }

  // Waits for the pipelined steps still queued and forgets them: the cache goes back to the
  // last taken token (whose id stays in its slot, so decoding can go on from it).
  void drop_pending() {
    if (pending.empty()) return;
    const std::int64_t keep = pending.front().start;
    for (Pending& p : pending) p.enc.wait();
    pending.clear();
    cache.set_length(keep);
  }

  // Checks ids and room in the cache, then stores the ids at positions [start, start + n).
  void stage_tokens(const char* op, std::span<const std::int32_t> tokens, std::int64_t start) {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (n == 0) invalid(std::string(op) + ": no tokens");
    if (start + n > context) {
      invalid(std::string(op) + ": " + std::to_string(n) + " tokens at position " +
              std::to_string(start) + " overflow the context of " + std::to_string(context) +
              " positions (reset the cache or load with a larger context)");
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int32_t t = tokens[static_cast<std::size_t>(i)];
      if (t < 0 || t >= config.vocab_size) {
        invalid(std::string(op) + ": token id " + std::to_string(t) + " at index " +
                std::to_string(i) + " is outside the vocabulary [0, " +
                std::to_string(config.vocab_size) + ")");
      }
    }
    ids.write(tokens.data(), static_cast<std::size_t>(n) * sizeof(std::int32_t),
              static_cast<std::size_t>(start) * sizeof(std::int32_t));
    if (picked_pos >= start && picked_pos < start + n) picked_pos = -1;
  }
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

namespace {

void check_options(const std::string& where, const ModelOptions& options) {
  if (options.prefill_chunk < 1) {
    invalid(where + ": prefill_chunk must be >= 1, got " + std::to_string(options.prefill_chunk));
  }
  if (options.context < 1) {
    invalid(where + ": context must be >= 1, got " + std::to_string(options.context));
  }
}

// The family first: an unknown architecture fails here, naming the supported ones.
BlockFeatures checked_features(const std::string& where, const io::ModelConfig& config) {
  BlockFeatures features = block_features(config);
  if (!ops::attention_head_dim_supported(config.head_dim)) {
    throw Error(ErrorKind::Unsupported,
                where + ": head_dim " + std::to_string(config.head_dim) +
                    " is not supported by the attention kernels (64, 80, 96, 128, 256)");
  }
  return features;
}

void check_dtypes(const std::string& where, DType dtype, DType cache_dtype) {
  if (!is_float_dtype(dtype) || !is_float_dtype(cache_dtype)) {
    throw Error(ErrorKind::UnsupportedDType,
                where + ": compute dtype " + std::string(dtype_name(dtype)) + " / cache dtype " +
                    std::string(dtype_name(cache_dtype)) + " (expected f32, f16 or bf16)");
  }
}

}  // namespace

// Everything after the weights are on the device: features that depend on them, the cache,
// scratch, ids, positions, RoPE tables and the logits buffer. Shared by load and from_weights.
Model Model::finish(std::unique_ptr<Impl> impl, BlockFeatures features, DType cache_dtype,
                    const ModelOptions& options, const std::string& where) {
  Impl& m = *impl;
  const io::ModelConfig& config = m.config;
  if (static_cast<std::int64_t>(m.weights.layers.size()) != config.n_layers) {
    throw Error(ErrorKind::Format, where + ": weights have " +
                                       std::to_string(m.weights.layers.size()) +
                                       " layers, config " + std::to_string(config.n_layers));
  }
  if (options.decode_tiles && m.device.backend() == Backend::Cuda && m.dtype == DType::BF16) {
    detail::tile_weights_for_decode(m.weights, m.device);
  }
  features.rope_layout =
      m.weights.rope_interleaved ? ops::RopeLayout::Interleaved : ops::RopeLayout::Neox;
  // transformers multiplies by the normalizer held in the activations' dtype.
  features.embedding_scale = round_to_dtype(m.dtype, features.embedding_scale);
  m.features = features;

  m.context = options.context;
  if (config.max_position_embeddings > 0) {
    m.context = std::min(m.context, config.max_position_embeddings);
  }
  m.chunk = std::min(options.prefill_chunk, m.context);
  m.cache = KvCache::create(m.device, config, {m.context, m.chunk, cache_dtype});
  m.scratch = ForwardScratch::create(m.device, config, m.dtype, m.chunk, m.weights);
  // Prefill chunks on CUDA decode quantized layer weights for the dense matmul (Linear::apply):
  // one workspace of the largest such weight. The lm head is left out (at 128k vocab it would
  // take a 1 GB workspace; its prefill rows are rarely more than the last one).
  if (m.device.backend() == Backend::Cuda && m.chunk >= kDequantGemmMinRows) {
    std::int64_t largest = 0;
    const auto consider = [&largest](const Linear& l) {
      if (l.kind != WeightKind::Dense) largest = std::max(largest, l.out * l.in);
    };
    for (const LayerWeights& layer : m.weights.layers) {
      for (const Linear* l : {&layer.attn.q, &layer.attn.k, &layer.attn.v, &layer.attn.o}) {
        consider(*l);
      }
      if (layer.mlp) {
        for (const Linear* l : {&layer.mlp->gate, &layer.mlp->up, &layer.mlp->down}) consider(*l);
      }
    }
    if (largest > 0) m.scratch.weight_workspace = m.device.alloc(m.dtype, {largest});
  }

  m.ids = m.device.alloc(DType::I32, {m.context + 1});
  std::vector<std::int32_t> pos(static_cast<std::size_t>(m.context));
  std::iota(pos.begin(), pos.end(), 0);
  m.positions = m.device.alloc(DType::I32, {m.context});
  m.positions.write(pos);
  m.rope_global = make_rope(m.device, m.features.rope_global);
  m.rope_local = make_rope(m.device, m.features.rope_local);
  m.argmax_value = m.device.alloc(DType::F32, {1});
  m.ensure_logit_rows(1);
  // Last: the fused step streams the tiled weights and appends to the cache's buffers, and as an
  // optional fast path it takes only the memory the required allocations above left.
  if (options.fused_decode) {
    detail::FusedDecodeSetup setup = detail::setup_fused_decode(
        {config, m.features, m.device.backend(), m.dtype, cache_dtype, m.weights}, m.cache,
        m.device, options.fused_decode_inputs);
    m.fused = std::move(setup.plan);
    m.fused_status = m.fused.valid() ? "on" : "off: " + setup.reason;
  } else {
    m.fused_status = "off: disabled by option";
  }
  return Model(std::move(impl));
}

Model Model::load(const std::filesystem::path& path, const ModelOptions& options) {
  const std::string where = path.string();
  check_options(where, options);
  io::ModelDir dir = io::ModelDir::open(path);
  BlockFeatures features = checked_features(where, dir.config());
  auto impl = std::make_unique<Impl>(Device::open(options.backend));
  Impl& m = *impl;
  m.config = dir.config();
  m.dtype = resolved_compute_dtype(options, m.device.backend());
  const DType cache_dtype = options.cache_dtype.value_or(m.dtype);
  check_dtypes(where, m.dtype, cache_dtype);
  // Validates the tensors against the architecture (ModelDir::check_weights) before uploading.
  m.weights = load_model_weights(dir, m.device, m.dtype, options.progress);
  return finish(std::move(impl), features, cache_dtype, options, where);
}

Model Model::from_weights(io::ModelConfig config, ModelWeights weights, Device device,
                          const ModelOptions& options) {
  const std::string where =
      "in-memory " + std::string(io::architecture_name(config.arch)) + " model";
  check_options(where, options);
  io::validate_model_config(config, where);
  BlockFeatures features = checked_features(where, config);
  if (options.compute_dtype && *options.compute_dtype != weights.compute_dtype) {
    invalid(where + ": compute dtype " + std::string(dtype_name(*options.compute_dtype)) +
            " differs from the weights' " + std::string(dtype_name(weights.compute_dtype)));
  }
  auto impl = std::make_unique<Impl>(std::move(device));
  Impl& m = *impl;
  m.config = std::move(config);
  m.dtype = weights.compute_dtype;
  const DType cache_dtype = options.cache_dtype.value_or(m.dtype);
  check_dtypes(where, m.dtype, cache_dtype);
  m.weights = std::move(weights);
  return finish(std::move(impl), features, cache_dtype, options, where);
}

const io::ModelConfig& Model::config() const {
  return impl_->config;
}
const BlockFeatures& Model::features() const {
  return impl_->features;
}
Device& Model::device() {
  return impl_->device;
}
DType resolved_compute_dtype(const ModelOptions& options, Backend backend) {
  return options.compute_dtype.value_or(backend == Backend::Cuda ? DType::BF16 : DType::F32);
}

DType Model::compute_dtype() const {
  return impl_->dtype;
}
const ModelWeights& Model::weights() const {
  return impl_->weights;
}
KvCache& Model::cache() {
  return impl_->cache;
}
const std::string& Model::fused_decode_status() const {
  return impl_->fused_status;
}
std::optional<ops::FusedDecodeInputs> Model::fused_decode_inputs() const {
  if (!impl_->fused.valid()) return std::nullopt;
  return impl_->fused.shape().inputs;
}
void Model::reset() {
  impl_->drop_pending();
  impl_->cache.reset();
}

std::vector<float> Model::forward(std::span<const std::int32_t> tokens, bool all_logits) {
  Impl& m = *impl_;
  m.drop_pending();
  const std::int64_t start = m.cache.length();
  m.stage_tokens("forward", tokens, start);
  std::vector<float> out;
  m.run(start, static_cast<std::int64_t>(tokens.size()),
        all_logits ? Head::AllLogits : Head::LastLogits, &out);
  return out;
}

std::vector<float> Model::score(std::span<const std::int32_t> tokens) {
  reset();
  return forward(tokens, true);
}

std::vector<std::int32_t> Model::generate_greedy(std::span<const std::int32_t> prompt,
                                                 std::int64_t max_new_tokens,
                                                 std::span<const std::int32_t> stop_ids) {
  Impl& m = *impl_;
  reset();
  std::vector<std::int32_t> out;
  if (max_new_tokens <= 0) return out;
  m.stage_tokens("generate_greedy", prompt, 0);
  const auto is_stop = [&](std::int32_t t) {
    return std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end();
  };
  // Each step's argmax lands in the ids slot of the next position, so the following decode step
  // reads it on the device; only that one i32 comes back to the host. Decode steps are
  // pipelined: the step after the one being waited for is already submitted.
  std::int32_t token = m.run(0, static_cast<std::int64_t>(prompt.size()), Head::Argmax, nullptr);
  out.push_back(token);
  const SampleStep argmax_step;  // temperature 0, no penalties: the argmax
  // A step is queued for token index `queued_upto` while the budget and the cache allow.
  auto queued_upto = static_cast<std::int64_t>(out.size());
  const auto queue_more = [&] {
    while (m.pending.size() < 2 && queued_upto < max_new_tokens && m.cache.length() < m.context) {
      queue_sample(argmax_step);
      ++queued_upto;
    }
  };
  // Generation ends at a stop id (included in the result), after max_new_tokens, or when the
  // cache is full.
  queue_more();
  while (!is_stop(token) && !m.pending.empty()) {
    token = m.take();
    out.push_back(token);
    queue_more();
  }
  m.drop_pending();
  return out;
}

std::int32_t Model::forward_and_sample(std::span<const std::int32_t> tokens,
                                       const SampleStep& step) {
  Impl& m = *impl_;
  constexpr const char* kOp = "forward_and_sample";
  if (step.penalty_counts.size() % 2 != 0) {
    invalid(std::string(kOp) + ": penalty_counts holds " +
            std::to_string(step.penalty_counts.size()) + " values, not (id, count) pairs");
  }
  // Checked here rather than by the ops, which would throw halfway through encoding the layers.
  if (!std::isfinite(step.repetition_penalty) || !(step.repetition_penalty > 0.0f) ||
      !std::isfinite(step.presence_penalty) || !std::isfinite(step.frequency_penalty)) {
    invalid(std::string(kOp) + ": penalties must be finite, repetition_penalty > 0");
  }
  m.drop_pending();
  const std::int64_t start = m.cache.length();
  const bool on_device = tokens.size() == 1 && start == m.picked_pos &&
                         tokens[0] == m.picked_token && start + 1 <= m.context;
  if (!on_device) m.stage_tokens(kOp, tokens, start);
  const std::int64_t n_pairs = m.stage_step(step);
  return m.run(start, static_cast<std::int64_t>(tokens.size()), Head::Sample, nullptr, &step,
               n_pairs);
}

void Model::queue_sample(const SampleStep& step) {
  Impl& m = *impl_;
  constexpr const char* kOp = "queue_sample";
  if (has_penalties(step)) {
    invalid(std::string(kOp) +
            ": penalties need the picked tokens on the host; use "
            "forward_and_sample");
  }
  if (m.pending.size() >= 2) {
    invalid(std::string(kOp) + ": two steps are already in flight; take_sample() first");
  }
  // The input is the token the last pick (taken or queued) wrote at position cache().length().
  const std::int64_t start = m.cache.length();
  const std::int64_t picked = m.pending.empty() ? m.picked_pos : m.pending.back().start + 1;
  if (picked != start || m.picked_pos < 0) {
    invalid(std::string(kOp) + ": no token picked on the device at position " +
            std::to_string(start) + " (start with forward_and_sample or generate_greedy)");
  }
  if (start + 1 > m.context) {
    invalid(std::string(kOp) + ": the context of " + std::to_string(m.context) +
            " positions is full");
  }
  const std::int64_t n_pairs = m.stage_step(step, static_cast<int>(m.queued_total++ % 2));
  m.run(start, 1, Head::Sample, nullptr, &step, n_pairs, /*defer=*/true);
}

std::int32_t Model::take_sample() {
  Impl& m = *impl_;
  if (m.pending.empty()) invalid("take_sample: no step is queued");
  return m.take();
}

void Model::drop_queued() {
  impl_->drop_pending();
}

std::int64_t Model::queued() const {
  return static_cast<std::int64_t>(impl_->pending.size());
}

}  // namespace mlxn::engine
