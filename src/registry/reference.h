// Model references: NAME[:TAG] as users type them (`smollm2:135m-q4_0`, `team/tiny`), parsed
// and validated before any of it touches a path. A name is what the store files a model
// under and, once pull exists, a repository path of an OCI registry, so it follows the OCI
// distribution spec's repository grammar, minus upper case: segments separated by '/', each
// of [a-z0-9] runs joined by '.', '_', '__', or '-'s; the first segment may also be a
// registry host with a port ("127.0.0.1:5000/team/tiny", Docker's reference grammar, so a
// pulled model is stored under the reference it was pulled by). That grammar excludes
// absolute paths, empty segments, '.' and '..'. A tag follows the OCI tag grammar
// [A-Za-z0-9_][A-Za-z0-9._-]{0,127}; it defaults to "latest".
// Called by the store, the resolver of model arguments and the registry commands.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace pocket::registry {

inline constexpr char kDefaultTag[] = "latest";
inline constexpr size_t kMaxNameBytes = 255;  // distribution's repository name limit

struct ModelRef {
  std::string name;
  std::string tag = kDefaultTag;
  // "name:tag".
  std::string ToString() const { return name + ":" + tag; }
  bool operator==(const ModelRef&) const = default;
};

// Parses NAME[:TAG]: the tag follows the last ':' that comes after the last '/'.
// InvalidArgument naming `text` and what is wrong ("'../../x' is not a valid model name:
// ..."); never touches the file system.
Result<ModelRef> ParseModelRef(std::string_view text);

// True when `name` / `tag` follow the grammars above.
bool IsValidName(std::string_view name);
bool IsValidTag(std::string_view tag);

}  // namespace pocket::registry
