// `pocket show NAME[:TAG]`: a stored model's config (architecture, quantization,
// parameters, context, ...), its lineage and staging expiry, and its OCI manifest
// (registry::Store::Show).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/store_flags.h"
#include "registry/store.h"

namespace pocket::cli {
namespace {

struct ShowFlags {
  std::string ref, store;
  bool json = false;
};

std::string Dump(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

int ShowMain(const ShowFlags& f) {
  auto ref = ParseRefArg(f.ref);
  if (!ref.ok()) return Fail("show", ref.status());
  auto root = StoreRoot(f.store);
  if (!root.ok()) return Fail("show", root.status());
  auto info = registry::Store(*root).Show(*ref);
  if (!info.ok()) return Fail("show", info.status());
  nlohmann::json manifest = nlohmann::json::parse(info->manifest_json, nullptr, false);
  // Lineage (model_config.h LineageAnnotations) and staging's expiry, from the manifest.
  const auto& notes = info->manifest.annotations;
  auto note = [&](const char* key) {
    auto it = notes.find(key);
    return it == notes.end() ? std::string() : it->second;
  };
  nlohmann::json lineage = nlohmann::json::object();
  for (const auto& [field, key] :
       {std::pair<const char*, const char*>{"parent", registry::kLineageParentAnnotation},
        {"recipe", registry::kLineageRecipeAnnotation},
        {"data", registry::kLineageDataAnnotation}}) {
    if (!note(key).empty()) lineage[field] = note(key);
  }
  // The parent is a GGUF file's SHA-256: the layer digest of the tags holding it here.
  std::vector<std::string> parent_tags;
  if (lineage.contains("parent")) {
    const registry::Store store(*root);
    if (auto tags = store.List(); tags.ok()) {
      for (const auto& t : *tags) {
        auto other = store.Show(t.ref);
        if (other.ok() && other->manifest.ModelLayer() &&
            other->manifest.ModelLayer()->digest == lineage["parent"]) {
          parent_tags.push_back(t.ref.ToString());
        }
      }
    }
    if (!parent_tags.empty()) lineage["parent_tags"] = parent_tags;
  }
  const std::string expires = note(registry::kStagingExpiresAnnotation);
  if (f.json) {
    nlohmann::json out = {{"name", ref->name},
                          {"tag", ref->tag},
                          {"digest", info->entry.manifest_digest},
                          {"size", info->entry.size_bytes},
                          {"modified", info->entry.created},
                          {"path", info->model_path},
                          {"config", info->config},
                          {"manifest", manifest}};
    if (!lineage.empty()) out["lineage"] = lineage;
    if (!expires.empty()) out["expires"] = expires;
    std::printf("%s\n", Dump(out, -1).c_str());
    return 0;
  }
  std::printf("%s\n  digest    %s\n  size      %s\n  modified  %s\n  file      %s\n",
              ref->ToString().c_str(), info->entry.manifest_digest.c_str(),
              HumanBytes(info->entry.size_bytes).c_str(), info->entry.created.c_str(),
              info->model_path.c_str());
  if (!expires.empty()) std::printf("  expires   %s\n", expires.c_str());
  for (const char* field : {"parent", "recipe", "data"}) {
    if (!lineage.contains(field)) continue;
    std::string line = lineage[field].get<std::string>();
    if (std::string_view(field) == "parent") {
      for (size_t i = 0; i < parent_tags.size(); ++i) {
        line += (i == 0 ? " (" : ", ") + parent_tags[i] + (i + 1 == parent_tags.size() ? ")" : "");
      }
    }
    std::printf("  %-8s  %s\n", field, line.c_str());
  }
  std::printf("config\n%s\nmanifest\n%s\n", Dump(info->config, 2).c_str(),
              Dump(manifest, 2).c_str());
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<ShowFlags>();
  app.description(
      "Show a stored model: its digest, size, GGUF file in the store, config (architecture, "
      "quantization, parameter_count, context_length, tokenizer_model, chat_template, "
      "provenance, min_memory_bytes; docs/registry.md) and OCI manifest. Lineage, when the "
      "trainer recorded it: the parent model's digest (and the stored tags holding it), "
      "the recipe's and the data's hashes; a staged model's expiry.");
  SetExamples(app, {"pocket show smollm2:135m-q4_0", "pocket show tiny --json"});
  app.add_option("name", f->ref, "NAME[:TAG]")->required();
  app.add_flag("--json", f->json, "print one JSON object");
  AddStoreOption(app, &f->store);
  return [f] { return ShowMain(*f); };
}

POCKET_COMMAND(show, "show", "show a stored model's config and manifest", Configure);

}  // namespace
}  // namespace pocket::cli
