// FindWebPage: the browser pages' folder relative to the binary, in a build tree or an
// install. One small function so the lookup can move to the shared install-data lookup.
#include "cli/web_assets.h"

#include <filesystem>
#include <system_error>

namespace pocket::cli {

Result<std::string> FindWebPage(std::string_view page) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Status::NotFound("cannot find the binary's path to look for web pages");
  const std::filesystem::path rel = std::filesystem::path("share/pocket/web") / page;
  const std::filesystem::path build = exe.parent_path() / rel;
  const std::filesystem::path install = (exe.parent_path().parent_path() / rel);
  for (const auto& dir : {build, install}) {
    if (std::filesystem::is_regular_file(dir / "index.html", ec)) return dir.string();
  }
  return Status::NotFound("no " + std::string(page) + " page beside the binary (looked in " +
                          build.string() + " and " + install.lexically_normal().string() + ")");
}

}  // namespace pocket::cli
