// Staging: a checkpoint put in a registry's staging namespace with an expiry, for validation before
// promotion (docs/registry.md, "Staging and expiry"). What lives here is the part without I/O: the
// TTL syntax, RFC 3339 times, the staging namespace's names and the expiry annotation of a
// manifest. Store::Gc (local) and PruneStaging (prune.h, remote) apply it; `pocket stage` writes
// it.
//
// The namespace is a repository component "staging": locally staging/NAME:TAG, remotely
// HOST/NAMESPACE/staging/NAME:TAG (a pulled copy keeps that name). The expiry is the manifest
// annotation io.pocket.staging.expires (RFC 3339 UTC), so it travels with the artifact; it counts
// only under a "staging" component, so the same manifest promoted to a release name (the same
// digest, as signatures need) never expires. Times are Unix seconds (int64) in UTC. Thread safety:
// pure functions, except CurrentUnixSeconds, which reads the environment and the clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "registry/reference.h"

namespace pocket::registry {

// The repository component that makes a name a staging one.
inline constexpr char kStagingComponent[] = "staging";
// The environment variable that overrides the clock of stage, gc and prune (tests, and a "what
// would expire by then" with `registry prune --dry-run`): an RFC 3339 time.
inline constexpr char kNowEnv[] = "POCKET_NOW";
// The longest TTL: ten years (an expiry must stay a 4-digit-year time).
inline constexpr int64_t kMaxTtlSeconds = int64_t{3650} * 86400;

// A Go-style duration of whole units: one or more NUMBER UNIT pairs, units s, m, h and d (24 h),
// e.g. "30m", "24h", "7d", "1h30m". Seconds, > 0 and <= kMaxTtlSeconds. InvalidArgument, one line
// naming `text`, for anything else: empty, no unit ("24"), an unknown unit ("1w", "100ms"), a
// fraction ("1.5h"), a sign, zero, or too long.
Result<int64_t> ParseTtl(std::string_view text);
// "1d2h", "30m", "45s": the shortest spelling ParseTtl reads back; "0s" for <= 0.
std::string FormatTtl(int64_t seconds);

// "2026-12-07T21:00:00Z".
std::string FormatRfc3339(int64_t unix_seconds);
// An RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) ('t'/'z' in lower case
// too; the fraction is dropped). InvalidArgument "<what> '<text>' is not an RFC 3339 time (...)"
// for anything else, out-of-range fields included.
Result<int64_t> ParseRfc3339(std::string_view text, std::string_view what);
// $POCKET_NOW when set (InvalidArgument when it is not RFC 3339), else the system clock.
Result<int64_t> CurrentUnixSeconds();

// True when a '/'-component of `name` other than its last is "staging" (staging/tiny,
// 127.0.0.1:5000/team/staging/tiny; not staging or tiny-staging/x).
bool IsStagingName(std::string_view name);
// staging/NAME:TAG; a name already in a staging namespace is kept. InvalidArgument when the result
// is longer than a name may be.
Result<ModelRef> StagingRef(const ModelRef& ref);

// The annotations `pocket stage` adds to the manifest: kStagingExpiresAnnotation (now + ttl) and
// org.opencontainers.image.created (now).
std::map<std::string, std::string> StagingAnnotations(int64_t now_s, int64_t ttl_s);
// The expiry a manifest's annotations carry: nullopt without one; InvalidArgument when it is not an
// RFC 3339 time.
Result<std::optional<int64_t>> ExpiryOf(const std::map<std::string, std::string>& annotations);
// True when `name` is a staging name and `annotations` carry an expiry at or before now_s. A
// malformed expiry is not expired (nothing is removed on a guess).
bool IsExpiredStaging(std::string_view name, const std::map<std::string, std::string>& annotations,
                      int64_t now_s);

}  // namespace pocket::registry
