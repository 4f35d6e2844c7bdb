// `pocket registry prune REGISTRY[/NAMESPACE] [--dry-run]`: deletes the expired staging manifests
// of a registry's namespace (registry/prune.h, docs/registry.md "Staging and expiry"). `registry`
// groups commands about a remote registry as a whole.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/transfer_flags.h"
#include "registry/prune.h"
#include "registry/staging.h"

namespace pocket::cli {
namespace {

struct PruneFlags {
  std::string target;
  TransferFlags transfer;
  bool dry_run = false;
};

std::string Tags(const registry::PrunedManifest& m) {
  std::string out;
  for (const std::string& t : m.tags) out += (out.empty() ? "" : ",") + t;
  return out;
}

int PruneMain(const PruneFlags& f) {
  const std::string cmd = "registry prune";
  const char* default_host = std::getenv("POCKET_REGISTRY");
  auto ns = registry::ParseRegistryNamespace(f.target, default_host ? default_host : "");
  if (!ns.ok()) return Fail(cmd, ns.status());
  auto now = registry::CurrentUnixSeconds();
  if (!now.ok()) return Fail(cmd, now.status());
  registry::PruneOptions options;
  auto client = ClientOptionsFrom(f.transfer);
  if (!client.ok()) return Fail(cmd, client.status());
  options.client = *client;
  options.now_s = *now;
  options.dry_run = f.dry_run;
  auto report = registry::PruneStaging(*ns, options);
  if (!report.ok()) return Fail(cmd, report.status());
  const char* verb = f.dry_run ? "would remove" : "removed";
  for (const auto& m : report->removed) {
    std::printf("%s %s/%s:%s %.19s (expired %s)\n", verb, ns->host.c_str(), m.repository.c_str(),
                Tags(m).c_str(), m.digest.c_str(), m.expires.c_str());
  }
  for (const auto& m : report->kept) {
    std::printf("kept %s/%s:%s %.19s (%s)\n", ns->host.c_str(), m.repository.c_str(),
                Tags(m).c_str(), m.digest.c_str(), m.note.c_str());
  }
  std::printf("%s %zu expired manifest(s) of %d staging repositor%s under %s/%s, kept %zu", verb,
              report->removed.size(), report->repositories, report->repositories == 1 ? "y" : "ies",
              ns->host.c_str(), ns->StagingPrefix().c_str(), report->kept.size());
  if (report->referrer_indexes_removed > 0) {
    std::printf(", and %d signature index(es) of them", report->referrer_indexes_removed);
  }
  std::printf(f.dry_run || report->removed.empty()
                  ? "\n"
                  : "; the registry frees their blobs at its garbage-collect\n");
  return 0;
}

constexpr char kPruneSummary[] = "delete the expired staging artifacts of REGISTRY[/NAMESPACE]";

// `pocket registry --help` lists each subcommand with its one-line summary (its own --help
// gives the full description), as `pocket --help` does.
class SummaryFormatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_display_name(true),
                             sub->get_name() == "prune" ? kPruneSummary : sub->get_description(),
                             get_column_width());
    return out.str();
  }
};

CommandMain Configure(CLI::App& app) {
  app.require_subcommand(1);
  SetExamples(app, {"pocket registry prune 127.0.0.1:5000/team --dry-run"});
  CLI::App* prune = app.add_subcommand("prune", kPruneSummary);
  prune->description(
      "Delete the expired staging artifacts of a registry namespace: the repositories under "
      "NAMESPACE/staging/ (GET /v2/_catalog), each tag's manifest read for its "
      "io.pocket.staging.expires annotation (`pocket stage` writes it); an expired one is deleted "
      "by digest (DELETE /v2/<repo>/manifests/<digest>), with every tag naming it and its "
      "signature index (tag sha256-<hex>). Manifests without an expiry, or not yet expired, are "
      "kept. The registry's own garbage-collect then frees the blobs (for the CNCF registry: "
      "`registry garbage-collect config.yml`). The registry must allow deletes "
      "(storage.delete.enabled: true). $POCKET_NOW (RFC 3339) overrides the clock.");
  auto f = std::make_shared<PruneFlags>();
  SetExamples(*prune, {"pocket registry prune 127.0.0.1:5000/team",
                       "pocket registry prune registry.example.com/team --dry-run",
                       "POCKET_NOW=2027-01-01T00:00:00Z pocket registry prune "
                       "registry.example.com/team --dry-run   # what expires by then"});
  prune
      ->add_option("target", f->target,
                   "REGISTRY[/NAMESPACE]; without a HOST, $POCKET_REGISTRY names the registry")
      ->required();
  app.formatter(std::make_shared<SummaryFormatter>());  // after prune: it keeps the default
  prune->add_flag("--dry-run", f->dry_run, "list what would be removed; delete nothing");
  AddTransferOptions(*prune, &f->transfer);
  return [f] { return PruneMain(*f); };
}

POCKET_COMMAND(registry, "registry", "manage a remote registry: prune expired staging artifacts",
               Configure);

}  // namespace
}  // namespace pocket::cli
