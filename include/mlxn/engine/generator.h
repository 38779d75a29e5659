// The generation loop: prefill a prompt, then pick token after token on the device (penalties,
// greedy or seeded sampling; one i32 read back per step) until a stop id, a stop string, the
// token limit, a full context or the caller says stop -- streaming tokens and, given a
// detokenizer, text with stop strings held back until they are resolved. A request may also
// continue from what the model's KV cache already holds (a chat's earlier turns).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/engine/model.h"
#include "mlxn/engine/sampler.h"

namespace mlxn::engine {

/// Why generation ended.
enum class StopReason {
  Eos,          // a token in SamplingParams::stop_ids
  StopString,   // the text reached a SamplingParams::stop_strings entry
  MaxTokens,    // SamplingParams::max_tokens tokens were generated
  ContextFull,  // the KV cache holds no further position
  Callback,     // on_token returned false
};

/// "eos", "stop_string", "max_tokens", "context_full", "callback".
std::string_view stop_reason_name(StopReason reason);

/// What generate() returns. Times are wall clock on the host around the model calls.
struct GenerationResult {
  /// Generated ids, in order, including the stop id or the id that completed a stop string.
  std::vector<std::int32_t> tokens;
  /// The emitted text (with a detokenizer): no stop id's text, no stop string, nothing after it.
  std::string text;
  StopReason stop_reason = StopReason::MaxTokens;
  std::int64_t prompt_tokens = 0;
  /// Prefill: the prompt's forward pass and the pick of the first token.
  double prefill_seconds = 0.0;
  /// From the start of generate() to the first token, on the host.
  double time_to_first_token_seconds = 0.0;
  /// Decode: the steps after the first token (tokens.size() - 1 of them).
  double decode_seconds = 0.0;
  double prefill_tokens_per_second = 0.0;  // prompt_tokens / prefill_seconds
  double decode_tokens_per_second = 0.0;   // decode steps / decode_seconds (0 without steps)
};

/// The text piece of one token (e.g. TokenStreamDecoder::push), for stop strings and streaming.
using Detokenize = std::function<std::string(std::int32_t token)>;
/// Called with every generated token as soon as it is picked; return false to stop after it.
using OnToken = std::function<bool(std::int32_t token)>;
/// Called with text as it is released (never a stop string or a piece of one).
using OnText = std::function<void(std::string_view text)>;

/// Where a request starts: by default from an empty cache and the seed's first uniform.
struct GenerateOptions {
  /// The KV cache's first `cached` positions already hold prompt[0, cached) from an earlier
  /// request: they are kept (the cache is cut back to them) and only the rest of the prompt is
  /// prefilled. 0 resets the cache. The whole prompt still fills the penalty window;
  /// GenerationResult::prompt_tokens counts only the prefilled tokens. The caller vouches that
  /// the cache really holds those tokens (and, for sliding-window rings, that cutting back
  /// overwrote nothing the new tokens attend to).
  std::int64_t cached = 0;
  /// Index of the first uniform drawn from the seed (step i draws sample_uniform(seed,
  /// first_draw + i)), so successive requests on one seed draw fresh numbers.
  std::uint64_t first_draw = 0;
  /// Submit each decode step before waiting for the previous one (Model::queue_sample) when no
  /// penalties apply. false waits for every step first: the same tokens, more host time per
  /// token (`mlxn bench --sync-decode` measures the difference).
  bool pipelined = true;
};

/// Runs generation requests on a model; each request starts from an empty cache unless
/// GenerateOptions::cached says which part of the cache it continues from.
class Generator {
 public:
  explicit Generator(Model& model) : model_(model) {}

  /// Prefills `prompt` (cache reset first, chunked by the model) and generates with `params`.
  /// Each generated token goes to on_token (stop ids included). With `detok`, the text of every
  /// token but a stop id is matched against the stop strings; text that might begin a stop
  /// string is held back until the match is decided, the rest goes to on_text, and a completed
  /// stop string ends generation without being emitted. Held-back text is released when
  /// generation ends for any other reason. Throws InvalidArgument for bad params (see validate),
  /// stop strings without `detok`, or a prompt that is empty, out of vocabulary or longer than
  /// the context; also unless 0 <= options.cached <= cache length and options.cached < prompt
  /// size -- at least one prompt token must be fed, since the next token is picked from its
  /// position.
  GenerationResult generate(std::span<const std::int32_t> prompt, const SamplingParams& params,
                            const OnToken& on_token = {}, const Detokenize& detok = {},
                            const OnText& on_text = {}, const GenerateOptions& options = {});

 private:
  Model& model_;
};

}  // namespace mlxn::engine
