// `pocket stage FILE.gguf [NAME[:TAG]] --ttl 24h [--to REGISTRY[/NAMESPACE]]`: imports a checkpoint
// as staging/NAME:TAG with an expiry in its manifest, and with --to pushes it to
// REGISTRY/NAMESPACE/staging/NAME:TAG (registry/staging.h, docs/registry.md "Staging and expiry").
// `pocket gc` and `pocket registry prune` remove it once expired.
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/sha256.h"
#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "cli/transfer_flags.h"
#include "registry/prune.h"
#include "registry/push.h"
#include "registry/staging.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct StageFlags {
  std::string file, ref, ttl = "24h", to, store;
  TransferFlags transfer;
  bool quiet = false;
};

// The file's SHA-256 hex, for the default tag: the checkpoint's own identity, so staging the same
// file again refreshes its tag and another checkpoint gets another one. (One more read of the file
// than a plain import; the page cache usually serves the import's.)
Result<std::string> FileSha256Hex(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  Sha256 sha;
  std::string buf(1 << 20, '\0');
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return Status::IOError("cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  const auto d = sha.Finish();
  return ToHex(d.data(), d.size());
}

// NAME from the file name: "out/Tiny_v2.ckpt.gguf" -> "tiny_v2.ckpt"; characters the name grammar
// refuses become '-'.
Result<std::string> NameFromFile(const std::string& file) {
  std::string stem = std::filesystem::path(file).filename().string();
  if (stem.size() > 5 && stem.substr(stem.size() - 5) == ".gguf") stem.resize(stem.size() - 5);
  std::string name;
  for (char c : stem) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    name += (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '.' || l == '_' ? l : '-';
  }
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.back()))) name.pop_back();
  if (!registry::IsValidName(name)) {
    return Status::InvalidArgument("cannot make a model name of '" + file +
                                   "': give NAME[:TAG] after the file");
  }
  return name;
}

int StageMain(const StageFlags& f) {
  const std::string cmd = "stage";
  auto ttl = registry::ParseTtl(f.ttl);
  if (!ttl.ok()) return Fail(cmd, ttl.status());
  auto now = registry::CurrentUnixSeconds();
  if (!now.ok()) return Fail(cmd, now.status());
  std::optional<registry::RegistryNamespace> to;
  if (!f.to.empty()) {
    const char* default_host = std::getenv("POCKET_REGISTRY");
    auto ns = registry::ParseRegistryNamespace(f.to, default_host ? default_host : "");
    if (!ns.ok()) return Fail(cmd, Status::InvalidArgument("--to: " + ns.status().message()));
    to = *ns;
  }
  registry::ModelRef ref;
  if (f.ref.empty()) {
    auto name = NameFromFile(f.file);
    if (!name.ok()) return Fail(cmd, name.status());
    ref.name = *name;
  } else {
    auto parsed = ParseRefArg(f.ref);
    if (!parsed.ok()) return Fail(cmd, parsed.status());
    ref = *parsed;
  }
  // No TAG given: the first 12 hex digits of the file's SHA-256.
  const size_t colon = f.ref.rfind(':');
  if (f.ref.empty() || colon == std::string::npos ||
      (f.ref.rfind('/') != std::string::npos && colon < f.ref.rfind('/'))) {
    auto hex = FileSha256Hex(f.file);
    if (!hex.ok()) return Fail(cmd, hex.status());
    ref.tag = hex->substr(0, 12);
  }
  auto staged_ref = registry::StagingRef(ref);
  if (!staged_ref.ok()) return Fail(cmd, staged_ref.status());
  // The destination and the registry options are checked before anything is written.
  std::optional<registry::RemoteRef> dest;
  registry::PushOptions push;
  if (to) {
    const std::string ns_prefix = to->name_space.empty() ? "" : to->name_space + "/";
    auto remote = registry::ParseRemoteRef(to->host + "/" + ns_prefix + staged_ref->ToString());
    if (!remote.ok()) {
      return Fail(cmd, Status::InvalidArgument("--to: " + remote.status().message()));
    }
    dest = *remote;
    auto client = ClientOptionsFrom(f.transfer);
    if (!client.ok()) return Fail(cmd, client.status());
    push.client = *client;
  }
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::Store store(*root);
  registry::ImportOptions options;
  options.manifest_annotations = registry::StagingAnnotations(*now, *ttl);
  auto imported = store.Import(f.file, *staged_ref, options);
  if (!imported.ok()) return Fail(cmd, imported.status());
  std::printf("staged %s as %s (%s, manifest %.19s), expires %s (in %s)\n", f.file.c_str(),
              staged_ref->ToString().c_str(), HumanBytes(imported->entry.size_bytes).c_str(),
              imported->entry.manifest_digest.c_str(), registry::FormatRfc3339(*now + *ttl).c_str(),
              registry::FormatTtl(*ttl).c_str());
  if (!dest) return 0;

  if (!f.quiet) push.progress = MakeProgress("push", dest->ToString());
  auto pushed = registry::Push(store, *staged_ref, *dest, push);
  if (!pushed.ok()) return Fail(cmd, pushed.status());
  std::printf("pushed to %s: %d blob(s) uploaded (%s), %d already there\n",
              dest->ToString().c_str(), pushed->blobs_uploaded,
              HumanBytes(pushed->bytes_uploaded).c_str(), pushed->blobs_present);
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<StageFlags>();
  app.description(
      "Put a checkpoint in the staging namespace with an expiry: it is imported as "
      "staging/NAME:TAG, its manifest carrying io.pocket.staging.expires (now + --ttl, RFC 3339 "
      "UTC); with --to it is also pushed to REGISTRY[/NAMESPACE]/staging/NAME:TAG. `pocket gc` "
      "removes expired staging tags of the store, `pocket registry prune` those of a registry. "
      "NAME defaults to the file's name without .gguf, TAG to the first 12 hex digits of the "
      "file's SHA-256. The GGUF bytes are stored once, shared with any other tag of the same file. "
      "$POCKET_NOW (RFC 3339) overrides the clock.");
  SetExamples(app, {"pocket stage out/tiny.gguf --ttl 24h",
                    "pocket stage out/tiny.gguf tiny:run7 --ttl 7d --to 127.0.0.1:5000/team",
                    "pocket registry prune 127.0.0.1:5000/team"});
  app.add_option("file", f->file, "the checkpoint, a .gguf file")->required();
  app.add_option("name", f->ref,
                 "NAME[:TAG] under staging/ (default: the file's name, TAG its SHA-256's first 12 "
                 "hex digits)");
  app.add_option("--ttl", f->ttl,
                 "how long until it expires: whole numbers of s, m, h, d (30m, 24h, 7d, 1h30m; at "
                 "most 3650d)")
      ->capture_default_str();
  app.add_option("--to", f->to,
                 "also push it to this REGISTRY[/NAMESPACE], as NAMESPACE/staging/NAME:TAG "
                 "(without a HOST, $POCKET_REGISTRY names the registry)");
  AddStoreOption(app, &f->store);
  AddTransferOptions(app, &f->transfer);
  app.add_flag("-q,--quiet", f->quiet, "no push progress on stderr");
  return [f] { return StageMain(*f); };
}

POCKET_COMMAND(stage, "stage", "put a checkpoint in the staging namespace with an expiry",
               Configure);

}  // namespace
}  // namespace pocket::cli
