// `pocket verify [--repair]`: re-hashes every blob of the store and checks every tag;
// --repair removes what does not match and the tags that need it (registry::Store::Verify).
// Exit 0 when the store is (or was made) clean, 1 when problems remain.
// `pocket verify --signatures [REF...] [--trust FILE] [--remote]`: who signed each tag and
// whether the signatures are valid (registry/promote.h); exit 1 when a signature is bad or,
// with --trust, when a tag has no valid signature by a trusted key.
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "cli/transfer_flags.h"
#include "registry/promote.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct VerifyFlags {
  std::string store;
  bool repair = false;
  bool signatures = false, remote = false;
  std::string trust;
  std::vector<std::string> refs;
  TransferFlags transfer;
};

// One line per signature of `what` (or "unsigned"); returns whether `what` passes: no bad
// signature, and with a trust file at least one trusted one.
bool PrintSignatures(const std::string& what, const std::string& digest,
                     const std::vector<registry::SignatureCheck>& checks,
                     const std::vector<std::string>& skipped, const registry::TrustFile* trust) {
  bool ok = true, trusted = false;
  if (checks.empty() && skipped.empty()) {
    std::printf("%s  %.19s...  unsigned\n", what.c_str(), digest.c_str());
  }
  for (const registry::SignatureCheck& c : checks) {
    const std::string who = c.key_id.empty() ? std::string("unknown key")
                            : !c.signer.empty()
                                ? c.signer + " (key " + c.key_id + ")"
                                : "key " + c.key_id + (trust ? " (not trusted)" : "");
    if (c.valid) {
      std::printf("%s  %.19s...  signed by %s%s: valid\n", what.c_str(), digest.c_str(),
                  who.c_str(), c.created.empty() ? "" : (" at " + c.created).c_str());
      trusted = trusted || c.trusted();
    } else {
      std::printf("%s  %.19s...  signature %.19s... by %s: INVALID: %s\n", what.c_str(),
                  digest.c_str(), c.digest.c_str(), who.c_str(), c.problem.c_str());
      ok = false;
    }
  }
  for (const std::string& s : skipped) {
    std::printf("%s  %.19s...  INVALID: %s\n", what.c_str(), digest.c_str(), s.c_str());
    ok = false;
  }
  return ok && (trust == nullptr || trusted);
}

int VerifySignaturesMain(const VerifyFlags& f) {
  const std::string cmd = "verify";
  std::optional<registry::TrustFile> trust;
  if (!f.trust.empty()) {
    auto t = registry::ReadTrustFile(f.trust);
    if (!t.ok()) return Fail(cmd, t.status());
    trust = std::move(t).value();
  }
  const registry::TrustFile* trust_ptr = trust ? &*trust : nullptr;
  int failed = 0;
  if (f.remote) {
    if (f.refs.empty()) {
      return Fail(cmd, Status::InvalidArgument("--remote needs the references to check"));
    }
    const char* env = std::getenv("POCKET_REGISTRY");
    auto client = ClientOptionsFrom(f.transfer);
    if (!client.ok()) return Fail(cmd, client.status());
    for (const std::string& text : f.refs) {
      auto ref = registry::ParseRemoteRef(text, env ? env : "");
      if (!ref.ok()) return Fail(cmd, ref.status());
      auto report = registry::CheckRemoteSignatures(*ref, trust_ptr, *client);
      if (!report.ok()) return Fail(cmd, report.status());
      if (!PrintSignatures(ref->ToString(), report->manifest_digest, report->checks,
                           report->skipped, trust_ptr)) {
        ++failed;
      }
    }
  } else {
    auto root = StoreRoot(f.store);
    if (!root.ok()) return Fail(cmd, root.status());
    const registry::Store store(*root);
    std::vector<registry::TagEntry> entries;
    if (f.refs.empty()) {
      auto all = store.List();
      if (!all.ok()) return Fail(cmd, all.status());
      entries = std::move(all).value();
    }
    for (const std::string& text : f.refs) {
      auto ref = ParseRefArg(text);
      if (!ref.ok()) return Fail(cmd, ref.status());
      auto entry = store.Find(*ref);
      if (!entry.ok()) return Fail(cmd, entry.status());
      entries.push_back(*entry);
    }
    for (const registry::TagEntry& e : entries) {
      auto checks = registry::CheckStoredSignatures(store, e.manifest_digest, trust_ptr);
      if (!checks.ok()) return Fail(cmd, checks.status());
      if (!PrintSignatures(e.ref.ToString(), e.manifest_digest, *checks, {}, trust_ptr)) ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}

int VerifyMain(const VerifyFlags& f) {
  if (f.signatures) return VerifySignaturesMain(f);
  if (!f.refs.empty() || !f.trust.empty() || f.remote) {
    return Fail("verify",
                Status::InvalidArgument("references, --trust and --remote go with --signatures"));
  }
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
      "--repair removes those files and the tags that point to them (exit 0). With "
      "--signatures, reports instead who signed each tag (`pocket sign`) and whether the "
      "signatures are valid, in the store or (--remote) in a registry.");
  SetExamples(app, {"pocket verify", "pocket verify --repair",
                    "pocket verify --signatures --trust trusted-keys",
                    "pocket verify --signatures --remote 127.0.0.1:5000/team/tiny:release"});
  app.add_flag("--repair", f->repair, "remove corrupt files and the tags that use them");
  app.add_flag("--signatures", f->signatures,
               "instead: report who signed each tag (or the REFs given) and whether each "
               "signature is valid; exit 1 when one is not");
  app.add_option("refs", f->refs,
                 "with --signatures: the tags to check (default: every tag in the store)");
  app.add_option("--trust", f->trust,
                 "with --signatures: trust file naming the keys ('NAME ed25519:BASE64' lines); "
                 "a tag without a valid signature by one of them fails (exit 1)");
  app.add_flag("--remote", f->remote,
               "with --signatures: the REFs are HOST/NAME[:TAG] in a registry; its referrers "
               "are fetched and checked there, nothing is stored");
  AddStoreOption(app, &f->store);
  AddTransferOptions(app, &f->transfer);
  return [f] { return VerifyMain(*f); };
}

POCKET_COMMAND(verify, "verify", "check every file of the model store against its digest",
               Configure);

}  // namespace
}  // namespace pocket::cli
