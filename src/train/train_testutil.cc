// Test helpers of src/train (see train_testutil.h).
#include "train/train_testutil.h"

#include "base/check.h"

namespace pocket::train::testing {

model::LlamaConfig TinyConfig(bool tied) {
  model::LlamaConfig c;
  c.arch = "llama";
  c.d_model = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.d_ff = 64;
  c.vocab_size = 64;
  c.context_length = 64;
  c.rms_eps = 1e-5f;
  c.tied_output = tied;
  return c;
}

HostBatch RepetitiveBatch(size_t num_seqs, size_t seq_len, int vocab, int period, int offset,
                          int skip) {
  HostBatch b;
  b.num_seqs = num_seqs;
  b.seq_len = seq_len;
  auto token = [&](size_t i) {
    // A fixed permutation-ish sequence of period `period` over the vocabulary.
    return static_cast<int32_t>((static_cast<int>(i % static_cast<size_t>(period)) * 7 + 3) %
                                vocab);
  };
  for (size_t s = 0; s < num_seqs; ++s) {
    const size_t start = static_cast<size_t>(offset) + s * (seq_len + 3);
    for (size_t t = 0; t < seq_len; ++t) {
      b.tokens.push_back(token(start + t));
      const size_t row = s * seq_len + t;
      const bool skipped = skip > 0 && row % static_cast<size_t>(skip) == 0;
      b.targets.push_back(skipped ? -1 : token(start + t + 1));
    }
  }
  return b;
}

std::shared_ptr<kernels::Backend> MakeBackendOrDie(kernels::BackendKind kind, int threads) {
  auto be = kernels::MakeBackend(kind, threads);
  PK_CHECK(be.ok());
  return *be;
}

formats::GgufFile ToGgufFile(const ModelParams& params, tensor::DType dtype) {
  auto w = params.ToGguf("tiny-train", nullptr, dtype);
  PK_CHECK(w.ok());
  auto bytes = w->Serialize();
  PK_CHECK(bytes.ok());
  auto f = formats::GgufFile::FromBytes(std::move(*bytes), "tiny-train.gguf");
  PK_CHECK(f.ok());
  return std::move(*f);
}

std::vector<float> AllValues(ModelParams& params) {
  std::vector<float> out;
  for (const Param& p : params.params()) {
    const std::vector<float> v = params.Values(p);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace pocket::train::testing
