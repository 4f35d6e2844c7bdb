// `pocket pull HOST/NAME[:TAG]`: copies a model from an OCI registry into the store,
// resumable and verified (registry::Pull, docs/registry.md). A tag that is an index of
// variants fetches the one that fits this machine (--prefer, --variant, -c; registry/variant.h)
// and prints the choice.
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "cli/transfer_flags.h"
#include "registry/pull.h"

namespace pocket::cli {
namespace {

struct PullFlags {
  std::string ref, store;
  TransferFlags transfer;
  bool quiet = false;
  std::string prefer = "quality", variant;
  int ctx_size = 0;
};

void PrintPulled(const std::string& from, const registry::ModelRef& local,
                 const registry::PullResult& pulled) {
  std::printf(
      "pulled %s as %s (%s, manifest %.19s): %d blob(s) downloaded (%s%s), %d already in the "
      "store\n",
      from.c_str(), local.ToString().c_str(), HumanBytes(pulled.entry.size_bytes).c_str(),
      pulled.entry.manifest_digest.c_str(), pulled.blobs_downloaded,
      HumanBytes(pulled.bytes_downloaded).c_str(),
      pulled.bytes_resumed > 0 ? (", " + HumanBytes(pulled.bytes_resumed) + " resumed").c_str()
                               : "",
      pulled.blobs_present);
}

int PullHfMain(const PullFlags& f) {
  const std::string cmd = "pull";
  auto ref = registry::ParseHfRef(f.ref);
  if (!ref.ok()) return Fail(cmd, ref.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  const char* env = std::getenv("POCKET_HF_ENDPOINT");
  const std::string endpoint = env && *env ? env : "https://huggingface.co";
  registry::PullOptions options;
  auto client = ClientOptionsFrom(f.transfer);
  if (!client.ok()) return Fail(cmd, client.status());
  options.client = *client;
  if (!f.quiet) options.progress = MakeProgress("pull", f.ref);
  registry::Store store(*root);
  auto pulled = registry::PullHf(store, *ref, endpoint, options);
  if (!pulled.ok()) return Fail(cmd, pulled.status());
  PrintPulled(f.ref, ref->local, *pulled);
  return 0;
}

int PullMain(const PullFlags& f) {
  const std::string cmd = "pull";
  if (f.ref.rfind("hf://", 0) == 0) return PullHfMain(f);
  const char* default_host = std::getenv("POCKET_REGISTRY");
  auto ref = registry::ParseRemoteRef(f.ref, default_host ? default_host : "");
  if (!ref.ok()) return Fail(cmd, ref.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::PullOptions options;
  auto client = ClientOptionsFrom(f.transfer);
  if (!client.ok()) return Fail(cmd, client.status());
  options.client = *client;
  auto variants = VariantRequestFor(f.prefer, f.variant, f.ctx_size);
  if (!variants.ok()) return Fail(cmd, variants.status());
  options.variants = std::move(*variants);
  if (!f.quiet) options.progress = MakeProgress("pull", ref->ToString());
  registry::Store store(*root);
  auto pulled = registry::Pull(store, *ref, options);
  if (!pulled.ok()) return Fail(cmd, pulled.status());
  if (!pulled->variant_line.empty()) std::printf("%s\n", pulled->variant_line.c_str());
  PrintPulled(ref->ToString(), ref->local, *pulled);
  if (pulled->signatures > 0) std::printf("with %d signature(s)\n", pulled->signatures);
  for (const std::string& p : pulled->signature_problems) {
    std::fprintf(stderr, "pocket pull: warning: signature not stored: %s\n", p.c_str());
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<PullFlags>();
  app.description(
      "Download a model from a registry speaking the OCI distribution spec (docker-registry, "
      "zot, Harbor, GHCR ...) into the model store, stored under the same reference. Every "
      "blob is sha256-verified while it streams; an interrupted pull (Ctrl-C, kill, a dropped "
      "connection) continues where it stopped when run again; transient failures are retried "
      "with backoff. The tag is written only once every blob is in. Progress goes to stderr: "
      "a bar on a terminal, else JSON lines. http:// is used for localhost/127.x, https:// "
      "otherwise (--insecure for plain http). A tag that is an index of variants "
      "(quantizations, sizes) fetches only the one that fits this machine (memory at the "
      "context, CPU instruction set; --prefer quality|speed, --variant to name one; "
      "$POCKET_MACHINE=memory=SIZE,isa=avx2 overrides the machine's facts) and prints why.");
  SetExamples(app,
              {"pocket pull 127.0.0.1:5000/library/smollm2:q8_0",
               "POCKET_REGISTRY_USER=me POCKET_REGISTRY_PASSWORD=... pocket pull "
               "registry.example.com/team/tiny:v1",
               "pocket run 127.0.0.1:5000/library/smollm2:q8_0 \"Hi\"",
               "pocket pull 127.0.0.1:5000/library/smollm2:latest --prefer speed  # an index of "
               "variants: the smallest that fits",
               "pocket pull 127.0.0.1:5000/library/smollm2:latest --variant Q8_0",
               "POCKET_MACHINE=memory=2G,isa=avx2 pocket pull 127.0.0.1:5000/library/smollm2",
               "POCKET_HF_ENDPOINT=http://mirror.lan:8080 pocket pull "
               "hf://HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf"});
  app.add_option("ref", f->ref,
                 "HOST[:PORT]/NAME[:TAG][@sha256:DIGEST] (HOST may be left out when "
                 "$POCKET_REGISTRY names one), or hf://ORG/REPO/FILE.gguf from "
                 "$POCKET_HF_ENDPOINT (default https://huggingface.co), stored as "
                 "hf.co/org/repo:FILE")
      ->required();
  AddStoreOption(app, &f->store);
  AddTransferOptions(app, &f->transfer);
  app.add_flag("-q,--quiet", f->quiet, "no progress on stderr");
  AddVariantOptions(app, &f->prefer, &f->variant);
  AddCtxSizeOption(app, &f->ctx_size,
                   "when the tag is an index of variants: the context (tokens) the chosen "
                   "variant must fit in memory (0 = the model's, capped at 4096)",
                   0);
  return [f] { return PullMain(*f); };
}

POCKET_COMMAND(pull, "pull", "download a model from an OCI registry into the store", Configure);

}  // namespace
}  // namespace pocket::cli
