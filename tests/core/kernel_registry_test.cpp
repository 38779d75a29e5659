// KernelRegistry: specialization keys, lazy creation and caching, overrides, errors, user kernels.
#include "mlxn/core/kernel_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/core/device.h"
#include "test_backends.h"

namespace mlxn {
namespace {

// Distinct addresses standing in for kernel entry points.
const int kEntryA = 1;
const int kEntryB = 2;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(SpecializationTest, KeyIsSortedByConstantName) {
  Specialization s;
  s.set("group", 64).set("bits", 4).set("dtype", DType::BF16);
  EXPECT_EQ(s.key("qmv"), "qmv|bits:4|dtype:bf16|group:64");
  Specialization t{{"dtype", "bf16"}, {"bits", "4"}, {"group", "64"}};
  EXPECT_EQ(t.key("qmv"), s.key("qmv"));
  EXPECT_EQ(Specialization().key("plain"), "plain");
  EXPECT_TRUE(s.has("bits"));
  EXPECT_FALSE(s.has("head_dim"));
  EXPECT_EQ(s.get("dtype"), "bf16");
  auto err = test::capture_error([&] { s.get("head_dim"); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::KernelNotFound);
  EXPECT_TRUE(contains(err->what(), "head_dim")) << err->what();
}

TEST(KernelRegistryTest, FirstGetCreatesSecondReturnsTheCachedKernel) {
  KernelRegistry reg(Backend::Cpu);
  int calls = 0;
  reg.register_factory("k", [&](const Specialization& spec) -> const void* {
    ++calls;
    return spec.get("dtype") == "f32" ? &kEntryA : &kEntryB;
  });
  EXPECT_TRUE(reg.has_factory("k"));
  EXPECT_FALSE(reg.has_factory("q"));
  const Specialization f32{{"dtype", "f32"}}, f16{{"dtype", "f16"}};
  EXPECT_FALSE(reg.is_cached("k", f32));
  EXPECT_EQ(reg.cached_count(), 0u);

  const Kernel& k1 = reg.get("k", f32);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(k1.key, "k|dtype:f32");
  EXPECT_EQ(k1.name, "k");
  EXPECT_EQ(k1.backend, Backend::Cpu);
  EXPECT_EQ(k1.entry, &kEntryA);
  EXPECT_TRUE(reg.is_cached("k", f32));
  EXPECT_FALSE(reg.is_cached("k", f16));

  const Kernel& k2 = reg.get("k", f32);
  EXPECT_EQ(&k1, &k2) << "the second get must return the same Kernel object";
  EXPECT_EQ(calls, 1) << "the factory runs once per specialization";

  const Kernel& k3 = reg.get("k", f16);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(k3.entry, &kEntryB);
  EXPECT_NE(&k3, &k1);
  EXPECT_EQ(reg.cached_count(), 2u);
  EXPECT_EQ(reg.cached_keys(), (std::vector<std::string>{"k|dtype:f16", "k|dtype:f32"}));
}

TEST(KernelRegistryTest, UnknownNamesAndUnsupportedSpecsThrowKernelNotFound) {
  KernelRegistry reg(Backend::Cpu);
  auto err = test::capture_error([&] { reg.get("no_such_kernel", {{"dtype", "f32"}}); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::KernelNotFound);
  EXPECT_TRUE(contains(err->what(), "no_such_kernel|dtype:f32")) << err->what();

  reg.register_factory("only_f32", [](const Specialization& spec) -> const void* {
    return spec.get("dtype") == "f32" ? &kEntryA : nullptr;
  });
  err = test::capture_error([&] { reg.get("only_f32", {{"dtype", "u8"}}); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::KernelNotFound);
  EXPECT_TRUE(contains(err->what(), "only_f32|dtype:u8")) << err->what();
  EXPECT_FALSE(reg.is_cached("only_f32", {{"dtype", "u8"}})) << "failures are not cached";
  EXPECT_EQ(reg.cached_count(), 0u);
  EXPECT_EQ(reg.get("only_f32", {{"dtype", "f32"}}).entry, &kEntryA);
}

TEST(KernelRegistryTest, RegisterFactoryOverridesAndDropsTheCache) {
  KernelRegistry reg(Backend::Cpu);
  reg.register_factory("k", [](const Specialization&) -> const void* { return &kEntryA; });
  reg.register_factory("other", [](const Specialization&) -> const void* { return &kEntryA; });
  const Specialization spec{{"dtype", "f32"}};
  EXPECT_EQ(reg.get("k", spec).entry, &kEntryA);
  reg.get("other", spec);
  EXPECT_EQ(reg.cached_count(), 2u);

  reg.register_factory("k", [](const Specialization&) -> const void* { return &kEntryB; });
  EXPECT_FALSE(reg.is_cached("k", spec)) << "override must drop cached specializations";
  EXPECT_TRUE(reg.is_cached("other", spec)) << "other kernels stay cached";
  EXPECT_EQ(reg.cached_count(), 1u);
  EXPECT_EQ(reg.get("k", spec).entry, &kEntryB);
  EXPECT_EQ(reg.kernel_names(), (std::vector<std::string>{"k", "other"}));
  MLXN_EXPECT_ERROR(reg.register_factory("k", KernelFactory()), ErrorKind::InvalidArgument);
}

TEST(KernelRegistryTest, ConcurrentGetsShareOneKernel) {
  KernelRegistry reg(Backend::Cpu);
  std::atomic<int> calls{0};
  reg.register_factory("k", [&](const Specialization&) -> const void* {
    ++calls;
    return &kEntryA;
  });
  constexpr int kThreads = 4;
  std::vector<std::vector<const Kernel*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        seen[t].push_back(&reg.get("k", {{"v", std::to_string(i % 8)}}));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(calls.load(), 8) << "one creation per specialization";
  EXPECT_EQ(reg.cached_count(), 8u);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 2000; ++i) {
      ASSERT_EQ(seen[t][i], seen[0][i % 8]) << "thread " << t << " get " << i;
    }
  }
}

TEST(KernelRegistryTest, DeviceRegistryProvidesTheBuiltinOps) {
  Device cpu = Device::open(Backend::Cpu);
  KernelRegistry& reg = cpu.kernels();
  EXPECT_EQ(reg.backend(), Backend::Cpu);
  EXPECT_EQ(&reg, &Device::open(Backend::Cpu).kernels()) << "one registry per device";
  const auto names = reg.kernel_names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* op : {"add", "mul", "cast", "rms_norm", "rms_norm_mul", "assert_finite"}) {
    EXPECT_TRUE(reg.has_factory(op)) << op;
  }
}

// A user kernel following the CPU ABI: out[i] = in[i] * scale for i < n.
struct ScaleParams {
  std::int64_t n;
  float scale;
};
void user_scale(const cpu::KernelArgs& k) {
  const auto& p = k.params_as<ScaleParams>();
  const float* in = k.ptr<const float>(0);
  float* out = k.ptr<float>(1);
  for (std::int64_t i = 0; i < p.n; ++i) out[i] = in[i] * p.scale;
}
void user_fail(const cpu::KernelArgs&) {
  throw Error(ErrorKind::InvalidArgument, "user_fail: refusing to run");
}

TEST(KernelRegistryTest, UserCpuKernelRunsThroughTheRegistry) {
  Device cpu = Device::open(Backend::Cpu);
  KernelRegistry& reg = cpu.kernels();
  reg.register_factory("test_user_scale", [](const Specialization& spec) -> const void* {
    return spec.get("dtype") == "f32" ? reinterpret_cast<const void*>(&user_scale) : nullptr;
  });
  const Kernel& k = reg.get("test_user_scale", Specialization().set("dtype", DType::F32));
  auto rng = test::seeded_rng();
  const auto xv = test::random_floats(rng, 1001);
  Buffer x = test::upload(cpu, xv, DType::F32);
  Buffer y = test::poisoned(cpu, DType::F32, {1001});
  CommandEncoder enc = cpu.command_encoder();
  enc.dispatch(k, {Arg::in(x), Arg::out(y)}, ScaleParams{1001, -3.0f}, "user_scale");
  enc.commit_and_wait();
  const auto ys = y.to_vector<float>();
  for (int i = 0; i < 1001; ++i) ASSERT_EQ(ys[i], xv[i] * -3.0f) << i;
}

TEST(KernelRegistryTest, ThrowingUserCpuKernelFailsTheCommandBuffer) {
  Device cpu = Device::open(Backend::Cpu);
  cpu.kernels().register_factory("test_user_fail", [](const Specialization&) -> const void* {
    return reinterpret_cast<const void*>(&user_fail);
  });
  const Kernel& k = cpu.kernels().get("test_user_fail");
  Buffer x = cpu.alloc(DType::F32, {4});
  CommandEncoder enc = cpu.command_encoder();
  enc.set_label("user.fail.label");
  enc.dispatch(k, {Arg::inout(x)}, nullptr, 0, "user_fail");
  auto err = test::capture_error([&] { enc.commit_and_wait(); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind(), ErrorKind::CommandBuffer) << err->what();
  EXPECT_TRUE(contains(err->what(), "test_user_fail")) << "names the kernel: " << err->what();
  EXPECT_TRUE(contains(err->what(), "user.fail.label")) << "names the label: " << err->what();
  // The encoder and device keep working.
  Buffer a = test::upload(cpu, {1, 2}, DType::F32);
  Buffer out = cpu.alloc(DType::F32, {2});
  enc.dispatch(cpu.kernels().get("add", Specialization().set("dtype", DType::F32)),
               {Arg::in(a), Arg::in(a), Arg::out(out)}, std::int64_t{2}, "add");
  enc.commit_and_wait();
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{2, 4}));
}

}  // namespace
}  // namespace mlxn
