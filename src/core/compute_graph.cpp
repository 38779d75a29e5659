// ComputeGraph: recorded nodes, barrier recomputation, fusion, reordering and device replay.
#include "mlxn/core/compute_graph.h"

#include <algorithm>
#include <string>

#include "core/backend.h"
#include "mlxn/core/error.h"

namespace mlxn {
namespace {

ByteRange range_of(const Buffer& b) {
  return ByteRange{b.storage_id(), b.offset(), b.offset() + b.size_bytes()};
}

bool any_overlap(const std::vector<ByteRange>& a, const std::vector<ByteRange>& b) {
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (x.overlaps(y)) return true;
    }
  }
  return false;
}

bool conflicts_with_any(const GraphNode& n, const std::vector<const GraphNode*>& group) {
  for (const GraphNode* g : group) {
    if (g->conflicts_with(n)) return true;
  }
  return false;
}

// Dispatches in order with the minimal barriers their ranges need.
std::vector<GraphNode> with_minimal_barriers(const std::vector<GraphNode>& nodes) {
  std::vector<GraphNode> out;
  std::vector<const GraphNode*> group;
  for (const GraphNode& n : nodes) {
    if (n.kind != GraphNode::Kind::Dispatch) continue;
    if (conflicts_with_any(n, group)) {
      GraphNode b;
      b.kind = GraphNode::Kind::Barrier;
      out.push_back(std::move(b));
      group.clear();
    }
    group.push_back(&n);
    out.push_back(n);
  }
  return out;
}

void require_dispatch(const std::vector<GraphNode>& nodes, std::size_t node, const char* what) {
  if (node >= nodes.size() || nodes[node].kind != GraphNode::Kind::Dispatch) {
    throw Error(ErrorKind::InvalidArgument, std::string(what) + ": node " + std::to_string(node) +
                                                " is not a dispatch node");
  }
}

}  // namespace

std::vector<ByteRange> GraphNode::reads() const {
  std::vector<ByteRange> r;
  for (const Arg& a : args) {
    if (a.access != Access::Write) r.push_back(range_of(a.buffer));
  }
  return r;
}

std::vector<ByteRange> GraphNode::writes() const {
  std::vector<ByteRange> w;
  for (const Arg& a : args) {
    if (a.access != Access::Read) w.push_back(range_of(a.buffer));
  }
  return w;
}

bool GraphNode::conflicts_with(const GraphNode& other) const {
  const auto w = writes();
  const auto ow = other.writes();
  return any_overlap(w, other.reads()) || any_overlap(reads(), ow) || any_overlap(w, ow);
}

void ComputeGraph::add_dispatch(GraphNode node) {
  if (node.kind != GraphNode::Kind::Dispatch || node.kernel == nullptr) {
    throw Error(ErrorKind::InvalidArgument, "ComputeGraph::add_dispatch: node has no kernel");
  }
  nodes_.push_back(std::move(node));
}

void ComputeGraph::add_barrier() {
  GraphNode b;
  b.kind = GraphNode::Kind::Barrier;
  nodes_.push_back(std::move(b));
}

void ComputeGraph::clear() { nodes_.clear(); }

std::size_t ComputeGraph::dispatch_count() const {
  return static_cast<std::size_t>(std::count_if(nodes_.begin(), nodes_.end(), [](const auto& n) {
    return n.kind == GraphNode::Kind::Dispatch;
  }));
}

std::size_t ComputeGraph::barrier_count() const { return nodes_.size() - dispatch_count(); }

void ComputeGraph::replay(CommandEncoder& encoder) const {
  for (const GraphNode& n : nodes_) {
    if (n.kind == GraphNode::Kind::Barrier) {
      encoder.barrier();
    } else {
      encoder.dispatch(*n.kernel, n.args, n.params.data(), n.params.size(), n.op);
    }
  }
}

std::size_t ComputeGraph::replay_recomputed(CommandEncoder& encoder) const {
  ComputeGraph g;
  g.nodes_ = with_minimal_barriers(nodes_);
  g.replay(encoder);
  return g.barrier_count();
}

void ComputeGraph::recompute_barriers() { nodes_ = with_minimal_barriers(nodes_); }

std::size_t ComputeGraph::fuse(const FusionRule& rule) {
  std::size_t fused = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].kind != GraphNode::Kind::Dispatch) continue;
    std::size_t j = i + 1;
    while (j < nodes_.size() && nodes_[j].kind == GraphNode::Kind::Barrier) ++j;
    if (j >= nodes_.size()) break;
    const GraphNode& a = nodes_[i];
    const GraphNode& b = nodes_[j];
    const auto a_writes = a.writes();
    if (!any_overlap(a_writes, b.reads())) continue;
    // The intermediate disappears, so nothing after b may read it.
    bool read_later = false;
    for (std::size_t k = j + 1; k < nodes_.size() && !read_later; ++k) {
      if (nodes_[k].kind == GraphNode::Kind::Dispatch && any_overlap(a_writes, nodes_[k].reads())) {
        read_later = true;
      }
    }
    if (read_later) continue;
    std::optional<GraphNode> f = rule(a, b);
    if (!f) continue;
    // The fused node takes b's place, after any barrier that ordered a's inputs.
    nodes_[j] = std::move(*f);
    nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(i));
    ++fused;
    --i;  // revisit from the fused node's neighbourhood
  }
  return fused;
}

