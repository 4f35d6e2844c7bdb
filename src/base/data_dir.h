// Where the data Pocket ships with its binary lives at run time: the default model, the
// editor page's assets, anything else the source tree holds and `cmake --install` copies.
// One rule for every caller (the CLI's default model, `pocket collab serve`'s web root,
// `pocket serve`'s chat page): data is named by its path in the source tree (`rel`, e.g.
// "models/default.gguf", "web/collab"), installed at <prefix>/share/pocket/<rel> beside
// <prefix>/bin/pocket, and found relative to the running executable (/proc/self/exe), so
// an install or a build tree works from any working directory.
// Thread safety: the functions read only the file system; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace pocket {

// The directory holding the running executable (the target of /proc/self/exe); "" when
// that link cannot be read.
std::string ExecutableDir();

// <exe_dir>/../share/pocket, lexically normalised: where `cmake --install` puts the data of
// a binary installed as <prefix>/bin/pocket (the top-level CMakeLists.txt's install rules use
// this layout). Computed, not checked: the directory may not exist. "" when `exe_dir` is "".
std::string InstalledDataDir(const std::string& exe_dir = ExecutableDir());

// The path of the shipped data `rel` (a relative path in the source tree), the first that
// exists of
//   1. InstalledDataDir(exe_dir)/<rel>   (an installed binary), then
//   2. <d>/<rel> for d = exe_dir and each of its ancestors, nearest first (a build tree
//      inside the source tree, e.g. build/release/pocket -> ../../<rel>).
// "" when none exists (the caller says what is missing and how to point at it).
std::string FindDataPath(std::string_view rel, const std::string& exe_dir = ExecutableDir());

}  // namespace pocket
