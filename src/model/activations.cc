// Activations::Create: one backend buffer per activation, sized for max_tokens rows.
#include "model/activations.h"

namespace pocket::model {

Result<Activations> Activations::Create(kernels::Backend& backend, const LlamaConfig& c,
                                        size_t max_tokens) {
  Activations a;
  a.max_tokens = max_tokens;
  auto make = [&](kernels::DeviceBuffer* out, int width) -> Status {
    PK_ASSIGN_OR_RETURN(kernels::Buffer b,
                        backend.Allocate(max_tokens * static_cast<size_t>(width) * sizeof(float)));
    *out = kernels::DeviceBuffer(&backend, b);
    return Status::Ok();
  };
  PK_RETURN_IF_ERROR(make(&a.x, c.d_model));
  PK_RETURN_IF_ERROR(make(&a.xn, c.d_model));
  PK_RETURN_IF_ERROR(make(&a.o, c.d_model));
  PK_RETURN_IF_ERROR(make(&a.q, c.q_dim()));
  PK_RETURN_IF_ERROR(make(&a.att, c.q_dim()));
  PK_RETURN_IF_ERROR(make(&a.k, c.kv_dim()));
  PK_RETURN_IF_ERROR(make(&a.v, c.kv_dim()));
  PK_RETURN_IF_ERROR(make(&a.gate, c.d_ff));
  PK_RETURN_IF_ERROR(make(&a.up, c.d_ff));
  PK_ASSIGN_OR_RETURN(kernels::Buffer t, backend.Allocate(2 * max_tokens * sizeof(int32_t)));
  a.tokens = kernels::DeviceBuffer(&backend, t);
  a.tokens_host.resize(2 * max_tokens);
  a.out_rows.resize(max_tokens);
  return a;
}

}  // namespace pocket::model
