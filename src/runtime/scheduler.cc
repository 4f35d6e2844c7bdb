// Scheduler: the request queue, slot admission (longest cached prefix first) and the batched
// forward pass; each slot's request is a Sequence (sequence.h), the same path as Session's.
#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "base/clock.h"
#include "runtime/engine_impl.h"
#include "runtime/generation.h"
#include "runtime/sequence.h"

namespace pocket::runtime {

struct Scheduler::Request {
  GenerateRequest req;
  std::vector<int32_t> prompt;
  std::function<bool(std::string_view)> on_text;
  uint64_t enqueued_ns = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Result<GenerateResult> result{Status::Internal("scheduler: not finished")};
  SchedulerStats stats;
};

struct Scheduler::Slot {
  Sequence seq;                  // the slot's cache (kept between requests) and request state
  std::shared_ptr<Request> req;  // null: free
};

Scheduler::Scheduler(std::shared_ptr<Engine> engine, SchedulerOptions options)
    : engine_(std::move(engine)), options_(options) {
  PK_CHECK(engine_ != nullptr);
  options_.max_sequences = std::max(1, options_.max_sequences);
  options_.prefill_chunk = std::max(1, options_.prefill_chunk);
  for (int i = 0; i < options_.max_sequences; ++i) slots_.push_back(std::make_unique<Slot>());
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (auto& s : slots_)
    if (s->req) Finish(*s, Status::Cancelled("scheduler stopped"));
  for (auto& r : waiting_) {
    std::lock_guard<std::mutex> l(r->mu);
    r->result = Status::Cancelled("scheduler stopped");
    r->done = true;
    r->cv.notify_all();
  }
}

Result<std::vector<int32_t>> Scheduler::Tokenize(const GenerateRequest& req) const {
  return TokenizeRequest(*engine_, req);
}

Result<GenerateResult> Scheduler::Generate(const GenerateRequest& request,
                                           const std::function<bool(std::string_view)>& on_text,
                                           SchedulerStats* stats) {
  auto r = std::make_shared<Request>();
  PK_ASSIGN_OR_RETURN(r->prompt, Tokenize(request));
  const int ctx = engine_->context_length();
  if (r->prompt.size() >= static_cast<size_t>(ctx))
    return Status::InvalidArgument("generate: the prompt is " + std::to_string(r->prompt.size()) +
                                   " tokens; the context holds " + std::to_string(ctx));
  // The JSON token table is built here, on the caller's thread, by the first JSON-mode
  // request, rather than stalling every sequence's step on the scheduler thread.
  if (request.response_format == ResponseFormat::kJsonObject) (void)ImplOf(*engine_).json_tokens();
  r->req = request;
  r->on_text = on_text;
  r->enqueued_ns = MonotonicNs();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return Status::Cancelled("scheduler stopped");
    waiting_.push_back(r);
  }
  cv_.notify_all();
  std::unique_lock<std::mutex> l(r->mu);
  r->cv.wait(l, [&] { return r->done; });
  if (stats) *stats = r->stats;
  return std::move(r->result);
}

void Scheduler::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !waiting_.empty() || active_ > 0; });
      if (stopping_) return;
      Admit();
    }
    if (active_ > 0) Step();
    UpdateKvBytes();
  }
}

// REQUIRES: mu_ held. Fills free slots from the queue, FIFO. A request takes the free slot
// whose cached tokens share the longest prefix with its prompt.
void Scheduler::Admit() {
  EngineImpl& eng = ImplOf(*engine_);
  while (!waiting_.empty()) {
    const auto& r = waiting_.front();
    Slot* best = nullptr;
    size_t best_lcp = 0;
    for (auto& s : slots_) {
      if (s->req) continue;
      const size_t lcp = s->seq.CommonPrefix(r->prompt);
      if (!best || lcp > best_lcp) {
        best = s.get();
        best_lcp = lcp;
      }
    }
    if (!best) return;
    std::shared_ptr<Request> req = r;
    waiting_.pop_front();
    Slot& s = *best;
    const uint64_t t_start = MonotonicNs();
    if (Status st = s.seq.Begin(eng, req->req, std::move(req->prompt), req->on_text, t_start);
        !st.ok()) {
      std::lock_guard<std::mutex> l(req->mu);
      req->result = std::move(st);
      req->done = true;
      req->cv.notify_all();
      continue;
    }
    s.req = req;
    req->stats.queue_wait_s = static_cast<double>(t_start - req->enqueued_ns) * 1e-9;
    req->stats.reused_prompt_tokens = static_cast<int>(s.seq.reused());
    ++active_;
  }
}

