// TruncateToFit. The rule it keeps: drop the oldest non-system message (never the last),
// count the whole prompt again, repeat until it fits. Done literally that is O(n²) in the
// number of messages (2,000 messages took 105 s, 10,000 over 16 minutes), so instead:
//   1. count each message alone (n small counts, linear in the prompt's size in all);
//   2. model the whole count as A + sum of per-message weights, where A (the template's
//      fixed part: BOS, the generation prompt) comes from sum(alone) - whole = (n-1)·A, and
//      take the k at which that model first fits;
//   3. confirm with whole counts at k and k-1 (exact when the template is additive, as
//      chat templates that separate messages with special tokens are), else gallop from k
//      and bisect, which needs only that dropping a message never lengthens the prompt.
// Every count is preceded by a check of `stop`, so a client that left or a server that
// stops ends the work within one count.
#include "server/truncate.h"

#include <algorithm>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pocket::server {

Result<TruncateResult> TruncateToFit(const Model& model, runtime::GenerateRequest* request,
                                     int prompt_tokens, int reserve, int context,
                                     const std::function<bool()>& stop) {
  std::vector<runtime::ChatMessage>& msgs = request->messages;
  const size_t n = msgs.size();
  std::vector<size_t> victims;  // the drop order
  for (size_t i = 0; i + 1 < n; ++i)
    if (msgs[i].role != "system") victims.push_back(i);
  const int num_victims = static_cast<int>(victims.size());
  TruncateResult result;
  result.prompt_tokens = prompt_tokens;
  result.fits = prompt_tokens + reserve <= context;
  if (result.fits || num_victims == 0) return result;

  auto stopped = [&] { return stop && stop(); };
  const Status kStopped =
      Status::Cancelled("truncation stopped: the client left or the server is stopping");

  // The request's other fields (they may change the count), with messages set per probe;
  // the messages are moved aside for the copy so it stays O(1) in their size.
  runtime::GenerateRequest probe;
  {
    std::vector<runtime::ChatMessage> saved = std::move(msgs);
    msgs.clear();
    probe = *request;
    msgs = std::move(saved);
  }
  // Token ids from an earlier PreparePrompt describe the whole request, not a probe.
  probe.prompt_tokens.clear();

  // 1-2: per-message weights and the first k at which the additive model fits.
  std::vector<double> alone(n);
  double sum_alone = 0;
  for (size_t i = 0; i < n; ++i) {
    if (stopped()) return kStopped;
    probe.messages.assign(1, msgs[i]);
    PK_ASSIGN_OR_RETURN(const int c, model.CountPromptTokens(probe));
    alone[i] = c;
    sum_alone += c;
  }
  const double fixed = (sum_alone - prompt_tokens) / static_cast<double>(n - 1);
  double estimate = prompt_tokens;
  int guess = 0;
  while (guess < num_victims && estimate + reserve > context)
    estimate -= alone[victims[static_cast<size_t>(guess++)]] - fixed;

  // 3: whole counts, memoised, of the request without its first k victims.
  std::unordered_map<int, int> counts{{0, prompt_tokens}};
  auto count = [&](int k, int* out) -> Status {
    if (auto it = counts.find(k); it != counts.end()) {
      *out = it->second;
      return Status::Ok();
    }
    if (stopped()) return kStopped;
    probe.messages.clear();
    probe.messages.reserve(n - static_cast<size_t>(k));
    size_t next = 0;
    for (size_t i = 0; i < n; ++i) {
      if (next < static_cast<size_t>(k) && victims[next] == i) {
        ++next;
        continue;
      }
      probe.messages.push_back(msgs[i]);
    }
    PK_ASSIGN_OR_RETURN(*out, model.CountPromptTokens(probe));
    counts[k] = *out;
    return Status::Ok();
  };
  auto fits = [&](int k, bool* out) -> Status {
    int c = 0;
    PK_RETURN_IF_ERROR(count(k, &c));
    *out = c + reserve <= context;
    return Status::Ok();
  };
  // Invariant: k = lo does not fit; k = hi fits (hi = num_victims + 1: none known to).
  int lo = 0, hi = num_victims + 1;
  bool f = false;
  PK_RETURN_IF_ERROR(fits(guess, &f));
  if (f) {
    hi = guess;
    for (int step = 1; hi - step > lo; step *= 2) {
      const int k = hi - step;
      PK_RETURN_IF_ERROR(fits(k, &f));
      if (!f) {
        lo = k;
        break;
      }
      hi = k;
    }
  } else {
    lo = guess;
    for (int step = 1; lo < num_victims; step *= 2) {
      const int k = std::min(lo + step, num_victims);
      PK_RETURN_IF_ERROR(fits(k, &f));
      if (f) {
        hi = k;
        break;
      }
      lo = k;
    }
  }
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    PK_RETURN_IF_ERROR(fits(mid, &f));
    (f ? hi : lo) = mid;
  }
  const int dropped = std::min(hi, num_victims);
  PK_RETURN_IF_ERROR(count(dropped, &result.prompt_tokens));
  result.dropped_messages = dropped;
  result.fits = hi <= num_victims;

  // Drop the first `dropped` victims, keeping the order of the rest.
  std::vector<runtime::ChatMessage> kept;
  kept.reserve(n - static_cast<size_t>(dropped));
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    if (next < static_cast<size_t>(dropped) && victims[next] == i) {
      ++next;
      continue;
    }
    kept.push_back(std::move(msgs[i]));
  }
  msgs = std::move(kept);
  if (dropped > 0) request->prompt_tokens.clear();  // they were the untruncated prompt's
  return result;
}

}  // namespace pocket::server
