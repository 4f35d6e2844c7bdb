// base::Platform: the host's facts as the OS reports them, and an injected profile replacing
// them for every caller (thread pool, cache size, memory) for the scope's lifetime.
#include "base/platform.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include "base/memory.h"
#include "base/thread_pool.h"

namespace pocket {
namespace {

TEST(PlatformTest, DefaultIsTheHostWithSaneFacts) {
  const Platform& p = Platform::Default();
  EXPECT_EQ(&p, &Platform::Host());
  EXPECT_EQ(p.profile().name, "host");
  EXPECT_FALSE(p.profile().arch.empty());
  EXPECT_EQ(p.logical_cores(),
            static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_GT(p.physical_memory_bytes(), 64ull << 20);
  const uint64_t available = p.available_memory_bytes();
  EXPECT_GT(available, 0u);
  EXPECT_LE(available, p.physical_memory_bytes());
  EXPECT_TRUE(!p.cpu().avx512 || p.cpu().avx2);
  EXPECT_TRUE(!p.cpu().avx512_vnni || p.cpu().avx512);
  EXPECT_EQ(p.isa_cap(), IsaCap::kNative);
  EXPECT_EQ(p.allows_avx512(), p.cpu().avx512);
  // Read once: the same object every time.
  EXPECT_EQ(&Platform::Host(), &Platform::Host());
}

// The kernel's view of the caches (sysfs), where it has them.
TEST(PlatformTest, CacheSizesMatchSysfs) {
  const Platform& p = Platform::Host();
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    std::ifstream level(dir + "/level"), type(dir + "/type"), size(dir + "/size");
    std::string lv, ty, sz;
    if (!(level >> lv)) break;
    if (!(type >> ty) || ty == "Instruction" || !(size >> sz) || sz.empty() || sz.back() != 'K')
      continue;
    const uint64_t bytes = std::stoull(sz.substr(0, sz.size() - 1)) * 1024;
    if (lv == "2") {
      EXPECT_EQ(p.l2_cache_bytes(), bytes);
    } else if (lv == "3") {
      EXPECT_EQ(p.l3_cache_bytes(), bytes);
    }
  }
  EXPECT_EQ(LastLevelCacheBytes(), p.last_level_cache_bytes());
}

TEST(PlatformTest, InjectedProfileIsWhatCallersSeeUntilTheScopeEnds) {
  PlatformProfile phone;
  phone.name = "phone";
  phone.arch = "aarch64";
  phone.cpu.neon = true;
  phone.logical_cores = 3;
  phone.l2_cache_bytes = 512 << 10;
  phone.l3_cache_bytes = 0;  // no L3: the last level is L2
  phone.physical_memory_bytes = 4ull << 30;
  phone.available_memory_bytes = 1ull << 30;
  const Platform device(phone);
  const int host_cores = Platform::Host().logical_cores();
  {
    ScopedPlatform scope(device);
    EXPECT_EQ(&Platform::Default(), &device);
    EXPECT_EQ(ThreadPool(0).num_threads(), 3u);  // the thread count default
    EXPECT_EQ(LastLevelCacheBytes(), 512u << 10);  // the cache-size choice of the model
    EXPECT_EQ(AvailableMemoryBytes(), 1ull << 30);  // the KV cache's memory check
    EXPECT_EQ(Platform::Default().available_memory_bytes(), 1ull << 30);  // fixed, not live
    EXPECT_FALSE(Platform::Default().allows_avx512());
    PlatformProfile capped = Platform::Host().profile();
    capped.isa_cap = IsaCap::kAvx2;
    const Platform inner(capped);
    {
      ScopedPlatform nested(inner);
      EXPECT_FALSE(Platform::Default().allows_avx512());
      EXPECT_EQ(ThreadPool(0).num_threads(), static_cast<size_t>(host_cores));
    }
    EXPECT_EQ(&Platform::Default(), &device);
  }
  EXPECT_EQ(&Platform::Default(), &Platform::Host());
  EXPECT_EQ(ThreadPool(0).num_threads(), static_cast<size_t>(host_cores));
}

TEST(PlatformTest, ProfileWithNoCoresCountsOne) {
  PlatformProfile none;
  none.logical_cores = 0;
  EXPECT_EQ(Platform(none).logical_cores(), 1);
}

}  // namespace
}  // namespace pocket
