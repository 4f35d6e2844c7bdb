// `pocket rm NAME[:TAG]...`: drops tags from the store; their blobs stay until `pocket gc`
// (another tag may share them).
#include <cstdio>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct RmFlags {
  std::vector<std::string> refs;
  std::string store;
};

int RmMain(const RmFlags& f) {
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail("rm", root.status());
  registry::Store store(*root);
  // Every argument is checked before anything is removed.
  std::vector<registry::ModelRef> refs;
  for (const std::string& arg : f.refs) {
    auto ref = ParseRefArg(arg);
    if (!ref.ok()) return Fail("rm", ref.status());
    refs.push_back(*ref);
  }
  for (const auto& ref : refs) {
    if (Status s = store.Remove(ref); !s.ok()) return Fail("rm", s);
    std::printf("removed %s\n", ref.ToString().c_str());
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<RmFlags>();
  app.description(
      "Remove tags from the model store. The files they named stay until `pocket gc` (another "
      "tag may share them).");
  SetExamples(app, {"pocket rm smollm2:135m-q4_0", "pocket rm tiny && pocket gc"});
  app.add_option("names", f->refs, "NAME[:TAG] ...")->required();
  AddStoreOption(app, &f->store);
  return [f] { return RmMain(*f); };
}

POCKET_COMMAND(rm, "rm", "remove a model's tag from the store", Configure);

}  // namespace
}  // namespace pocket::cli
