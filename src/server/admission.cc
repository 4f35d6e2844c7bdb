// Admission: the server's one queue. A generation request is admitted while fewer than
// max_active + max_queue are in flight (else 429 + Retry-After), handed to the worker pool
// (one thread per admissible request, so an admitted request never waits for a thread),
// and, when it runs locally, waits for one of max_active slots; a client that leaves while
// queued frees its place. Models batch at least max_active sequences (Server::Create checks
// Model::max_sequences), so nothing queues again below this. Also: whether a call has been
// abandoned (client gone, server stopping) between steps.
#include <algorithm>
#include <chrono>
#include <string>

#include "server/errors.h"
#include "server/server.h"
#include "server/server_internal.h"

namespace pocket::server {

// Counts the call in flight and queues it for a worker; false when it was refused (429
// queue full, or 503 while stopping) and answered.
bool Server::Admit(const std::shared_ptr<Call>& call) {
  Call& c = *call;
  const int limit = options_.max_active + options_.max_queue;
  if (inflight_.fetch_add(1) >= limit) {
    inflight_.fetch_sub(1);
    metrics_.Add("pocket_rejected_requests_total", {{"reason", "queue_full"}});
    Fail(c, Status::ResourceExhausted("server busy: " + std::to_string(limit) +
                                      " requests in flight; retry later"),
         "rate_limit_exceeded");
    return false;
  }
  c.admitted = true;
  bool submitted = false;
  try {
    submitted = Submit([this, call] {
      // The admission is given back however the request ends (the local slot is an RAII
      // guard inside RunLocal).
      struct Admission {
        std::atomic<int>& inflight;
        ~Admission() { inflight.fetch_sub(1); }
      } admission{inflight_};
      Contain(*call, "generation", [&] { RunGeneration(call); });
    });
  } catch (...) {
    inflight_.fetch_sub(1);  // the task never got queued; Contain answers the request
    throw;
  }
  if (!submitted) {
    inflight_.fetch_sub(1);
    Fail(c, Status::ResourceExhausted("server is shutting down"), "server_overloaded");
    return false;
  }
  return true;
}

void Server::Worker() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

bool Server::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

// REQUIRES: the call is admitted. Waits until a slot is free and takes it (true), or the
// client leaves (false; the call is answered 499 and counted as cancelled while queued).
bool Server::WaitForSlot(Call& c) {
  {
    std::unique_lock<std::mutex> l(slot_mu_);
    while (free_slots_ == 0 && !c.ex->cancelled()) {
      slot_cv_.wait_for(l, std::chrono::milliseconds(50));
    }
    if (c.ex->cancelled()) {
      metrics_.Add("pocket_cancelled_requests_total", {{"stage", "queued"}});
      c.finish_reason = "cancelled";
      c.http_status = 499;
      return false;
    }
    --free_slots_;
  }
  return true;
}

void Server::ReleaseSlot() {
  {
    std::lock_guard<std::mutex> l(slot_mu_);
    ++free_slots_;
  }
  slot_cv_.notify_one();
  active_.fetch_sub(1);
  metrics_.Set("pocket_requests_active", {}, active_.load());
}

bool Server::Leaving(const Call& c) const { return c.ex->cancelled() || stopping(); }

bool Server::Abandoned(Call& c, const char* stage) {
  if (!Leaving(c)) return false;
  (void)router_->Release(c.plan);  // no-op when nothing is reserved
  metrics_.Add("pocket_cancelled_requests_total", {{"stage", stage}});
  c.finish_reason = "cancelled";
  if (c.ex->cancelled()) {
    c.http_status = 499;
  } else {
    Fail(c, Status::ResourceExhausted("server is shutting down"), "server_overloaded");
  }
  return true;
}

}  // namespace pocket::server
