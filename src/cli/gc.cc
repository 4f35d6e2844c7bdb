// `pocket gc`: removes expired staging tags, blobs no tag references and temp files left by
// killed writes (registry::Store::Gc).
#include <cstdio>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/staging.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

int GcMain(const std::string& store_flag) {
  auto root = StoreRoot(store_flag);
  if (!root.ok()) return Fail("gc", root.status());
  auto now = registry::CurrentUnixSeconds();
  if (!now.ok()) return Fail("gc", now.status());
  registry::GcOptions options;
  options.now_s = *now;
  auto report = registry::Store(*root).Gc(options);
  if (!report.ok()) return Fail("gc", report.status());
  if (!report->expired_tags.empty()) {
    std::string tags;
    for (const std::string& t : report->expired_tags) tags += (tags.empty() ? "" : ", ") + t;
    std::printf("removed %zu expired staging tag(s): %s\n", report->expired_tags.size(),
                tags.c_str());
  }
  if (report->referrers_removed > 0) {
    std::printf("removed %d signature(s) of models no tag uses any more\n",
                report->referrers_removed);
  }
  std::printf("removed %d blob(s) (%s) and %d temp file(s); %d blob(s) in use\n",
              report->blobs_removed, HumanBytes(report->bytes_removed).c_str(),
              report->temp_files_removed, report->blobs_kept);
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto store = std::make_shared<std::string>();
  app.description(
      "Remove the files of the model store that no tag uses (after `pocket rm`, or a tag "
      "moved by `pocket import`) and temp files left by an interrupted import. Waits for "
      "imports in progress. Staging tags (`pocket stage`) whose expiry has passed are "
      "removed first, so their files go too unless another tag uses them; $POCKET_NOW (RFC "
      "3339) overrides the clock.");
  SetExamples(app, {"pocket gc", "pocket rm tiny && pocket gc"});
  AddStoreOption(app, store.get());
  return [store] { return GcMain(*store); };
}

POCKET_COMMAND(gc, "gc", "remove unused files from the model store", Configure);

}  // namespace
}  // namespace pocket::cli
