// Post-processors for a single sequence: TemplateProcessing, BertProcessing and
// RobertaProcessing add their special tokens around the ids; ByteLevel only adjusts offsets in
// the reference, so it leaves ids alone; Sequence runs its processors in order.
#include "engine/tokenizer_data.h"

namespace mlxn::engine::tok {

void post_process(const PostProcessor& p, std::vector<std::int32_t>& ids) {
  using K = PostProcessor::Kind;
  switch (p.kind) {
    case K::Sequence:
      for (const PostProcessor& c : p.children) post_process(c, ids);
      return;
    case K::ByteLevel:
      return;
    case K::Template:
    case K::Bert:
    case K::Roberta:
      ids.insert(ids.begin(), p.prefix.begin(), p.prefix.end());
      ids.insert(ids.end(), p.suffix.begin(), p.suffix.end());
      return;
  }
}

}  // namespace mlxn::engine::tok
