// `pocket ls`: the model store's tags (name:tag, manifest digest prefix, size, when
// imported); --json for scripts. Reads index.json only (registry::Store::List).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct LsFlags {
  std::string store;
  bool json = false;
};

int LsMain(const LsFlags& f) {
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail("ls", root.status());
  auto tags = registry::Store(*root).List();
  if (!tags.ok()) return Fail("ls", tags.status());
  if (f.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : *tags) {
      out.push_back({{"name", t.ref.name},
                     {"tag", t.ref.tag},
                     {"digest", t.manifest_digest},
                     {"size", t.size_bytes},
                     {"modified", t.created}});
    }
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  size_t width = 4;
  for (const auto& t : *tags) width = std::max(width, t.ref.ToString().size());
  std::printf("%-*s  %-12s  %9s  %s\n", static_cast<int>(width), "NAME", "ID", "SIZE", "MODIFIED");
  for (const auto& t : *tags) {
    std::printf("%-*s  %.12s  %9s  %s\n", static_cast<int>(width), t.ref.ToString().c_str(),
                registry::DigestHex(t.manifest_digest).data(),
                // A tag written by another tool (skopeo) carries no size: "-".
                t.size_bytes > 0 ? HumanBytes(t.size_bytes).c_str() : "-", t.created.c_str());
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<LsFlags>();
  app.description(
      "List the models in the store: NAME:TAG, ID (the manifest digest's first 12 hex "
      "digits: equal IDs are the same model), SIZE and when it was imported (UTC).");
  SetExamples(app, {"pocket ls", "pocket ls --json | jq '.[].name'"});
  app.add_flag("--json", f->json, "print one JSON array of {name, tag, digest, size, modified}");
  AddStoreOption(app, &f->store);
  return [f] { return LsMain(*f); };
}

POCKET_COMMAND(ls, "ls", "list the models in the store", Configure);

}  // namespace
}  // namespace pocket::cli
