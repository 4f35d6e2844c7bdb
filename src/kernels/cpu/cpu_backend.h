// The CPU backend: kernels.h's Highway kernels behind kernels::Backend, with the thread pool
// and Workspace they use. Buffers are 64-byte-aligned host memory (the handle is the host
// pointer, so ops pass it straight to the kernels: no copies); matrices are
// kernels::PackedWeight where repacking helps, else read in place from their source.
// Same bits and speed as calling the kernels directly. Made through MakeBackend.
// Thread safety: as Backend (one caller at a time).
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace pocket::kernels::cpu {

// REQUIRES: threads >= 0 (0 = all cores).
std::shared_ptr<Backend> MakeCpuBackend(int threads);

}  // namespace pocket::kernels::cpu
