// `pocket index NAME:TAG MODEL...`: makes NAME:TAG an OCI image index over stored models, the
// variants of one model (quantizations, sizes) among which `pocket run`/`pull` choose the one
// that fits the machine (registry/variant.h); `pocket index NAME:TAG` lists an index's
// variants and which one this machine would take.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"
#include "registry/variant.h"

namespace pocket::cli {
namespace {

struct IndexFlags {
  std::string ref, store;
  std::vector<std::string> members;
  std::string prefer = "quality", variant;
  int ctx_size = 0;
  bool json = false;
};

int ListVariants(const IndexFlags& f, const registry::Store& store, const registry::ModelRef& ref) {
  const std::string cmd = "index";
  auto entry = store.Find(ref);
  if (!entry.ok()) return Fail(cmd, entry.status());
  auto index = store.ReadVariantIndex(*entry);
  if (!index.ok()) return Fail(cmd, index.status());
  const std::vector<registry::Variant> variants = registry::VariantsOf(*index);
  auto request = VariantRequestFor(f.prefer, f.variant, f.ctx_size);
  if (!request.ok()) return Fail(cmd, request.status());
  // What a model command would take: among the variants this store holds.
  request->available = [&store](const registry::Variant& v) {
    return store.HasBlob(v.descriptor.digest, v.descriptor.size);
  };
  auto need = request->memory_need;
  auto choice = registry::ChooseVariant(variants, *request, ref.ToString());
  if (f.json) {
    nlohmann::json out = nlohmann::json::object();
    out["variants"] = nlohmann::json::array();
    for (const registry::Variant& v : variants) {
      const auto bytes = need ? need(v) : std::nullopt;
      out["variants"].push_back(
          {{"variant", v.Label()},
           {"digest", v.descriptor.digest},
           {"parameter_count", v.parameter_count},
           {"weight_bytes", v.weight_bytes},
           {"need_bytes", bytes ? nlohmann::json(*bytes) : nlohmann::json()},
           {"in_store", store.HasBlob(v.descriptor.digest, v.descriptor.size)}});
    }
    if (choice.ok()) {
      out["chosen"] = variants[choice->index].descriptor.digest;
      out["line"] = choice->line;
    } else {
      out["error"] = choice.status().message();
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-12s %-19s %12s %12s %12s  %s\n", "VARIANT", "MANIFEST", "PARAMETERS", "SIZE",
              "NEEDS", "IN STORE");
  for (const registry::Variant& v : variants) {
    const auto bytes = need ? need(v) : std::nullopt;
    std::printf("%-12s %.19s %12llu %12s %12s  %s\n", v.Label().c_str(),
                v.descriptor.digest.c_str(), static_cast<unsigned long long>(v.parameter_count),
                registry::FormatBytes(v.weight_bytes).c_str(),
                bytes ? registry::FormatBytes(*bytes).c_str() : "?",
                store.HasBlob(v.descriptor.digest, v.descriptor.size) ? "yes" : "no");
  }
  if (!choice.ok()) return Fail(cmd, choice.status());
  std::printf("%s: %s\n", ref.ToString().c_str(), choice->line.c_str());
  return 0;
}

int IndexMain(const IndexFlags& f) {
  const std::string cmd = "index";
  auto ref = ParseRefArg(f.ref);
  if (!ref.ok()) return Fail(cmd, ref.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail(cmd, root.status());
  registry::Store store(*root);
  if (f.members.empty()) return ListVariants(f, store, *ref);
  std::vector<registry::ModelRef> members;
  for (const std::string& m : f.members) {
    auto member = ParseRefArg(m);
    if (!member.ok()) return Fail(cmd, member.status());
    members.push_back(*member);
  }
  auto bytes = registry::MakeVariantIndex(store, members);
  if (!bytes.ok()) return Fail(cmd, bytes.status());
  auto entry = store.AddIndexTag(*ref, *bytes);
  if (!entry.ok()) return Fail(cmd, entry.status());
  std::printf("%s is an index of %zu variants (%s, index %.19s)\n", ref->ToString().c_str(),
              members.size(), HumanBytes(entry->size_bytes).c_str(),
              entry->manifest_digest.c_str());
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<IndexFlags>();
  app.description(
      "Make NAME:TAG an index of variants over models already in the store (an OCI image "
      "index, each variant annotated with its quantization, parameter count, size and "
      "memory shape): every model command given NAME:TAG then runs the variant that fits this "
      "machine (memory at the context, CPU instruction set, --prefer), `pocket push` sends "
      "the index with all its variants and `pocket pull` of it fetches only the one that "
      "fits. Without MODELs, lists the index's variants and the one this machine takes.");
  SetExamples(app, {"pocket index smollm2:latest smollm2:q4_0 smollm2:q8_0  # two imported "
                    "models",
                    "pocket index smollm2:latest  # the variants, and the choice here",
                    "pocket run smollm2 \"Hi\"  # runs the variant that fits",
                    "pocket push smollm2:latest 127.0.0.1:5000/team/smollm2:latest"});
  app.add_option("name", f->ref, "NAME[:TAG] to point at the index")->required();
  app.add_option("models", f->members,
                 "stored NAME:TAGs, the variants (each a model, not an index)");
  AddStoreOption(app, &f->store);
  app.add_flag("--json", f->json,
               "listing: JSON (variants with their need_bytes, the chosen digest or the error)");
  AddVariantOptions(app, &f->prefer, &f->variant);
  AddCtxSizeOption(app, &f->ctx_size,
                   "listing: the context (tokens) each variant's memory need is estimated at "
                   "(0 = the model's, capped at 4096)",
                   0);
  return [f] { return IndexMain(*f); };
}

POCKET_COMMAND(index, "index", "make NAME:TAG an index of variants of a model, or list one",
               Configure);

}  // namespace
}  // namespace pocket::cli
