// `pocket verify [--repair]`: re-hashes every blob of the store and checks every tag;
// --repair removes what does not match and the tags that need it (registry::Store::Verify).
// Exit 0 when the store is (or was made) clean, 1 when problems remain.
#include <cstdio>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct VerifyFlags {
  std::string store;
  bool repair = false;
};

int VerifyMain(const VerifyFlags& f) {
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail("verify", root.status());
  auto report = registry::Store(*root).Verify(f.repair);
  if (!report.ok()) return Fail("verify", report.status());
  const char* verb = report->repaired ? "removed" : "found";
  for (const auto& p : report->bad_blobs) {
    std::printf("bad blob %s: %s%s\n", p.what.c_str(), p.reason.c_str(),
                report->repaired ? " (removed)" : "");
  }
  for (const auto& p : report->broken_tags) {
    std::printf("broken tag %s: %s%s\n", p.what.c_str(), p.reason.c_str(),
                report->repaired ? " (removed)" : "");
  }
  std::printf("checked %d blob(s) (%s): %s\n", report->blobs_checked,
              HumanBytes(report->bytes_checked).c_str(),
              report->clean()
                  ? "all match their digests"
                  : (std::string(verb) + " " + std::to_string(report->bad_blobs.size()) +
                     " bad blob(s), " + std::to_string(report->broken_tags.size()) +
                     " broken tag(s)" + (report->repaired ? "" : "; run `pocket verify --repair`"))
                        .c_str());
  return report->clean() || report->repaired ? 0 : 1;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<VerifyFlags>();
  app.description(
      "Re-hash every file of the model store against its SHA-256 name and check that every "
      "tag's manifest and files are present. Reports what does not match (exit 1); with "
      "--repair removes those files and the tags that point to them (exit 0).");
  SetExamples(app, {"pocket verify", "pocket verify --repair"});
  app.add_flag("--repair", f->repair, "remove corrupt files and the tags that use them");
  AddStoreOption(app, &f->store);
  return [f] { return VerifyMain(*f); };
}

POCKET_COMMAND(verify, "verify", "check every file of the model store against its digest",
               Configure);

}  // namespace
}  // namespace pocket::cli
