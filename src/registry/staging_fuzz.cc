// libFuzzer target over the parsers staging and prune apply to untrusted text: the TTL of
// --ttl, RFC 3339 times (a registry's manifest annotation, $POCKET_NOW), and a registry's
// catalog/tags pages and manifest annotations (prune.h). None may abort; a parsed time
// within years 0000-9999 formats and parses back to itself, a parsed TTL too. Seeds:
// testdata/fuzz/staging_fuzz/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/prune.h"
#include "registry/staging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace r = pocket::registry;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ttl = r::ParseTtl(text); ttl.ok()) {
    if (*ttl <= 0 || *ttl > r::kMaxTtlSeconds) std::abort();
    auto again = r::ParseTtl(r::FormatTtl(*ttl));
    if (!again.ok() || *again != *ttl) std::abort();
  }
  if (auto t = r::ParseRfc3339(text, "fuzz"); t.ok()) {
    constexpr int64_t kYear10000 = 253402300800;  // 10000-01-01T00:00:00Z
    if (*t >= 0 && *t < kYear10000) {
      auto again = r::ParseRfc3339(r::FormatRfc3339(*t), "again");
      if (!again.ok() || *again != *t) std::abort();
    }
  }
  for (const char* field : {"repositories", "tags"}) (void)r::ParseNameList(text, field, "fuzz");
  const auto annotations = r::ManifestAnnotations(text);
  (void)r::ExpiryOf(annotations);
  (void)r::IsExpiredStaging("staging/x", annotations, 0);
  return 0;
}
