// `pocket promote NAME:TAG --to NAME:TAG --trust FILE [--remote]`: moves a tag to the model
// another tag names, in the store or in a registry, only when that model carries a valid
// signature by a trusted key (registry::PromoteLocal / PromoteRemote, docs/registry.md).
#include "registry/promote.h"

#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "cli/transfer_flags.h"

namespace pocket::cli {
namespace {

struct PromoteFlags {
  std::string from, to, trust, store;
  bool remote = false;
  TransferFlags transfer;
};

void PrintPromoted(const std::string& from, const std::string& to,
                   const registry::PromoteResult& r) {
  std::printf("promoted %s to %s (manifest %.19s...), signed by %s (key %s)\n", from.c_str(),
              to.c_str(), r.manifest_digest.c_str(), r.signed_by.signer.c_str(),
              r.signed_by.key_id.c_str());
}

int PromoteLocalMain(const PromoteFlags& f, const registry::TrustFile& trust) {
  const std::string cmd = "promote";
  auto from = ParseRefArg(f.from);
  if (!from.ok()) return Fail(cmd, from.status());
  registry::ModelRef to;
  if (!f.to.empty() && f.to[0] == ':') {
    to = {from->name, f.to.substr(1)};
    if (!registry::IsValidTag(to.tag)) {
      return Fail(cmd, Status::InvalidArgument("'" + f.to + "' is not a valid tag"));
    }
  } else {
    auto parsed = ParseRefArg(f.to);
    if (!parsed.ok()) return Fail(cmd, parsed.status());
    to = *parsed;
  }
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::Store store(*root);
  auto promoted = registry::PromoteLocal(store, *from, to, trust);
  if (!promoted.ok()) return Fail(cmd, promoted.status());
  PrintPromoted(from->ToString(), to.ToString(), *promoted);
  return 0;
}

int PromoteRemoteMain(const PromoteFlags& f, const registry::TrustFile& trust) {
  const std::string cmd = "promote";
  const char* env = std::getenv("POCKET_REGISTRY");
  const std::string default_host = env ? env : "";
  auto from = registry::ParseRemoteRef(f.from, default_host);
  if (!from.ok()) return Fail(cmd, from.status());
  registry::RemoteRef to = *from;
  if (!f.to.empty() && f.to[0] == ':') {
    to.tag = f.to.substr(1);
    to.digest.clear();
    if (!registry::IsValidTag(to.tag)) {
      return Fail(cmd, Status::InvalidArgument("'" + f.to + "' is not a valid tag"));
    }
  } else {
    auto parsed = registry::ParseRemoteRef(f.to, default_host);
    if (!parsed.ok()) return Fail(cmd, parsed.status());
    to = *parsed;
  }
  auto client = ClientOptionsFrom(f.transfer);
  if (!client.ok()) return Fail(cmd, client.status());
  auto promoted = registry::PromoteRemote(*from, to, trust, *client);
  if (!promoted.ok()) return Fail(cmd, promoted.status());
  PrintPromoted(from->ToString(), to.ToString(), *promoted);
  return 0;
}

int PromoteMain(const PromoteFlags& f) {
  auto trust = registry::ReadTrustFile(f.trust);
  if (!trust.ok()) return Fail("promote", trust.status());
  return f.remote ? PromoteRemoteMain(f, *trust) : PromoteLocalMain(f, *trust);
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<PromoteFlags>();
  app.description(
      "Point a tag at the model another tag names (a release gate): only when that model "
      "carries a valid signature (`pocket sign`) by a key listed in the trust file; otherwise "
      "refused with one line saying why (no signature, signed only by untrusted keys, bad "
      "signature) and nothing changes. Locally the store's index moves; with --remote the "
      "registry gets the same manifest under the new tag (to another repository of the same "
      "registry, blobs are mounted and the signatures copied). The trust file lists one key a "
      "line, 'NAME ed25519:BASE64', as in the .pub files `pocket sign --generate-key` writes; "
      "'#' starts a comment line.");
  SetExamples(app, {"pocket promote team/tiny:rc1 --to team/tiny:release --trust trusted-keys",
                    "pocket promote tiny:rc1 --to :release --trust trusted-keys",
                    "pocket promote --remote 127.0.0.1:5000/team/tiny:rc1 --to :release --trust "
                    "trusted-keys"});
  app.add_option("from", f->from,
                 "the model to promote: NAME[:TAG] in the store, or with --remote "
                 "HOST/NAME[:TAG][@sha256:DIGEST]")
      ->required();
  app.add_option("--to", f->to,
                 "the tag to point at it: NAME[:TAG] (with --remote HOST/NAME[:TAG]), or :TAG "
                 "for another tag of the same name")
      ->required();
  app.add_option("--trust", f->trust, "trust file: the keys whose signatures allow promotion")
      ->required();
  app.add_flag("--remote", f->remote,
               "promote in the registry named by the references instead of the local store");
  AddStoreOption(app, &f->store);
  AddTransferOptions(app, &f->transfer);
  return [f] { return PromoteMain(*f); };
}

POCKET_COMMAND(promote, "promote", "move a tag to a model only if a trusted key signed it",
               Configure);

}  // namespace
}  // namespace pocket::cli
