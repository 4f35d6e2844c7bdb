// The run-time lookup of data shipped with the binary (see data_dir.h): the executable's
// directory from /proc/self/exe, then the install layout, then the source tree above a
// build directory. Only std::filesystem queries; nothing is created or opened.
#include "base/data_dir.h"

#include <filesystem>

namespace pocket {

namespace fs = std::filesystem;

std::string ExecutableDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec || exe.empty()) return "";
  return exe.parent_path().string();
}

std::string InstalledDataDir(const std::string& exe_dir) {
  if (exe_dir.empty()) return "";
  // bin/ and share/ are fixed (not CMAKE_INSTALL_BINDIR/DATADIR) so that this relation holds
  // for every prefix without baking configure-time paths into the binary.
  return (fs::path(exe_dir) / ".." / "share" / "pocket").lexically_normal().string();
}

std::string FindDataPath(std::string_view rel, const std::string& exe_dir) {
  if (exe_dir.empty() || rel.empty()) return "";
  std::error_code ec;
  const fs::path installed = fs::path(InstalledDataDir(exe_dir)) / rel;
  if (fs::exists(installed, ec)) return installed.string();
  // The build tree: build/<preset>/pocket finds <source>/<rel> two levels up. Walking to the
  // root (rather than exactly two levels) keeps custom build folders working, as before.
  for (fs::path dir = exe_dir; !dir.empty(); dir = dir.parent_path()) {
    const fs::path candidate = dir / rel;
    if (fs::exists(candidate, ec)) return candidate.string();
    if (dir == dir.root_path()) break;
  }
  return "";
}

}  // namespace pocket
