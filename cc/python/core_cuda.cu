// See core_cuda.h. Compiled by nvcc (CMakeLists.txt) with --fmad=false, the
// nvcc spelling of the op library's -ffp-contract=off.
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cc/core/cuda/fake_quant.cuh"
#include "cc/core/cuda/qdq.cuh"
#include "cc/python/core_cuda.h"

namespace tf_qdq {
namespace cuda_bridge {
namespace {

void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string("tf_qdq.core CUDA ") + what + ": " +
                             cudaGetErrorString(e));
  }
}

// A device copy of `count` host values (or an output buffer), freed on exit.
template <typename T>
class DeviceArray {
 public:
  DeviceArray(const T* host, int64_t count) : count_(count) {
    Check(cudaMalloc(&data_, (count > 0 ? count : 1) * sizeof(T)), "malloc");
    if (host != nullptr && count > 0) {
      Check(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice), "copy in");
    }
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() { return data_; }
  void CopyTo(T* host) const {
    if (host != nullptr && count_ > 0) {
      Check(cudaMemcpy(host, data_, count_ * sizeof(T), cudaMemcpyDeviceToHost), "copy out");
    }
  }

 private:
  T* data_ = nullptr;
  int64_t count_;
};

void Finish(cudaError_t launch) {
  Check(launch, "launch");
  Check(cudaDeviceSynchronize(), "kernel");
}

}  // namespace

template <typename T>
void LaunchQdqForward(const core::QdqForwardArgs<T>& h) {
  const int64_t n = h.view.size();
  const int64_t depth = h.range_given ? h.view.depth : 0;
  DeviceArray<T> in(h.input, n), out(nullptr, n);
  DeviceArray<T> lo(h.input_min, depth), hi(h.input_max, depth);
  core::QdqForwardArgs<T> d = h;
  d.input = in.get();
  d.output = out.get();
  d.input_min = h.range_given ? lo.get() : nullptr;
  d.input_max = h.range_given ? hi.get() : nullptr;
  const size_t bytes = core::cuda::QdqForwardCudaWorkspaceBytes<T>(h.view, h.range_given);
  DeviceArray<unsigned char> ws(nullptr, static_cast<int64_t>(bytes));
  Finish(core::cuda::QdqForwardCuda(d, ws.get(), bytes, nullptr));
  out.CopyTo(h.output);
}

template <typename T>
void LaunchQdqGradient(const core::QdqGradientArgs<T>& h) {
  const int64_t n = h.view.size();
  DeviceArray<T> g(h.gradients, n), x(h.input, n), dx(nullptr, n);
  DeviceArray<T> lo(h.input_min, h.range_size), hi(h.input_max, h.range_size);
  DeviceArray<T> dlo(nullptr, h.range_size), dhi(nullptr, h.range_size);
  core::QdqGradientArgs<T> d = h;
  d.gradients = g.get();
  d.input = x.get();
  d.input_backprop = dx.get();
  d.input_min = lo.get();
  d.input_max = hi.get();
  d.input_min_backprop = dlo.get();
  d.input_max_backprop = dhi.get();
  Finish(core::cuda::QdqGradientCuda(d, nullptr));
  dx.CopyTo(h.input_backprop);
  dlo.CopyTo(h.input_min_backprop);
  dhi.CopyTo(h.input_max_backprop);
}

template <typename T>
core::RangeSource<T> DeviceRange(const core::RangeSource<T>& h, DeviceArray<T>& lo,
                                 DeviceArray<T>& hi) {
  core::RangeSource<T> d = h;
  if (h.min != nullptr) {
    d.min = lo.get();
    d.max = hi.get();
  }
  return d;
}

template <core::GridStep kStep, typename T>
void LaunchFakeQuantForward(const core::FakeQuantArgs<T>& h) {
  const int64_t n = h.view.size();
  const int64_t depth = h.range.min != nullptr ? h.view.depth : 0;
  DeviceArray<T> in(h.input, n), out(nullptr, n);
  DeviceArray<T> lo(h.range.min, depth), hi(h.range.max, depth);
  core::FakeQuantArgs<T> d = h;
  d.input = in.get();
  d.output = out.get();
  d.range = DeviceRange(h.range, lo, hi);
  const size_t bytes = core::cuda::FakeQuantForwardCudaWorkspaceBytes<T>(h.view);
  DeviceArray<unsigned char> ws(nullptr, static_cast<int64_t>(bytes));
  Finish(core::cuda::FakeQuantForwardCuda<kStep>(d, ws.get(), bytes, nullptr));
  out.CopyTo(h.output);
}

template <typename T>
void LaunchFakeQuantGradient(const core::FakeQuantGradientArgs<T>& h) {
  const int64_t n = h.view.size();
  const bool with_sums = h.wrt_min != nullptr;
  const int64_t depth = h.range.min != nullptr ? h.view.depth : 0;
  const int64_t sums = with_sums ? h.view.depth : 0;
  DeviceArray<T> g(h.gradients, n), x(h.input, n), dx(nullptr, n);
  DeviceArray<T> lo(h.range.min, depth), hi(h.range.max, depth);
  DeviceArray<T> dlo(nullptr, sums), dhi(nullptr, sums);
  core::FakeQuantGradientArgs<T> d = h;
  d.gradients = g.get();
  d.input = x.get();
  d.wrt_input = dx.get();
  d.wrt_min = with_sums ? dlo.get() : nullptr;
  d.wrt_max = with_sums ? dhi.get() : nullptr;
  d.range = DeviceRange(h.range, lo, hi);
  const size_t bytes = core::cuda::FakeQuantGradientCudaWorkspaceBytes<T>(h.view, with_sums);
  DeviceArray<unsigned char> ws(nullptr, static_cast<int64_t>(bytes));
  Finish(core::cuda::FakeQuantGradientCuda(d, ws.get(), bytes, nullptr));
  dx.CopyTo(h.wrt_input);
  if (with_sums) {
    dlo.CopyTo(h.wrt_min);
    dhi.CopyTo(h.wrt_max);
  }
}

