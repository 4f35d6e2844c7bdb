// `pocket sign NAME[:TAG] --key KEY`: signs a stored model (an ed25519 signature artifact
// referring to its manifest, kept in the store and pushed with it), and `pocket sign
// --generate-key KEY` to make the keypair (registry/signature.h, docs/registry.md).
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/signature.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct SignFlags {
  std::string ref, key, generate_key, name, store;
};

std::string NowRfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int GenerateKeyMain(const SignFlags& f) {
  const std::string cmd = "sign";
  const std::string name =
      f.name.empty() ? std::filesystem::path(f.generate_key).filename().string() : f.name;
  if (!registry::IsValidKeyName(name)) {
    return Fail(cmd, Status::InvalidArgument(
                         "'" + name +
                         "' is not a valid key name ([A-Za-z0-9][A-Za-z0-9._@-]{0,63}); give "
                         "one with --name"));
  }
  const registry::SecretKey key = registry::GenerateSecretKey();
  if (Status s = registry::WriteKeyPair(f.generate_key, name, key); !s.ok()) return Fail(cmd, s);
  std::printf(
      "wrote secret key %s (mode 0600) and public key %s.pub: %s %s (key %s); append the .pub "
      "line to a trust file to trust it\n",
      f.generate_key.c_str(), f.generate_key.c_str(), name.c_str(), key.Public().ToString().c_str(),
      key.Public().KeyId().c_str());
  return 0;
}

int SignMain(const SignFlags& f) {
  const std::string cmd = "sign";
  if (!f.generate_key.empty()) {
    if (!f.ref.empty() || !f.key.empty()) {
      return Fail(cmd, Status::InvalidArgument("--generate-key makes a keypair; sign with "
                                               "`pocket sign NAME:TAG --key KEY` separately"));
    }
    return GenerateKeyMain(f);
  }
  if (f.ref.empty() || f.key.empty()) {
    return Fail(cmd, Status::InvalidArgument(
                         "give the model and the key (`pocket sign NAME:TAG --key KEY`), or "
                         "--generate-key KEY to make a keypair"));
  }
  if (!f.name.empty()) {
    return Fail(cmd, Status::InvalidArgument("--name goes with --generate-key"));
  }
  auto ref = ParseRefArg(f.ref);
  if (!ref.ok()) return Fail(cmd, ref.status());
  auto key = registry::ReadSecretKey(f.key);
  if (!key.ok()) return Fail(cmd, key.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::Store store(*root);
  auto entry = store.Find(*ref);
  if (!entry.ok()) return Fail(cmd, entry.status());
  auto manifest = store.ReadBlob(entry->manifest_digest, int64_t{4} << 20);
  if (!manifest.ok()) return Fail(cmd, manifest.status());
  auto parsed = registry::ParseManifest(*manifest, "manifest " + entry->manifest_digest);
  const registry::Descriptor subject{
      parsed.ok() ? parsed->media_type : std::string(registry::kOciManifestType),
      entry->manifest_digest,
      static_cast<int64_t>(manifest->size()),
      "",
      {},
      ""};
  const registry::SignatureArtifact sig = registry::MakeSignature(*key, subject, NowRfc3339());
  auto stored = store.AddReferrer(sig.manifest_json, {sig.config, sig.payload});
  if (!stored.ok()) return Fail(cmd, stored.status());
  std::printf("signed %s (manifest %.19s...) with key %s: signature %.19s...\n",
              ref->ToString().c_str(), entry->manifest_digest.c_str(),
              key->Public().KeyId().c_str(), stored->digest.c_str());
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<SignFlags>();
  app.description(
      "Sign a stored model with an ed25519 key (libsodium): a detached signature over a small "
      "payload naming the model's manifest digest, kept in the store as an OCI referrer "
      "artifact (application/vnd.pocket.signature.v1) whose subject is the manifest. `pocket "
      "push` pushes it with the model, `pocket pull` fetches it, `pocket promote --trust` "
      "requires it, `pocket verify --signatures` reports it. --generate-key KEY writes a new "
      "secret key to KEY (mode 0600) and its public key, as a trust-file line, to KEY.pub.");
  SetExamples(app, {"pocket sign --generate-key ~/.config/pocket/ci.key --name ci",
                    "cat ~/.config/pocket/ci.key.pub >> trusted-keys",
                    "pocket sign team/tiny:rc1 --key ~/.config/pocket/ci.key",
                    "pocket promote team/tiny:rc1 --to team/tiny:release --trust trusted-keys"});
  app.add_option("ref", f->ref, "the stored model to sign, NAME[:TAG]");
  app.add_option("--key", f->key,
                 "secret key file (from --generate-key; refused when others can read it)");
  app.add_option("--generate-key", f->generate_key,
                 "write a new keypair: the secret key to this file (mode 0600), the public key "
                 "to FILE.pub; existing files are never overwritten");
  app.add_option("--name", f->name,
                 "with --generate-key: the key's name in FILE.pub (default: FILE's base name)");
  AddStoreOption(app, &f->store);
  return [f] { return SignMain(*f); };
}

POCKET_COMMAND(sign, "sign", "sign a stored model (ed25519), or make a signing key", Configure);

}  // namespace
}  // namespace pocket::cli
