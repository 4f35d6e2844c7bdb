// Activations: the per-step buffers of the forward pass, in the backend's memory, sized at
// load for max_tokens rows (the tokens of one step, summed over the batch) so a decode step
// allocates nothing. Each buffer is overwritten by every layer: what a layer's backward
// pass needs (x before each block, xn, q after RoPE, att, gate and up before SwiGLU) is
// exactly what a training forward must keep per layer — these names are that contract.
// Who uses it: LlamaModel (owns one), the blocks (model/blocks.h), train later.
// Thread safety: one forward pass at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/status.h"
#include "kernels/backend.h"
#include "model/config.h"

namespace pocket::model {

struct Activations {
  // All buffers F32, row t of the step at t * width. REQUIRES for Create: max_tokens > 0.
  // ResourceExhausted from the backend.
  static Result<Activations> Create(kernels::Backend& backend, const LlamaConfig& config,
                                    size_t max_tokens);

  size_t max_tokens = 0;
  kernels::DeviceBuffer x;     // [T][d_model] residual stream (embeddings, then + each block)
  kernels::DeviceBuffer xn;    // [T][d_model] RMS-normalised input of the current block;
                               // the output head gathers its rows here
  kernels::DeviceBuffer q;     // [T][q_dim] queries (+bias, RoPE applied)
  kernels::DeviceBuffer k, v;  // [T][kv_dim] this step's keys (RoPE applied) and values,
                               // before they are stored into each sequence's KvCache
  kernels::DeviceBuffer att;   // [T][q_dim] attention output, input of wo
  kernels::DeviceBuffer o;     // [T][d_model] a block's output before the residual add;
                               // the output head's normalised rows
  kernels::DeviceBuffer gate;  // [T][d_ff] gate projection, then SwiGLU(gate, up) in place
  kernels::DeviceBuffer up;    // [T][d_ff] up projection
  // [T][vocab_size] logits, only when the output matrix has a bias or adapters (they must
  // add to the logits before they go to the host; LlamaModel allocates it at load or in
  // AttachAdapter); empty otherwise.
  kernels::DeviceBuffer logits;

  // The step's token ids and positions, int32, for `rows` rows: ids at [0, rows), positions
  // at [rows, 2 * rows). LlamaModel::Run fills the host copy and uploads it once per step
  // (one small copy on the CPU backend); GetRows and Rope read the backend copy.
  kernels::DeviceBuffer tokens;      // [2 * max_tokens] int32
  std::vector<int32_t> tokens_host;  // [2 * max_tokens]
  kernels::BufferRef ids() const { return tokens.ref(); }
  kernels::BufferRef positions(size_t rows) const { return tokens.ref(rows * sizeof(int32_t)); }

  // The output row each row of the step produces (kNoRow: none); host only.
  static constexpr size_t kNoRow = static_cast<size_t>(-1);
  std::vector<size_t> out_rows;
};

}  // namespace pocket::model
