// Which Highway targets the kernels are compiled for. Included first by every
// foreach_target file in kernels/cpu/ (before any Highway header).
// Kept: AVX3 (AVX-512 F/BW/DQ/VL), AVX2 (+FMA, F16C), SSE4 and the EMU128/scalar fallback.
// Dropped to save compile time (each target compiles every kernel again): SSSE3 (SSE4
// covers the same CPUs but a few), AVX3_DL. Targets appear in the order Highway prefers.
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_AVX3_DL)
#endif
