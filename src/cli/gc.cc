// `pocket gc`: removes blobs no tag references and temp files left by killed writes
// (registry::Store::Gc).
#include <cstdio>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

int GcMain(const std::string& store_flag) {
  auto root = StoreRoot(store_flag);
  if (!root.ok()) return Fail("gc", root.status());
  auto report = registry::Store(*root).Gc();
  if (!report.ok()) return Fail("gc", report.status());
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
      "imports in progress.");
  SetExamples(app, {"pocket gc", "pocket rm tiny && pocket gc"});
  AddStoreOption(app, store.get());
  return [store] { return GcMain(*store); };
}

POCKET_COMMAND(gc, "gc", "remove unused files from the model store", Configure);

}  // namespace
}  // namespace pocket::cli