namespace {

// Median over `reps` of the time between two events around `launch()`.
template <typename Launch>
double MedianMs(int reps, Launch&& launch) {
  cudaEvent_t start, stop;
  Check(cudaEventCreate(&start), "event");
  Check(cudaEventCreate(&stop), "event");
  launch();  // warm-up
  std::vector<float> times;
  for (int r = 0; r < reps; ++r) {
    Check(cudaEventRecord(start), "event");
    launch();
    Check(cudaEventRecord(stop), "event");
    Check(cudaEventSynchronize(stop), "event");
    float ms;
    Check(cudaEventElapsedTime(&ms, start, stop), "event");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

BenchmarkResult Benchmark(const std::string& op, int64_t n, int64_t channels, int reps) {
  const core::ChannelView view = channels > 1
      ? core::ChannelView{n / channels, channels, 1} : core::PerTensorView(n);
  n = view.size();
  std::vector<float> host(n), lo(channels, -1.0f), hi(channels, 1.0f);
  for (int64_t i = 0; i < n; ++i) host[i] = static_cast<float>((i * 2654435761u) % 2001) / 500.0f - 2.0f;
  DeviceArray<float> x(host.data(), n), g(host.data(), n), y(nullptr, n), z(nullptr, n);
  DeviceArray<float> dlo(lo.data(), channels), dhi(hi.data(), channels);
  DeviceArray<float> slo(nullptr, channels), shi(nullptr, channels);
  const double copy_ms = MedianMs(reps, [&] {
    Check(cudaMemcpyAsync(y.get(), x.get(), n * sizeof(float), cudaMemcpyDeviceToDevice), "copy");
  });
  const double one_pass = 2.0 * n * sizeof(float);  // one read, one write
  double bytes = one_pass;
  size_t ws_bytes = 0;
  std::function<cudaError_t(void*)> run;
  if (op == "qdq" || op == "qdq_given") {
    core::QdqForwardArgs<float> a{x.get(), y.get(), view, core::ComputeQdqBounds(true, 8, false),
                                  core::RoundMode::kHalfToEven, op == "qdq_given",
                                  dlo.get(), dhi.get(), false};
    if (op == "qdq") bytes = 1.5 * one_pass;  // the range pass reads the data once more
    ws_bytes = core::cuda::QdqForwardCudaWorkspaceBytes<float>(view, a.range_given);
    run = [a, ws_bytes](void* ws) { return core::cuda::QdqForwardCuda(a, ws, ws_bytes, nullptr); };
  } else if (op == "fake_quant") {
    core::FakeQuantArgs<float> a{x.get(), y.get(), view, core::ComputeFakeQuantBounds(8, false),
                                 core::RangeSource<float>{dlo.get(), dhi.get(), 0, 0}, true};
    ws_bytes = core::cuda::FakeQuantForwardCudaWorkspaceBytes<float>(view);
    run = [a, ws_bytes](void* ws) {
      return core::cuda::FakeQuantForwardCuda<core::GridStep::kMultiplyByInverse>(a, ws, ws_bytes,
                                                                                  nullptr);
    };
  } else if (op == "fake_quant_gradient") {
    core::FakeQuantGradientArgs<float> a{g.get(), x.get(), y.get(), slo.get(), shi.get(), view,
                                         core::ComputeFakeQuantBounds(8, false),
                                         core::RangeSource<float>{dlo.get(), dhi.get(), 0, 0},
                                         true};
    bytes = 1.5 * one_pass;  // two reads, one write
    ws_bytes = core::cuda::FakeQuantGradientCudaWorkspaceBytes<float>(view, true);
    run = [a, ws_bytes](void* ws) { return core::cuda::FakeQuantGradientCuda(a, ws, ws_bytes, nullptr); };
  } else {
    throw std::runtime_error("tf_qdq.core.cuda_benchmark: unknown op '" + op +
                             "' (qdq, qdq_given, fake_quant, fake_quant_gradient)");
  }
  DeviceArray<unsigned char> ws(nullptr, static_cast<int64_t>(ws_bytes));
  const double op_ms = MedianMs(reps, [&] { Check(run(ws.get()), "launch"); });
  return {op_ms, copy_ms, bytes};
}

#define TF_QDQ_INSTANTIATE_BRIDGE(T)                                              \
  template void LaunchQdqForward<T>(const core::QdqForwardArgs<T>&);                    \
  template void LaunchQdqGradient<T>(const core::QdqGradientArgs<T>&);                  \
  template void LaunchFakeQuantForward<core::GridStep::kDivideByScale, T>(              \
      const core::FakeQuantArgs<T>&);                                             \
  template void LaunchFakeQuantForward<core::GridStep::kMultiplyByInverse, T>(          \
      const core::FakeQuantArgs<T>&);                                             \
  template void LaunchFakeQuantGradient<T>(const core::FakeQuantGradientArgs<T>&);
TF_QDQ_INSTANTIATE_BRIDGE(float)
TF_QDQ_INSTANTIATE_BRIDGE(double)
TF_QDQ_INSTANTIATE_BRIDGE(core::Half)
#undef TF_QDQ_INSTANTIATE_BRIDGE

}  // namespace cuda_bridge
}  // namespace tf_qdq
