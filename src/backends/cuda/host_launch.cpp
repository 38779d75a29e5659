// Capturing a host-enqueued dispatch into a CUDA graph, for CudaGraphExec's child-graph nodes.
#include "backends/cuda/host_launch.h"

#include <string>

#include "backends/cuda/cuda_check.h"

namespace mlxn::cuda {

cudaGraph_t capture_host_launch(HostEnqueueFn fn, const DeviceArgs& args, const char* what) {
  const std::string label = std::string("CUDA graph: capturing ") + what;
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), ErrorKind::CommandBuffer,
             label.c_str());
  // Relaxed: the enqueue function may create its library handle on first use (which allocates),
  // and nothing else on this private stream can be disturbed by that.
  cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed);
  if (err != cudaSuccess) {
    ignore_cuda(cudaStreamDestroy(stream));
    throw_cuda_error(ErrorKind::CommandBuffer, err, label);
  }
  cudaGraph_t graph = nullptr;
  try {
    fn(args, stream);
  } catch (...) {
    if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr) {
      ignore_cuda(cudaGraphDestroy(graph));
    }
    cudaGetLastError();
    ignore_cuda(cudaStreamDestroy(stream));
    throw;
  }
  err = cudaStreamEndCapture(stream, &graph);
  ignore_cuda(cudaStreamDestroy(stream));
  if (err != cudaSuccess) {
    if (graph != nullptr) ignore_cuda(cudaGraphDestroy(graph));
    throw_cuda_error(ErrorKind::CommandBuffer, err, label);
  }
  return graph;
}

}  // namespace mlxn::cuda
