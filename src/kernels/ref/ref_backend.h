// The reference backend: kernels/ref's plain loops behind kernels::Backend, one thread, no
// SIMD, double accumulation where ref does. Slow on purpose: the oracle the other backends
// are tested against (kernels/backend_test.cc) and that a whole model can run on
// (`pocket run --backend reference`). Activations are quantized for MatMul exactly as the
// CPU kernels do (ref::EffectiveActivation), so a model's greedy output matches the CPU
// backend's up to float rounding of the sums. Buffers are host memory.
// Thread safety: as Backend (one caller at a time).
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace pocket::kernels::ref {

std::shared_ptr<Backend> MakeRefBackend();

}  // namespace pocket::kernels::ref
