// Model argument resolution: path first, then the store (see resolve.h).
#include "registry/resolve.h"

#include <filesystem>

#include "registry/reference.h"
#include "registry/store.h"

namespace pocket::registry {

Result<std::string> ResolveModelPath(const std::string& arg) {
  std::error_code ec;
  if (!arg.empty() && std::filesystem::exists(arg, ec)) return arg;
  const bool path_like = arg.empty() || arg[0] == '/' || arg[0] == '~' || arg.rfind("./", 0) == 0 ||
                         arg.rfind("../", 0) == 0 ||
                         (arg.size() >= 5 && std::filesystem::path(arg).extension() == ".gguf");
  if (path_like) return Status::NotFound("model file '" + arg + "' does not exist");
  auto ref = ParseModelRef(arg);
  if (!ref.ok()) {
    return Status::NotFound(
        "model '" + arg.substr(0, 128) +
        "' is neither an existing file nor a valid model name: " + ref.status().message());
  }
  PK_ASSIGN_OR_RETURN(std::string root, DefaultStoreRoot());
  Store store(root);
  auto path = store.ModelPath(*ref);
  if (path.status().code() == StatusCode::kNotFound) {
    return Status::NotFound("'" + arg + "' is neither a file nor a model in the store " + root +
                            " (`pocket ls` lists the store; `pocket import FILE.gguf " +
                            ref->ToString() + "` adds one)");
  }
  return path;
}

}  // namespace pocket::registry
