#include "base/memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

namespace pocket {
namespace {

TEST(MemoryTest, RssFiguresAreKnownOnLinux) {
  const uint64_t now = CurrentRssBytes();  // read first: RSS may grow before the peak is read
  EXPECT_GT(now, 0u);
  EXPECT_GE(PeakRssBytes(), now);
  EXPECT_GT(AvailableMemoryBytes(), 0u);
}

// The kernel's view of the cache (sysfs) against glibc's (cpuid) where both exist.
TEST(MemoryTest, LastLevelCacheMatchesSysfs) {
  std::ifstream level("/sys/devices/system/cpu/cpu0/cache/index3/level");
  std::ifstream size("/sys/devices/system/cpu/cpu0/cache/index3/size");
  std::string lv, sz;
  if (!(level >> lv) || lv != "3" || !(size >> sz) || sz.empty() || sz.back() != 'K') {
    GTEST_SKIP() << "no L3 in sysfs here";
  }
  const uint64_t bytes = LastLevelCacheBytes();
  if (bytes == 0) GTEST_SKIP() << "glibc does not know this CPU's caches";
  EXPECT_EQ(bytes, std::stoull(sz.substr(0, sz.size() - 1)) * 1024);
}

TEST(MemoryTest, AllocateLargeAlignsAndIsWritable) {
  for (size_t bytes : {size_t{1}, size_t{4096}, (size_t{2} << 20) - 1, size_t{2} << 20,
                       (size_t{5} << 20) + 3}) {
    auto* p = static_cast<uint8_t*>(AllocateLarge(bytes));
    ASSERT_NE(p, nullptr) << bytes;
    const uintptr_t align = bytes >= (size_t{2} << 20) ? (uintptr_t{2} << 20) : 64;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << bytes;
    std::memset(p, 0xA5, bytes);
    EXPECT_EQ(p[bytes - 1], 0xA5);
    FreeLarge(p);
  }
  EXPECT_EQ(AllocateLarge(SIZE_MAX - 5), nullptr);
}

}  // namespace
}  // namespace pocket
