// ComputeGraph: a recorded list of dispatches and barriers that can be optimized and replayed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"

namespace mlxn {

namespace detail {
class GraphExecImpl;
}

/// A byte range of one storage, as read or written by a node.
struct ByteRange {
  const void* storage = nullptr;
  std::size_t begin = 0;
  std::size_t end = 0;
  bool overlaps(const ByteRange& o) const {
    return storage == o.storage && begin < o.end && o.begin < end;
  }
};

/// One recorded command.
struct GraphNode {
  enum class Kind : std::uint8_t { Dispatch, Barrier };
  Kind kind = Kind::Dispatch;
  std::string op;                      // operation kind ("add", "rms_norm", ...)
  const Kernel* kernel = nullptr;      // dispatch only
  std::vector<Arg> args;               // dispatch only
  std::vector<unsigned char> params;   // dispatch only
  std::vector<ByteRange> reads() const;
  std::vector<ByteRange> writes() const;
  /// True when executing `other` after this node without a barrier could change results.
  bool conflicts_with(const GraphNode& other) const;
};

/// Replaces an adjacent pair of dispatches (a then b) with one node; returns nullopt when the
/// pair does not match. `a`'s outputs must be read only by `b` (ComputeGraph::fuse checks).
using FusionRule = std::function<std::optional<GraphNode>(const GraphNode& a, const GraphNode& b)>;

/// A device-instantiated graph (a CUDA graph on CUDA) replayed with CommandEncoder::launch.
/// Parameters of a dispatch can change between launches without re-recording.
class GraphExec {
 public:
  GraphExec() = default;
  bool valid() const { return impl_ != nullptr; }
  /// New inline params for dispatch node `node` (index into ComputeGraph::nodes()). The kernel
  /// and the bindings stay; throws InvalidArgument for a non-dispatch node or a size change.
  void set_params(std::size_t node, const void* params, std::size_t bytes);
  template <class P>
  void set_params(std::size_t node, const P& params) {
    static_assert(std::is_trivially_copyable_v<P>);
    set_params(node, &params, sizeof(P));
  }
  const std::shared_ptr<detail::GraphExecImpl>& impl() const { return impl_; }
  /// Keeps the bound buffers alive while a launch is in flight.
  std::shared_ptr<const void> keepalive() const { return nodes_; }
  GraphExec(std::shared_ptr<detail::GraphExecImpl> impl, std::vector<GraphNode> nodes);

 private:
  std::shared_ptr<detail::GraphExecImpl> impl_;
  std::shared_ptr<const std::vector<GraphNode>> nodes_;
};

/// Recorded dispatches and barriers with their buffer ranges and op kinds. Record with
/// CommandEncoder::begin_capture / end_capture, or append nodes directly.
class ComputeGraph {
 public:
  void add_dispatch(GraphNode node);
  void add_barrier();
  void clear();

  const std::vector<GraphNode>& nodes() const { return nodes_; }
  std::size_t dispatch_count() const;
  std::size_t barrier_count() const;

  /// Re-encodes the nodes into `encoder` as recorded (barriers where they were).
  void replay(CommandEncoder& encoder) const;
  /// Re-encodes the dispatches with barriers recomputed from their ranges (a barrier only where
  /// a node conflicts with one since the last barrier). Returns the barriers emitted.
  std::size_t replay_recomputed(CommandEncoder& encoder) const;
  /// Drops recorded barriers and inserts the minimal ones implied by the ranges, in place.
  void recompute_barriers();

  /// Applies `rule` to every pair of consecutive dispatches (ignoring barriers between them)
  /// where the second reads what the first writes and nothing else reads it. Returns fusions made.
  std::size_t fuse(const FusionRule& rule);
  /// Pulls independent dispatches forward (up to `lookahead` nodes) so that more work runs
  /// between barriers, keeping every dependency; barriers are then recomputed. Returns how many
  /// dispatches moved.
  std::size_t reorder(std::size_t lookahead = 64);

  /// Replaces the inline params of dispatch node `node` (same size).
  void set_params(std::size_t node, const void* params, std::size_t bytes);
  template <class P>
  void set_params(std::size_t node, const P& params) {
    static_assert(std::is_trivially_copyable_v<P>);
    set_params(node, &params, sizeof(P));
  }

  /// Builds a device graph (CUDA graph: nodes between two barriers are independent branches).
  GraphExec instantiate(Device& device) const;

 private:
  std::vector<GraphNode> nodes_;
};

}  // namespace mlxn
