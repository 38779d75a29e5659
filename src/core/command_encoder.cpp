// CommandEncoder: recording, hazard tracking, submission and waiting.
#include "mlxn/core/command_encoder.h"

#include <exception>
#include <string>
#include <vector>

#include "core/backend.h"
#include "mlxn/core/compute_graph.h"
#include "mlxn/core/counters.h"
#include "mlxn/core/error.h"
#include "mlxn/core/timeline.h"

namespace mlxn {

namespace detail {
struct EncoderState {
  Device device;
  Queue queue;
  CommandBuffer cb;
  bool cb_open = false;
  std::vector<std::shared_ptr<SubmissionImpl>> in_flight;
  std::optional<double> last_gpu_ms;
  std::string label;
  bool timing = false;
  bool auto_barriers = false;
  ComputeGraph* capture = nullptr;
  // Ranges touched since the last barrier, for barrier_between / tracked dispatch.
  std::vector<ByteRange> reads;
  std::vector<ByteRange> writes;

  EncoderState(Device d, Queue q) : device(std::move(d)), queue(std::move(q)) {}
};
}  // namespace detail

namespace {

ByteRange range_of(const Buffer& b) {
  return ByteRange{b.storage_id(), b.offset(), b.offset() + b.size_bytes()};
}

bool overlaps_any(const ByteRange& r, const std::vector<ByteRange>& set) {
  for (const auto& s : set) {
    if (r.overlaps(s)) return true;
  }
  return false;
}

bool reads_access(Access a) { return a == Access::Read || a == Access::ReadWrite; }
bool writes_access(Access a) { return a == Access::Write || a == Access::ReadWrite; }

}  // namespace

CommandEncoder::CommandEncoder(Device device, Queue queue)
    : s_(std::make_unique<detail::EncoderState>(std::move(device), std::move(queue))) {
  if (!s_->queue.valid()) throw Error(ErrorKind::InvalidArgument, "CommandEncoder: empty queue");
}

CommandEncoder::~CommandEncoder() = default;
CommandEncoder::CommandEncoder(CommandEncoder&&) noexcept = default;
CommandEncoder& CommandEncoder::operator=(CommandEncoder&&) noexcept = default;

void CommandEncoder::open_command_buffer() {
  if (s_->cb_open) return;
  s_->cb.commands.clear();
  s_->cb.retained.clear();
  // Small reservations: a command is ~0.5 KB and the buffer moves to the queue at commit, so a
  // large one would be a fresh (page-faulting) allocation per command buffer.
  s_->cb.commands.reserve(16);
  s_->cb.retained.reserve(48);
  s_->cb_open = true;
  s_->reads.clear();
  s_->writes.clear();
  counters::add_command_buffer();
}

void CommandEncoder::dispatch(const Kernel& kernel, std::span<const Arg> args, const void* params,
                              std::size_t params_bytes, std::string_view op) {
  if (kernel.backend != s_->device.backend()) {
    throw Error(ErrorKind::InvalidArgument, "dispatch of " + kernel.key + ": kernel is for the " +
                                                backend_name(kernel.backend) +
                                                " backend, the encoder's device is " +
                                                backend_name(s_->device.backend()));
  }
  if (args.size() > kMaxBindings || params_bytes > kMaxParamBytes) {
    throw Error(ErrorKind::InvalidArgument,
                "dispatch of " + kernel.key + ": " + std::to_string(args.size()) + " bindings and " +
                    std::to_string(params_bytes) + " param bytes exceed the limits (" +
                    std::to_string(kMaxBindings) + ", " + std::to_string(kMaxParamBytes) + ")");
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const Buffer& b = args[i].buffer;
    if (!b.valid() || b.storage()->backend != s_->device.backend_impl()) {
      throw Error(ErrorKind::InvalidArgument,
                  "dispatch of " + kernel.key + ": binding " + std::to_string(i) +
                      (b.valid() ? " belongs to another device" : " is an empty buffer"));
    }
  }
  // Open the command buffer first: opening clears the tracked ranges, which must then include
  // this dispatch's.
  if (!s_->capture) open_command_buffer();
  if (s_->auto_barriers) {
    bool conflict = false;
    for (const Arg& a : args) {
      const ByteRange r = range_of(a.buffer);
      if (reads_access(a.access) && overlaps_any(r, s_->writes)) conflict = true;
      if (writes_access(a.access) && (overlaps_any(r, s_->reads) || overlaps_any(r, s_->writes))) {
        conflict = true;
      }
    }
    if (conflict) emit_barrier(true);
  }
  for (const Arg& a : args) {
    const ByteRange r = range_of(a.buffer);
    if (reads_access(a.access)) s_->reads.push_back(r);
    if (writes_access(a.access)) s_->writes.push_back(r);
  }
  if (s_->capture) {
    GraphNode node;
    node.kind = GraphNode::Kind::Dispatch;
    node.op = std::string(op);
    node.kernel = &kernel;
    node.args.assign(args.begin(), args.end());
    node.params.assign(static_cast<const unsigned char*>(params),
                       static_cast<const unsigned char*>(params) + params_bytes);
    s_->capture->add_dispatch(std::move(node));
    return;
  }
  s_->cb.commands.push_back(detail::make_dispatch_command(kernel, args, params, params_bytes));
  for (const Arg& a : args) s_->cb.retained.push_back(a.buffer.storage());
  counters::add_dispatch();
}

void CommandEncoder::dispatch_tracked(const Kernel& kernel, std::span<const Arg> args,
                                      const void* params, std::size_t params_bytes,
                                      std::string_view op) {
  std::vector<Buffer> reads, writes;
  for (const Arg& a : args) {
    if (reads_access(a.access)) reads.push_back(a.buffer);
    if (writes_access(a.access)) writes.push_back(a.buffer);
  }
  barrier_between(reads, writes);
  dispatch(kernel, args, params, params_bytes, op);
}

void CommandEncoder::set_auto_barriers(bool on) { s_->auto_barriers = on; }

void CommandEncoder::barrier() { emit_barrier(false); }

void CommandEncoder::emit_barrier(bool automatic) {
  counters::add_barrier(automatic);
  s_->reads.clear();
  s_->writes.clear();
  if (s_->capture) {
    s_->capture->add_barrier();
    return;
  }
  open_command_buffer();
  detail::Command c;
  c.kind = detail::Command::Kind::Barrier;
  s_->cb.commands.push_back(std::move(c));
}

bool CommandEncoder::barrier_between(std::span<const Buffer> reads,
                                     std::span<const Buffer> writes) {
  bool conflict = false;
  for (const Buffer& b : reads) {
    if (b.valid() && overlaps_any(range_of(b), s_->writes)) conflict = true;  // RAW
  }
  for (const Buffer& b : writes) {
    if (!b.valid()) continue;
    const ByteRange r = range_of(b);
    if (overlaps_any(r, s_->reads) || overlaps_any(r, s_->writes)) conflict = true;  // WAR, WAW
  }
  if (!conflict) return false;
  emit_barrier(true);
  return true;
}

void CommandEncoder::wait_for(const Timeline& timeline, std::uint64_t value) {
  if (!timeline.valid()) throw Error(ErrorKind::InvalidArgument, "wait_for: empty timeline");
  open_command_buffer();
  detail::Command c;
  c.kind = detail::Command::Kind::Wait;
  c.timeline = timeline.impl();
  c.value = value;
  s_->cb.commands.push_back(std::move(c));
}

void CommandEncoder::signal(const Timeline& timeline, std::uint64_t value) {
  if (!timeline.valid()) throw Error(ErrorKind::InvalidArgument, "signal: empty timeline");
  open_command_buffer();
  detail::Command c;
  c.kind = detail::Command::Kind::Signal;
  c.timeline = timeline.impl();
  c.value = value;
  s_->cb.commands.push_back(std::move(c));
}

void CommandEncoder::commit() {
  if (s_->capture) {
    throw Error(ErrorKind::InvalidArgument, "commit while capturing into a ComputeGraph");
  }
  open_command_buffer();
  s_->cb.label = s_->label;
  s_->cb.timing = s_->timing;
  s_->in_flight.push_back(s_->queue.impl()->submit(std::move(s_->cb)));
  s_->cb = detail::CommandBuffer{};
  s_->cb_open = false;
  s_->reads.clear();
  s_->writes.clear();
}

void CommandEncoder::commit(std::string label) {
  s_->label = std::move(label);
  commit();
}

void CommandEncoder::wait() {
  if (s_->in_flight.empty()) return;
  counters::add_sync();
  std::exception_ptr first;
  for (auto& sub : s_->in_flight) {
    try {
      sub->wait();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  s_->last_gpu_ms = s_->in_flight.back()->gpu_time_ms();
  s_->in_flight.clear();
  if (first) std::rethrow_exception(first);
}

void CommandEncoder::commit_and_wait() {
  commit();
  wait();
}

void CommandEncoder::discard() {
  s_->cb.commands.clear();  // keeps the capacity for the next command buffer
  s_->cb.retained.clear();
  s_->cb_open = false;
  s_->reads.clear();
  s_->writes.clear();
}

void CommandEncoder::set_label(std::string label) { s_->label = std::move(label); }
void CommandEncoder::set_timing(bool on) { s_->timing = on; }
std::optional<double> CommandEncoder::gpu_time_ms() const { return s_->last_gpu_ms; }

void CommandEncoder::begin_capture(ComputeGraph& graph) {
  if (s_->capture) throw Error(ErrorKind::InvalidArgument, "begin_capture: already capturing");
  s_->capture = &graph;
  s_->reads.clear();
  s_->writes.clear();
}

void CommandEncoder::end_capture() {
  s_->capture = nullptr;
  s_->reads.clear();
  s_->writes.clear();
}

bool CommandEncoder::is_capturing() const { return s_->capture != nullptr; }

std::size_t CommandEncoder::pending_dispatches() const {
  std::size_t n = 0;
  for (const auto& c : s_->cb.commands) n += c.kind == detail::Command::Kind::Dispatch;
  return n;
}

std::size_t CommandEncoder::in_flight() const { return s_->in_flight.size(); }
Device& CommandEncoder::device() { return s_->device; }
const Queue& CommandEncoder::queue() const { return s_->queue; }

void CommandEncoder::set_queue(Queue queue) {
  if (!queue.valid()) throw Error(ErrorKind::InvalidArgument, "set_queue: empty queue");
  if (s_->cb_open && !s_->cb.commands.empty()) {
    throw Error(ErrorKind::InvalidArgument,
                "set_queue: the current command buffer holds work; commit or discard it first");
  }
  s_->queue = std::move(queue);
}

void CommandEncoder::launch(GraphExec& graph) {
  if (!graph.valid()) throw Error(ErrorKind::InvalidArgument, "launch: empty GraphExec");
  if (s_->capture) throw Error(ErrorKind::InvalidArgument, "launch while capturing");
  open_command_buffer();
  detail::Command c;
  c.kind = detail::Command::Kind::Graph;
  c.graph = graph.impl();
  c.keepalive = graph.keepalive();
  s_->cb.commands.push_back(std::move(c));
  s_->reads.clear();
  s_->writes.clear();
}

}  // namespace mlxn
