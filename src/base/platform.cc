// Platform: the host's facts read from Linux (sysfs cache topology, sysconf, /proc/meminfo,
// CPUID) once, injected profiles, and the ScopedPlatform override of Default().
#include "base/platform.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace pocket {
namespace internal {

uint64_t ReadProcKb(const char* file, const char* key) {
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

}  // namespace internal

namespace {

std::atomic<const Platform*> g_override{nullptr};

// cpu0's data/unified caches by level from the kernel's cache topology, else glibc's sysconf.
// The kernel first: on AMD EPYC guests glibc's sysconf sums the L3 of every CCX the CPUID
// leaves describe (320 MiB where the kernel and lscpu say 32 MiB), which made a 1B model
// look cache-resident.
void ReadCaches(PlatformProfile* p) {
  for (int index = 0; index < 8; ++index) {
    const std::string dir =
        "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    unsigned long long level = 0, size = 0;
    char unit = 0, type[32] = {};
    FILE* f = std::fopen((dir + "level").c_str(), "r");
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
    if (level == 2) p->l2_cache_bytes = size * scale;
    if (level == 3) p->l3_cache_bytes = size * scale;
  }
  if (p->l2_cache_bytes != 0 || p->l3_cache_bytes != 0) return;
#if defined(_SC_LEVEL3_CACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l3 > 0) p->l3_cache_bytes = static_cast<uint64_t>(l3);
  if (l2 > 0) p->l2_cache_bytes = static_cast<uint64_t>(l2);
#endif
}

CpuFeatures ReadCpuFeatures() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (f.avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512_bf16 = (a >> 5) & 1;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.amx_int8 = ((d >> 24) & 1) && ((d >> 25) & 1);  // AMX-TILE, AMX-INT8
  }
#elif defined(__aarch64__)
  f.neon = true;
#endif
  return f;
}

const char* ArchName() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__i386__)
  return "x86";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__wasm32__)
  return "wasm32";
#else
  return "unknown";
#endif
}

}  // namespace

PlatformProfile ReadHostProfile() {
  PlatformProfile p;
  p.name = "host";
  p.arch = ArchName();
  p.cpu = ReadCpuFeatures();
  p.logical_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ReadCaches(&p);
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    p.physical_memory_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
  }
  p.available_memory_bytes = internal::ReadProcKb("/proc/meminfo", "MemAvailable");
  return p;
}

Platform::Platform(PlatformProfile profile) : profile_(std::move(profile)) {
  profile_.logical_cores = std::max(1, profile_.logical_cores);
}

Platform::Platform(HostTag, PlatformProfile profile) : Platform(std::move(profile)) {
  live_ = true;
}

const Platform& Platform::Host() {
  static const Platform* const host = new Platform(HostTag{}, ReadHostProfile());
  return *host;
}

const Platform& Platform::Default() {
  const Platform* p = g_override.load(std::memory_order_acquire);
  return p != nullptr ? *p : Host();
}

uint64_t Platform::available_memory_bytes() const {
  return live_ ? internal::ReadProcKb("/proc/meminfo", "MemAvailable")
               : profile_.available_memory_bytes;
}

ScopedPlatform::ScopedPlatform(const Platform& platform)
    : previous_(g_override.exchange(&platform, std::memory_order_acq_rel)) {}

ScopedPlatform::~ScopedPlatform() { g_override.store(previous_, std::memory_order_release); }

}  // namespace pocket
