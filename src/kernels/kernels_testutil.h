// What the kernels tests share: random activations, a random weight matrix of any dtype Pocket
// reads, and running a body once per compiled SIMD target.
// Who calls: kernels_test.cc, backend_test.cc, train_ops_test.cc, matmul_dequant_test.cc.
// Thread safety: RandomNormal and MakeTestMatrix are pure; ForEachTarget changes the
// process-wide dispatch target (tests only, one thread).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace pocket::kernels {

// n floats from N(0, stddev^2), the same for the same seed (std::mt19937).
std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev = 1.0f);

// A weight matrix [rows][cols] of `dtype` in host memory: RandomNormal(rows * cols, seed, sd)
// quantized row by row, or random blocks (FillRandomBlocks; `sd` does not apply) for the
// types without a quantizer. view points into bytes: keep the struct where it is.
struct TestMatrix {
  std::vector<uint8_t> bytes;
  tensor::TensorView view;
};
TestMatrix MakeTestMatrix(tensor::DType dtype, size_t rows, size_t cols, uint32_t seed,
                          float sd = 0.05f);

// Runs `body` once per compiled and supported target with dispatch forced to it (only the
// first when first_only: a backend with no SIMD targets), then restores the dispatch.
template <typename F>
void ForEachTarget(const F& body, bool first_only = false) {
  for (int64_t target : cpu::CompiledTargets()) {
    cpu::SetTargetForTest(target);
    SCOPED_TRACE(std::string("target ") + cpu::TargetNameOf(target));
    body();
    if (first_only) break;
  }
  cpu::SetTargetForTest(0);
}

}  // namespace pocket::kernels
