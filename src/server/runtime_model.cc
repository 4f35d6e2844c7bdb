#include "server/runtime_model.h"

namespace pocket::server {

Result<std::shared_ptr<Model>> LoadRuntimeModel(const std::string& path, int, int) {
  // runtime::Engine::Load is not implemented in the runtime library yet.
  return Status::NotSupported("'" + path + "': loading GGUF models in the server waits for the "
                              "runtime engine; use --fake-model for now");
}

}  // namespace pocket::server
