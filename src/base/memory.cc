#include "base/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

namespace pocket {
namespace {

// Reads "<key>:   <n> kB" from a /proc file.
uint64_t ReadKb(const char *file, const char *key) {
  FILE *f = std::fopen(file, "r");
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
  // The kernel's cache topology first: on AMD EPYC guests glibc's sysconf sums
  // the L3 of every CCX the CPUID leaves describe (320 MiB where the kernel and
  // lscpu say 32 MiB), which made a 1B model look cache-resident. sysconf stays
  // the fallback.
  uint64_t best_level = 0, best_bytes = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir =
        "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    unsigned long long level = 0, size = 0;
    char unit = 0, type[32] = {};
    FILE *f = std::fopen((dir + "level").c_str(), "r");
    if (!f) break;
    const bool have_level = std::fscanf(f, "%llu", &level) == 1;
    std::fclose(f);
    if (!have_level) continue;
    if ((f = std::fopen((dir + "type").c_str(), "r"))) {
      if (std::fscanf(f, "%31s", type) != 1) type[0] = 0;
      std::fclose(f);
    }
    if (std::strcmp(type, "Instruction") == 0) continue;
    if (!(f = std::fopen((dir + "size").c_str(), "r"))) continue;
    const int fields = std::fscanf(f, "%llu%c", &size, &unit);
    std::fclose(f);
    if (fields < 1 || size == 0) continue;
    const uint64_t scale = unit == 'K'   ? 1024
                           : unit == 'M' ? (1u << 20)
                           : unit == 'G' ? (1u << 30)
                                         : 1;
    if (level > best_level) {
      best_level = level;
      best_bytes = size * scale;
    }
  }
  if (best_bytes > 0) return best_bytes;
  for (int name : {_SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long bytes = sysconf(name);
    if (bytes > 0) return static_cast<uint64_t>(bytes);
  }
  return 0;
}

void *AllocateLarge(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  if (rounded < bytes) return nullptr;
  void *p = std::aligned_alloc(align, rounded);
  // Only a hint: with THP off the pages stay 4 KiB and everything still works.
  if (p != nullptr && align == kHuge) ::madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

void FreeLarge(void *p) { std::free(p); }

}  // namespace pocket
