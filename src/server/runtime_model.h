// The server's Model backed by runtime::Engine (a real GGUF model) and the continuous
// batching runtime::Scheduler. Loading checks the runtime's memory estimate (weights + KV
// cache for every slot at the context length + compute buffers) on the engine's one opening
// of the file, before any weight is bound, so a model that does not fit is refused with a
// clear message instead of failing halfway. The server touches no file format: everything
// it knows of the model comes through runtime's API.
// Thread safety: as server::Model.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "server/model.h"

namespace pocket::server {

// The model's id is `id`, or when that is empty the file name without ".gguf" (a model
// from the store is served under its NAME:TAG, not its blob's name). `max_sequences` is the number of
// requests batched together (the scheduler's slots; the server's --max-active, so that the
// server's admission queue is the only one). ResourceExhausted when the estimate exceeds
// the memory available; the loader's errors otherwise.
Result<std::shared_ptr<Model>> LoadRuntimeModel(const std::string& path, int threads,
                                                int context_length, int max_sequences,
                                                std::string id = "");

}  // namespace pocket::server
