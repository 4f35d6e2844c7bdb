// Model argument resolution: path first, then the store (see resolve.h).
#include "registry/resolve.h"

#include <filesystem>

#include "registry/reference.h"
#include "registry/store.h"

namespace pocket::registry {

Result<std::string> ResolveModelPath(const std::string& arg) {
  std::error_code ec;
  // A file wins; a directory of the same name as a stored model (a checkout called
  // "smollm2") does not shadow it, but is still what a path-like argument names.
  if (!arg.empty() && std::filesystem::is_regular_file(arg, ec)) return arg;
  const bool exists = !arg.empty() && std::filesystem::exists(arg, ec);
  const bool path_like = arg.empty() || arg[0] == '/' || arg[0] == '~' || arg.rfind("./", 0) == 0 ||
                         arg.rfind("../", 0) == 0 ||
                         (arg.size() >= 5 && std::filesystem::path(arg).extension() == ".gguf");
  if (path_like) {
    if (exists) return arg;  // the loader says what it is instead of a model
    return Status::NotFound("model file '" + arg + "' does not exist");
  }
  auto ref = ParseModelRef(arg);
  if (!ref.ok()) {
    if (exists) return arg;
    return Status::NotFound(
        "model '" + arg.substr(0, 128) +
        "' is neither an existing file nor a valid model name: " + ref.status().message());
  }
  PK_ASSIGN_OR_RETURN(std::string root, DefaultStoreRoot());
  Store store(root);
  auto path = store.ModelPath(*ref);
  if (path.status().code() == StatusCode::kNotFound) {
    if (exists) return arg;
    return Status::NotFound("'" + arg + "' is neither a file nor a model in the store " + root +
                            " (`pocket ls` lists the store; `pocket import FILE.gguf " +
                            ref->ToString() + "` adds one)");
  }
  return path;
}

}  // namespace pocket::registry
