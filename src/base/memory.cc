// Process memory figures from /proc, the Platform's memory and cache facts as free functions,
// and large-buffer allocation.
#include "base/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

#include "base/platform.h"

namespace pocket {

uint64_t CurrentRssBytes() { return internal::ReadProcKb("/proc/self/status", "VmRSS"); }
uint64_t PeakRssBytes() { return internal::ReadProcKb("/proc/self/status", "VmHWM"); }
uint64_t AvailableMemoryBytes() { return Platform::Default().available_memory_bytes(); }
uint64_t LastLevelCacheBytes() { return Platform::Default().last_level_cache_bytes(); }

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
