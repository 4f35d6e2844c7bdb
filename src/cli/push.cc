// `pocket push NAME[:TAG] [HOST/NAME[:TAG]]`: copies a stored model to an OCI registry
// (registry::Push, docs/registry.md).
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "cli/transfer_flags.h"
#include "registry/push.h"

namespace pocket::cli {
namespace {

struct PushFlags {
  std::string ref, dest, store;
  TransferFlags transfer;
  int64_t chunk_bytes = int64_t{64} << 20;
  bool quiet = false;
};

int PushMain(const PushFlags& f) {
  const std::string cmd = "push";
  auto local = ParseRefArg(f.ref);
  if (!local.ok()) return Fail(cmd, local.status());
  const char* default_host = std::getenv("POCKET_REGISTRY");
  auto dest =
      registry::ParseRemoteRef(f.dest.empty() ? f.ref : f.dest, default_host ? default_host : "");
  if (!dest.ok()) return Fail(cmd, dest.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::PushOptions options;
  auto client = ClientOptionsFrom(f.transfer);
  if (!client.ok()) return Fail(cmd, client.status());
  options.client = *client;
  options.chunk_bytes = f.chunk_bytes;
  if (!f.quiet) options.progress = MakeProgress("push", dest->ToString());
  const registry::Store store(*root);
  auto pushed = registry::Push(store, *local, *dest, options);
  if (!pushed.ok()) return Fail(cmd, pushed.status());
  const std::string signatures =
      pushed->signatures > 0 ? ", " + std::to_string(pushed->signatures) + " signature(s)" : "";
  std::printf("pushed %s to %s (manifest %.19s): %d blob(s) uploaded (%s), %d already there%s\n",
              local->ToString().c_str(), dest->ToString().c_str(), pushed->manifest_digest.c_str(),
              pushed->blobs_uploaded, HumanBytes(pushed->bytes_uploaded).c_str(),
              pushed->blobs_present, signatures.c_str());
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<PushFlags>();
  app.description(
      "Upload a stored model to a registry speaking the OCI distribution spec: blobs the "
      "registry lacks (checked with HEAD) are uploaded, then the manifest, byte for byte, so "
      "the digest is the same on both sides. A rerun uploads nothing twice. The destination "
      "defaults to NAME[:TAG] itself, which then must start with the registry host.");
  SetExamples(app, {"pocket import tiny.gguf 127.0.0.1:5000/team/tiny:v1 && pocket push "
                    "127.0.0.1:5000/team/tiny:v1",
                    "pocket push tiny:v1 registry.example.com/team/tiny:v1"});
  app.add_option("ref", f->ref, "the stored model, NAME[:TAG]")->required();
  app.add_option("dest", f->dest, "HOST[:PORT]/NAME[:TAG] to push to (default: ref)");
  AddStoreOption(app, &f->store);
  AddTransferOptions(app, &f->transfer);
  app.add_option("--chunk-bytes", f->chunk_bytes,
                 "blobs larger than this go up in PATCH chunks of this size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("-q,--quiet", f->quiet, "no progress on stderr");
  return [f] { return PushMain(*f); };
}

POCKET_COMMAND(push, "push", "upload a stored model to an OCI registry", Configure);

}  // namespace
}  // namespace pocket::cli