void Scheduler::Finish(Slot& s, Status status) {
  std::shared_ptr<Request> req = std::move(s.req);
  s.req = nullptr;
  if (!status.ok()) s.seq.Forget();  // the cache's contents are unknown (or it is stopping)
  GenerateResult result = s.seq.TakeResult();
  {
    std::lock_guard<std::mutex> l(mu_);
    --active_;
  }
  UpdateKvBytes();  // current when Generate returns
  std::lock_guard<std::mutex> l(req->mu);
  if (status.ok()) {
    req->result = std::move(result);
  } else {
    req->result = std::move(status);
  }
  req->done = true;
  req->cv.notify_all();
}

void Scheduler::Step() {
  EngineImpl& eng = ImplOf(*engine_);
  const size_t vocab = static_cast<size_t>(eng.model->config().vocab_size);
  std::vector<model::BatchEntry> batch;
  std::vector<Slot*> owners;
  bool decode_only = true;  // every sequence contributes one sampled token
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.req) continue;
    if (s.seq.prefilling()) decode_only = false;
    batch.push_back(s.seq.NextEntry(static_cast<size_t>(options_.prefill_chunk)));
    owners.push_back(&s);
  }
  if (batch.empty()) return;
  std::vector<float>& logits = logits_;  // reused: vocab floats per sequence, every step
  const uint64_t t_forward = MonotonicNs();
  if (Status st = eng.Forward(batch, &logits); !st.ok()) {
    for (Slot* s : owners) Finish(*s, st);
    return;
  }
  if (decode_only) {
    decode_step_ns_ += MonotonicNs() - t_forward;
    ++decode_steps_;
  }
  for (size_t i = 0; i < owners.size(); ++i) {
    Slot& s = *owners[i];
    const Result<bool> more =
        s.seq.Advance(std::span<const float>(logits).subspan(i * vocab, vocab));
    if (!more.ok() || !*more) Finish(s, more.status());
  }
}

Result<std::vector<float>> Scheduler::Embed(std::string_view text, int* tokens) {
  EngineImpl& eng = ImplOf(*engine_);
  std::vector<int32_t> ids = eng.tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (tokens) *tokens = static_cast<int>(ids.size());
  if (ids.empty()) return Status::InvalidArgument("embeddings: the input is empty");
  if (ids.size() > static_cast<size_t>(eng.context_length))
    return Status::InvalidArgument("embeddings: the input is " + std::to_string(ids.size()) +
                                   " tokens; the context holds " + std::to_string(eng.context_length));
  PK_ASSIGN_OR_RETURN(model::KvCache cache,
                      eng.model->NewKvCache(static_cast<int>(ids.size()), kKvDType));
  model::BatchEntry e;
  e.cache = &cache;
  e.tokens = ids;
  e.start_pos = 0;
  e.all_logits = true;
  std::vector<float> hidden;
  {
    std::lock_guard<std::mutex> l(eng.forward_mu);
    PK_RETURN_IF_ERROR(eng.model->ForwardHidden(std::span<model::BatchEntry>(&e, 1), &hidden));
  }
  const size_t d = static_cast<size_t>(eng.model->config().d_model);
  std::vector<double> sum(d, 0.0);  // double: mean over up to context_length rows
  for (size_t t = 0; t < ids.size(); ++t)
    for (size_t j = 0; j < d; ++j) sum[j] += hidden[t * d + j];
  double norm = 0;
  for (double& x : sum) {
    x /= static_cast<double>(ids.size());
    norm += x * x;
  }
  norm = std::sqrt(norm);
  std::vector<float> out(d);
  for (size_t j = 0; j < d; ++j) out[j] = static_cast<float>(norm > 0 ? sum[j] / norm : 0.0);
  return out;
}

void Scheduler::UpdateKvBytes() {
  uint64_t reserved = 0, used = 0;
  for (const auto& sl : slots_) {
    const model::KvCache* cache = sl->seq.cache();
    if (cache == nullptr) continue;
    reserved += cache->size_bytes();
    used += 2ull * cache->row_bytes() * static_cast<uint64_t>(cache->num_layers()) *
            static_cast<uint64_t>(cache->num_tokens());
  }
  kv_reserved_bytes_ = reserved;
  kv_used_bytes_ = used;
}

int Scheduler::active() const {
  std::lock_guard<std::mutex> l(mu_);
  return active_;
}

int Scheduler::waiting() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(waiting_.size());
}

}  // namespace pocket::runtime
