// The --store option and size formatting shared by the store commands (see store_flags.h).
#include "cli/store_flags.h"

#include <cstdio>

#include "registry/store.h"

namespace pocket::cli {

void AddStoreOption(CLI::App& app, std::string* store) {
  auto root = registry::DefaultStoreRoot();
  *store = root.ok() ? *root : "";
  app.add_option("--store", *store,
                 "the model store (default: $POCKET_HOME, else $XDG_DATA_HOME/pocket, else "
                 "~/.local/share/pocket)")
      ->capture_default_str();
}

Result<std::string> StoreRoot(const std::string& store) {
  if (!store.empty()) return store;
  return registry::DefaultStoreRoot();
}

Result<registry::ModelRef> ParseRefArg(const std::string& arg) {
  return registry::ParseModelRef(arg);
}

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace pocket::cli
