// Invariant checks for bugs (never for untrusted input: decoders return Corruption).
// PK_CHECK aborts with file:line in every build; PK_DCHECK only in debug builds.
#pragma once

namespace pocket::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition);
}  // namespace pocket::internal

#define PK_CHECK(cond)                                                            \
  do {                                                                            \
    if (!(cond)) [[unlikely]] ::pocket::internal::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

#ifdef NDEBUG
#define PK_DCHECK(cond) \
  do {                  \
  } while (0)
#else
#define PK_DCHECK(cond) PK_CHECK(cond)
#endif
