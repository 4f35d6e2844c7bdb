#include "base/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace pocket {
namespace {

// Reads "<key>:   <n> kB" from a /proc file.
uint64_t ReadKb(const char* file, const char* key) {
  FILE* f = std::fopen(file, "r");
  if (!f) return 0;
  char line[256];
  uint64_t kb = 0;
  const size_t key_len = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
      unsigned long long v = 0;
      if (std::sscanf(line + key_len + 1, "%llu", &v) == 1) kb = v;
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

}  // namespace

uint64_t CurrentRssBytes() { return ReadKb("/proc/self/status", "VmRSS"); }
uint64_t PeakRssBytes() { return ReadKb("/proc/self/status", "VmHWM"); }
uint64_t AvailableMemoryBytes() { return ReadKb("/proc/meminfo", "MemAvailable"); }

uint64_t LastLevelCacheBytes() {
  for (int name : {_SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long bytes = sysconf(name);
    if (bytes > 0) return static_cast<uint64_t>(bytes);
  }
  return 0;
}

void* AllocateLarge(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  if (rounded < bytes) return nullptr;
  void* p = std::aligned_alloc(align, rounded);
  // Only a hint: with THP off the pages stay 4 KiB and everything still works.
  if (p != nullptr && align == kHuge) ::madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

void FreeLarge(void* p) { std::free(p); }

}  // namespace pocket
