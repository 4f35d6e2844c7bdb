// Global operator new/delete replacements that count allocations while enabled, so tests
// can assert that a decode step allocates nothing. Kept in its own translation unit so the
// compiler never sees a new and its matching delete inlined together.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "model/model_testutil.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_count{0};

void* Allocate(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_count.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

namespace pocket::model::testing {
void StartCountingAllocations() {
  g_count = 0;
  g_counting = true;
}
int64_t StopCountingAllocations() {
  g_counting = false;
  return g_count.load();
}
}  // namespace pocket::model::testing

void* operator new(size_t n) {
  if (void* p = Allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  if (void* p = Allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return Allocate(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return Allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
