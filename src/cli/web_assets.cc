// FindWebPage: the browser pages' folder relative to the binary, in a build tree or an
// install (the install half is base/data_dir.h's shared layout).
#include "cli/web_assets.h"

#include <filesystem>
#include <system_error>

#include "base/data_dir.h"

namespace pocket::cli {

Result<std::string> FindWebPage(std::string_view page) {
  const std::string exe_dir = ExecutableDir();
  if (exe_dir.empty()) return Status::NotFound("cannot find the binary's path to look for web pages");
  const std::filesystem::path rel = std::filesystem::path("web") / page;
  // The build lays pages out at <build>/share/pocket/web (web/CMakeLists.txt): unlike the
  // source tree's web/<page>, that copy holds the vendored modules.
  const std::filesystem::path build = std::filesystem::path(exe_dir) / "share/pocket" / rel;
  const std::filesystem::path install = std::filesystem::path(InstalledDataDir(exe_dir)) / rel;
  std::error_code ec;
  for (const auto& dir : {build, install}) {
    if (std::filesystem::is_regular_file(dir / "index.html", ec)) return dir.string();
  }
  return Status::NotFound("no " + std::string(page) + " page beside the binary (looked in " +
                          build.string() + " and " + install.string() + ")");
}

}  // namespace pocket::cli
