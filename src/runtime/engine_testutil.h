// Test helper: the small random-weight model the runtime tests run on, written by the
// project's own GGUF writer. Tests only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "runtime/engine.h"

namespace pocket::runtime {

// Writes an F32 Llama model (d_model 64, 2 layers, 4 heads / 2 KV heads, d_ff 128, vocab
// 512, context 256) with weights from `seed` to `path` and loads it with one thread.
// (Linked into the benchmarks too: no GoogleTest here.)
Result<std::shared_ptr<Engine>> LoadSmallRandomEngine(const std::string& path, uint64_t seed);

}  // namespace pocket::runtime
