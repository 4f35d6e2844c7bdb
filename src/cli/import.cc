// `pocket import FILE.gguf NAME[:TAG]`: adds a local GGUF file to the model store (until
// `pocket pull` exists, the only way in). The work is registry::Store::Import.
#include <cstdio>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct ImportFlags {
  std::string file, ref, store;
};

int ImportMain(const ImportFlags& f) {
  const std::string cmd = "import";
  auto ref = ParseRefArg(f.ref);
  if (!ref.ok()) return Fail(cmd, ref.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::Store store(*root);
  auto imported = store.Import(f.file, *ref);
  if (!imported.ok()) return Fail(cmd, imported.status());
  std::printf("imported %s as %s (%s, manifest %.19s)%s\n", f.file.c_str(), ref->ToString().c_str(),
              HumanBytes(imported->entry.size_bytes).c_str(),
              imported->entry.manifest_digest.c_str(),
              imported->layer_written ? "" : "; its bytes were already in the store");
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<ImportFlags>();
  app.description(
      "Add a GGUF model file to the model store under NAME[:TAG] (TAG defaults to latest; a "
      "tag already there is moved to the new file). The file is copied in, named by its "
      "SHA-256, so identical files under several tags are stored once. Every model command "
      "then accepts NAME:TAG where it takes a path.");
  SetExamples(app, {"pocket import models/default.gguf tiny",
                    "pocket import SmolLM2-135M-Q4_0.gguf smollm2:135m-q4_0",
                    "pocket run smollm2:135m-q4_0 \"Hi\""});
  app.add_option("file", f->file, "the .gguf file")->required();
  app.add_option("name", f->ref, "NAME[:TAG]")->required();
  AddStoreOption(app, &f->store);
  return [f] { return ImportMain(*f); };
}

POCKET_COMMAND(import, "import", "add a GGUF file to the model store as NAME[:TAG]", Configure);

}  // namespace
}  // namespace pocket::cli
