// AMX-INT8 prompt processing over PackedWeight's kPackedLanePairs layout (amx.cc): the
// integer block dots of 16 rows x 16 tokens per instruction, the float steps exactly as
// the VNNI tiles take them, so the results are the same bits. Called by matmul.cc's
// MatMulPairs for batches of 16 or more tokens. Thread safety: reentrant; each call loads
// its tile configuration and releases the tiles before it returns.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/cpu.h"

namespace pocket::kernels::cpu {

// This CPU has AMX-INT8 and AVX-512, the OS granted the tile state, and tests did not
// turn the path off.
bool AmxUsable();
// Tests only: compare the AMX path with the VNNI tiles in one process.
void SetAmxDisabledForTest(bool disabled);

// y[t][r] for rows [r0, r1) (r0 a multiple of 8) and tokens [0, num_tokens) with
// num_tokens a multiple of 16; y is [tokens][rows]. REQUIRES: AmxUsable(), and `packed`
// in the kPackedLanePairs layout of a Q4_0 (q4) or Q8_0 weight.
void MatMulPairsAmx(bool q4, const uint8_t* packed, const Activations& act, size_t rows,
                    size_t r0, size_t r1, size_t num_tokens, float* y);

}  // namespace pocket::kernels::cpu
