// The server's Model backed by runtime::Engine (a real GGUF model): loads it after a
// memory estimate (weights + KV cache at the context length + compute buffers) so a
// model that does not fit is refused with a clear message instead of failing halfway.
// Thread safety: as server::Model.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "server/model.h"

namespace pocket::server {

// The model's id is the file name without ".gguf". ResourceExhausted when the estimate
// exceeds the memory available; the loader's errors otherwise.
Result<std::shared_ptr<Model>> LoadRuntimeModel(const std::string& path, int threads,
                                                int context_length);

}  // namespace pocket::server
