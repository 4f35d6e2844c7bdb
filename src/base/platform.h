// Platform: everything Pocket learns about the machine from the OS, in one injectable
// object, in the spirit of LevelDB's Env: CPU features and the ISA cap, core count, cache
// sizes, physical and available memory. Platform::Default() is what every caller consults
// (the thread pool's default size, the KV cache's memory check, the weight-prefetch choice
// from the cache size, the memory estimate); it is the host, read from the OS once, unless
// a test or the edge emulator installed a device profile with ScopedPlatform, in which case
// the whole engine sees that device instead.
//
//   PlatformProfile phone;  phone.name = "phone"; phone.logical_cores = 4;
//   phone.l3_cache_bytes = 4 << 20; phone.physical_memory_bytes = 6ull << 30;
//   phone.available_memory_bytes = 2ull << 30;
//   Platform device(phone);
//   ScopedPlatform scope(device);   // ThreadPool(0) now has 4 threads, and so on
//
// Thread safety: a Platform is immutable (the host's available memory is read live, which
// is thread-safe); Default() is safe from any thread. ScopedPlatform is not: install and
// remove it while no other thread consults Default() (before loading models, as a test or
// the emulator does).
#pragma once

#include <cstdint>
#include <string>

namespace pocket {

// Instruction-set features this process may use: what the CPU reports and the OS enables
// (x86: CPUID and the XSAVE state the OS turned on; aarch64: NEON is architectural).
struct CpuFeatures {
  bool avx2 = false;         // AVX2 and FMA (Highway's AVX2 target)
  bool avx512 = false;       // AVX-512 F, BW, DQ and VL (Highway's AVX3 target)
  bool avx512_vnni = false;  // AVX512-VNNI (int8 dot products; Q8_0 repacking pays off)
  bool avx512_bf16 = false;
  bool amx_int8 = false;     // AMX-TILE and AMX-INT8 in CPUID; kernels/cpu/amx.cc still asks
                             // the OS for the tile state before using them
  bool neon = false;
};

// The widest instruction set the kernels may use, whatever the CPU has: kNative (no cap)
// or kAvx2, the values of kernels::LimitInstructionSet ("native", "avx2") and of
// `pocket bench --cpu-isa`.
enum class IsaCap : uint8_t { kNative, kAvx2 };

// The facts, as a plain value: what Platform::Host() reads from the OS, or a device
// profile written by hand (tests) or from a profile file (the emulator). Sizes in bytes;
// 0 means unknown.
struct PlatformProfile {
  std::string name = "host";
  std::string arch;  // "x86_64", "aarch64", "wasm32", ...
  CpuFeatures cpu;
  IsaCap isa_cap = IsaCap::kNative;
  int logical_cores = 1;  // threads the machine runs at once (hardware_concurrency)
  uint64_t l2_cache_bytes = 0;  // per core (cpu0's), unified or data
  uint64_t l3_cache_bytes = 0;  // cpu0's; on a VM the host's, shared with other tenants
  uint64_t physical_memory_bytes = 0;
  // Memory that could be allocated now. A profile's figure is fixed; the host's is read
  // from the OS at every call (MemAvailable) and this field holds the value at startup.
  uint64_t available_memory_bytes = 0;
};

class Platform {
 public:
  // An injected platform with fixed facts. logical_cores below 1 counts as 1.
  explicit Platform(PlatformProfile profile);

  // The machine this process runs on, read from the OS on the first call and never again
  // (but for available memory, which is live). Thread-safe.
  static const Platform& Host();
  // The platform in effect: the innermost ScopedPlatform's, else Host().
  static const Platform& Default();

  const PlatformProfile& profile() const { return profile_; }
  const CpuFeatures& cpu() const { return profile_.cpu; }
  IsaCap isa_cap() const { return profile_.isa_cap; }
  int logical_cores() const { return profile_.logical_cores; }
  uint64_t l2_cache_bytes() const { return profile_.l2_cache_bytes; }
  uint64_t l3_cache_bytes() const { return profile_.l3_cache_bytes; }
  // L3, else L2; 0 when unknown. The cache a streamed weight matrix may stay resident in.
  uint64_t last_level_cache_bytes() const {
    return profile_.l3_cache_bytes != 0 ? profile_.l3_cache_bytes : profile_.l2_cache_bytes;
  }
  uint64_t physical_memory_bytes() const { return profile_.physical_memory_bytes; }
  // The host: MemAvailable now; an injected profile: its fixed figure. 0 when unknown.
  uint64_t available_memory_bytes() const;
  // AVX-512 kernels are allowed: the CPU has them and the ISA cap does not forbid them.
  bool allows_avx512() const { return profile_.cpu.avx512 && profile_.isa_cap == IsaCap::kNative; }

 private:
  struct HostTag {};
  Platform(HostTag, PlatformProfile profile);

  PlatformProfile profile_;
  bool live_ = false;  // the host: available memory is read from the OS at every call
};

// Makes `platform` Platform::Default() until destroyed, restoring the previous one then.
// Nests. REQUIRES: `platform` outlives the scope and everything that read it meanwhile
// (a ThreadPool sized from it keeps its size); see the thread-safety note above.
class ScopedPlatform {
 public:
  explicit ScopedPlatform(const Platform& platform);
  ~ScopedPlatform();
  ScopedPlatform(const ScopedPlatform&) = delete;
  ScopedPlatform& operator=(const ScopedPlatform&) = delete;

 private:
  const Platform* previous_;
};

// Reads the host's facts from the OS (what Host() holds). Exposed for tests; reading once is
// Host()'s job.
PlatformProfile ReadHostProfile();

namespace internal {
// "<key>:   <n> kB" from a /proc file (/proc/meminfo, /proc/self/status), in bytes; 0 when
// unknown. Shared with memory.cc.
uint64_t ReadProcKb(const char* file, const char* key);
}  // namespace internal

}  // namespace pocket