std::size_t ComputeGraph::reorder(std::size_t lookahead) {
  if (lookahead == 0) lookahead = 1;
  std::vector<GraphNode> pending;
  for (auto& n : nodes_) {
    if (n.kind == GraphNode::Kind::Dispatch) pending.push_back(std::move(n));
  }
  std::vector<GraphNode> out;
  std::size_t moved = 0;
  while (!pending.empty()) {
    std::vector<const GraphNode*> group;
    std::vector<const GraphNode*> skipped;
    std::vector<std::size_t> taken;
    const std::size_t window = std::min(lookahead, pending.size());
    for (std::size_t k = 0; k < window; ++k) {
      const GraphNode& n = pending[k];
      // A node may join the group only if it is independent of the group and of every earlier
      // node it would overtake.
      if (!conflicts_with_any(n, group) && !conflicts_with_any(n, skipped)) {
        if (!skipped.empty()) ++moved;
        group.push_back(&n);
        taken.push_back(k);
      } else {
        skipped.push_back(&n);
      }
    }
    if (!out.empty()) {
      GraphNode b;
      b.kind = GraphNode::Kind::Barrier;
      out.push_back(std::move(b));
    }
    for (std::size_t k : taken) out.push_back(std::move(pending[k]));
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
  nodes_ = std::move(out);
  return moved;
}

void ComputeGraph::set_params(std::size_t node, const void* params, std::size_t bytes) {
  require_dispatch(nodes_, node, "ComputeGraph::set_params");
  if (bytes != nodes_[node].params.size()) {
    throw Error(ErrorKind::InvalidArgument,
                "ComputeGraph::set_params: node " + std::to_string(node) + " has " +
                    std::to_string(nodes_[node].params.size()) + " param bytes, got " +
                    std::to_string(bytes));
  }
  const auto* p = static_cast<const unsigned char*>(params);
  nodes_[node].params.assign(p, p + bytes);
}

GraphExec ComputeGraph::instantiate(Device& device) const {
  std::vector<detail::Command> commands;
  commands.reserve(nodes_.size());
  for (const GraphNode& n : nodes_) {
    if (n.kind == GraphNode::Kind::Barrier) {
      detail::Command c;
      c.kind = detail::Command::Kind::Barrier;
      commands.push_back(std::move(c));
      continue;
    }
    if (n.kernel->backend != device.backend()) {
      throw Error(ErrorKind::InvalidArgument, "ComputeGraph::instantiate: node " + n.kernel->key +
                                                  " was recorded for another backend");
    }
    for (const Arg& a : n.args) {
      if (a.buffer.storage()->backend != device.backend_impl()) {
        throw Error(ErrorKind::InvalidArgument, "ComputeGraph::instantiate: node " +
                                                    n.kernel->key +
                                                    " binds a buffer of another device");
      }
    }
    commands.push_back(detail::make_dispatch_command(*n.kernel, n.args, n.params.data(),
                                                     n.params.size()));
  }
  return GraphExec(device.backend_impl()->instantiate_graph(commands), nodes_);
}

GraphExec::GraphExec(std::shared_ptr<detail::GraphExecImpl> impl, std::vector<GraphNode> nodes)
    : impl_(std::move(impl)),
      nodes_(std::make_shared<const std::vector<GraphNode>>(std::move(nodes))) {}

void GraphExec::set_params(std::size_t node, const void* params, std::size_t bytes) {
  if (!impl_) throw Error(ErrorKind::InvalidArgument, "GraphExec::set_params: empty GraphExec");
  require_dispatch(*nodes_, node, "GraphExec::set_params");
  if (bytes != (*nodes_)[node].params.size()) {
    throw Error(ErrorKind::InvalidArgument,
                "GraphExec::set_params: node " + std::to_string(node) + " has " +
                    std::to_string((*nodes_)[node].params.size()) + " param bytes, got " +
                    std::to_string(bytes));
  }
  std::size_t dispatch_index = 0;
  for (std::size_t i = 0; i < node; ++i) {
    dispatch_index += (*nodes_)[i].kind == GraphNode::Kind::Dispatch;
  }
  impl_->set_params(dispatch_index, params, bytes);
}

}  // namespace mlxn
