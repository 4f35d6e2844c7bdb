// Sequence: one request's prompt-cache reuse, chunked prefill and per-token
// loop over a KV cache that outlives the request (sequence.h). The forward
// passes themselves are the caller's: Session runs them one sequence at a time,
// Scheduler batches many.
#include "runtime/sequence.h"

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "base/clock.h"
#include "runtime/engine_impl.h"

namespace pocket::runtime {
namespace {

double MsSince(uint64_t t0_ns) { return static_cast<double>(MonotonicNs() - t0_ns) * 1e-6; }

}  // namespace

size_t Sequence::CommonPrefix(std::span<const int32_t> prompt) const {
  size_t n = 0;
  while (n < tokens_.size() && n < prompt.size() && tokens_[n] == prompt[n]) ++n;
  return n;
}

Status Sequence::Begin(EngineImpl &eng, const GenerateRequest &req, std::vector<int32_t> prompt,
                       std::function<bool(std::string_view)> on_text, uint64_t t_start_ns) {
  PK_CHECK(!gen_.has_value());
  PK_CHECK(!prompt.empty() && prompt.size() < static_cast<size_t>(eng.context_length));
  if (!cache_) {
    PK_ASSIGN_OR_RETURN(model::KvCache cache, eng.model->NewKvCache(eng.context_length, kKvDType));
    cache_.emplace(std::move(cache));
    tokens_.clear();
  }
  // At least the last prompt token is evaluated again, for logits to sample
  // from.
  size_t reuse = std::min(CommonPrefix(prompt), prompt.size() - 1);
  if (!cache_->Truncate(static_cast<int>(reuse)).ok()) {
    cache_->Clear();
    tokens_.clear();
    reuse = 0;
  } else {
    tokens_.resize(reuse);
  }
  req_ = req;
  prompt_ = std::move(prompt);
  prompt_pos_ = reuse;
  pending_prefill_ = 0;
  reused_ = reuse;
  ended_ = false;
  next_token_ = -1;
  t_start_ = t_start_ns;
  t_gen_ = 0;
  // The repetition penalty sees prompt and output, so the history starts with
  // the prompt.
  gen_.emplace(eng, req_, prompt_, std::move(on_text));
  return Status::Ok();
}

model::BatchEntry Sequence::NextEntry(size_t max_prefill_tokens) {
  PK_CHECK(active());
  model::BatchEntry e;
  e.cache = &*cache_;
  e.start_pos = static_cast<int>(tokens_.size());
  if (prefilling()) {
    size_t n = prompt_.size() - prompt_pos_;
    if (max_prefill_tokens > 0) n = std::min(n, max_prefill_tokens);
    e.tokens = std::span<const int32_t>(prompt_).subspan(prompt_pos_, n);
    pending_prefill_ = n;
  } else {
    e.tokens = std::span<const int32_t>(&next_token_, 1);
    pending_prefill_ = 0;
  }
  return e;
}

Result<bool> Sequence::Advance(std::span<const float> row) {
  PK_CHECK(active());
  if (pending_prefill_ > 0) {
    const auto first = prompt_.begin() + static_cast<std::ptrdiff_t>(prompt_pos_);
    tokens_.insert(tokens_.end(), first, first + static_cast<std::ptrdiff_t>(pending_prefill_));
    prompt_pos_ += pending_prefill_;
    pending_prefill_ = 0;
    if (prefilling()) return true;  // more prompt next time
    gen_->result().prompt_ms = MsSince(t_start_);
    t_gen_ = MonotonicNs();
  } else {
    tokens_.push_back(next_token_);
  }
  int32_t next = -1;
  Result<bool> more = gen_->Step(row, tokens_.size(), &next);
  if (!more.ok() || !*more) {
    Finish();
    return more;
  }
  next_token_ = next;
  return true;
}

void Sequence::Cancel() {
  if (!active()) return;
  gen_->Cancel();
  Finish();
}

void Sequence::Forget() {
  if (cache_) cache_->Clear();
  tokens_.clear();
  prompt_pos_ = prompt_.size();
  pending_prefill_ = 0;
  if (active()) Finish();
}

void Sequence::Finish() {
  ended_ = true;
  GenerateResult &r = gen_->result();
  if (t_gen_ == 0) r.prompt_ms = MsSince(t_start_);  // ended before the prompt was in
  r.generate_ms = t_gen_ != 0 ? MsSince(t_gen_) : 0;
}

GenerateResult Sequence::TakeResult() {
  PK_CHECK(gen_.has_value() && ended_);
  GenerateResult r = std::move(gen_->result());
  r.prompt_tokens = static_cast<int>(prompt_.size());
  r.reused_prompt_tokens = static_cast<int>(reused_);
  gen_.reset();
  ended_ = false;
  return r;
}

}  // namespace pocket::runtime
