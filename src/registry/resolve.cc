// Model argument resolution: path first, then the store (see resolve.h).
#include "registry/resolve.h"

#include <filesystem>

#include "registry/reference.h"
#include "registry/store.h"

namespace pocket::registry {

namespace {

VariantPolicy& Policy() {
  static VariantPolicy policy;
  return policy;
}

// The chosen variant of the index tag `entry`, among the children the store holds.
Result<ResolvedModel> ResolveIndex(const Store& store, const TagEntry& entry,
                                   const ModelRef& ref) {
  PK_ASSIGN_OR_RETURN(Index index, store.ReadVariantIndex(entry));
  const std::vector<Variant> variants = VariantsOf(index);
  VariantRequest request;
  if (Policy().request) {
    PK_ASSIGN_OR_RETURN(request, Policy().request());
  } else {
    PK_ASSIGN_OR_RETURN(request.facts, ReadMachineFacts());
  }
  request.available = [&store](const Variant& v) {
    return store.HasBlob(v.descriptor.digest, v.descriptor.size);
  };
  PK_ASSIGN_OR_RETURN(VariantChoice choice, ChooseVariant(variants, request, ref.ToString()));
  const Variant& chosen = variants[choice.index];
  PK_ASSIGN_OR_RETURN(ModelInfo info,
                      store.ShowManifest(chosen.descriptor.digest,
                                         ref.ToString() + " variant " + chosen.Label()));
  const std::string line = ref.ToString() + ": " + choice.line;
  if (Policy().on_choice) Policy().on_choice(line);
  return ResolvedModel{info.model_path, line};
}

}  // namespace

void SetVariantPolicy(VariantPolicy policy) { Policy() = std::move(policy); }

Result<std::string> ResolveModelPath(const std::string& arg) {
  PK_ASSIGN_OR_RETURN(ResolvedModel resolved, ResolveModel(arg));
  return resolved.path;
}

Result<ResolvedModel> ResolveModel(const std::string& arg) {
  std::error_code ec;
  // A file wins; a directory of the same name as a stored model (a checkout called
  // "smollm2") does not shadow it, but is still what a path-like argument names.
  if (!arg.empty() && std::filesystem::is_regular_file(arg, ec)) return ResolvedModel{arg, ""};
  const bool exists = !arg.empty() && std::filesystem::exists(arg, ec);
  const bool path_like = arg.empty() || arg[0] == '/' || arg[0] == '~' || arg.rfind("./", 0) == 0 ||
                         arg.rfind("../", 0) == 0 ||
                         (arg.size() >= 5 && std::filesystem::path(arg).extension() == ".gguf");
  if (path_like) {
    if (exists) return ResolvedModel{arg, ""};  // the loader says what it is, not a model
    return Status::NotFound("model file '" + arg + "' does not exist");
  }
  auto ref = ParseModelRef(arg);
  if (!ref.ok()) {
    if (exists) return ResolvedModel{arg, ""};
    return Status::NotFound(
        "model '" + arg.substr(0, 128) +
        "' is neither an existing file nor a valid model name: " + ref.status().message());
  }
  PK_ASSIGN_OR_RETURN(std::string root, DefaultStoreRoot());
  Store store(root);
  auto entry = store.Find(*ref);
  if (entry.ok() && entry->is_index) return ResolveIndex(store, *entry, *ref);
  auto path = store.ModelPath(*ref);
  if (path.status().code() == StatusCode::kNotFound) {
    if (exists) return ResolvedModel{arg, ""};
    return Status::NotFound("'" + arg + "' is neither a file nor a model in the store " + root +
                            " (`pocket ls` lists the store; `pocket import FILE.gguf " +
                            ref->ToString() + "` adds one)");
  }
  PK_RETURN_IF_ERROR(path.status());
  return ResolvedModel{*path, ""};
}

}  // namespace pocket::registry
