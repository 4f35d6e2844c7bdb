#include "router/decision.h"

namespace pocket::router {

std::string RouteDecision::Header() const {
  std::string h = remote ? "remote=" + backend : "local";
  h += "; reason=" + reason;
  if (redact) h += "; redacted";
  return h;
}

std::string LocalBackendName(const Policy& policy) {
  for (const auto& b : policy.backends)
    if (b.kind == BackendKind::kLocal) return b.name;
  return "local";
}

Result<RouteDecision> Decide(const Policy& policy, const RouteRequest& req,
                             const BudgetCheck& budget_fits) {
  const std::string area_name = req.area.empty() ? policy.default_area : req.area;
  const Area* area = policy.FindArea(area_name);
  if (!area) return Status::InvalidArgument("unknown feature area '" + area_name + "'");

  auto local = [&](std::string reason, std::string detail) {
    RouteDecision d;
    d.backend = LocalBackendName(policy);
    d.reason = std::move(reason);
    d.detail = std::move(detail);
    return d;
  };

  // (1) Privacy.
  if (req.marked_private) return local("private", "request marked private");
  bool redact = false;
  if (!req.privacy_hits.empty()) {
    std::string names;
    for (const auto& h : req.privacy_hits) names += (names.empty() ? "" : ",") + h;
    if (policy.privacy.mode == PrivacyMode::kLocalOnly)
      return local("privacy_pattern", "text matched privacy patterns: " + names);
    redact = true;
  }

  const int64_t need = req.prompt_tokens + req.max_tokens;
  auto try_remote = [&](const Backend& b, std::string* why_not) -> bool {
    if (b.kind != BackendKind::kRemote) {
      *why_not = b.name + " is not remote";
      return false;
    }
    if (!b.disabled_reason.empty()) {
      *why_not = b.name + " disabled: " + b.disabled_reason;
      return false;
    }
    if (b.context_length > 0 && need > b.context_length) {
      *why_not = b.name + " context " + std::to_string(b.context_length) + " < " +
                 std::to_string(need) + " tokens";
      return false;
    }
    if (Status s = budget_fits(b); !s.ok()) {
      *why_not = "budget: " + s.message();
      return false;
    }
    return true;
  };
  auto remote = [&](const Backend& b, std::string reason, std::string detail) {
    RouteDecision d;
    d.backend = b.name;
    d.remote = true;
    d.redact = redact;
    d.reason = std::move(reason);
    d.detail = std::move(detail);
    return d;
  };
  auto allowed = [&](const std::string& name) {
    for (const auto& n : area->backends)
      if (n == name) return true;
    return false;
  };

  // (2) A pinned backend.
  if (req.pinned) {
    const Backend* b = policy.FindBackend(*req.pinned);
    if (!b) return Status::InvalidArgument("no backend named '" + *req.pinned + "'");
    if (b->kind == BackendKind::kLocal) return local("requested", "model requested by name");
    if (!allowed(b->name))
      return local("not_allowed", b->name + " is not allowed in area '" + area->name + "'");
    std::string why_not;
    if (try_remote(*b, &why_not)) return remote(*b, "requested", "model requested by name");
    return local(why_not.rfind("budget", 0) == 0 ? "budget" : "unavailable", why_not);
  }

  // (3) Auto: is there a reason to go remote?
  std::string want, want_detail;
  const int64_t local_need =
      (req.local_prompt_tokens > 0 ? req.local_prompt_tokens : req.prompt_tokens) + req.max_tokens;
  if (req.local_context_length > 0 && local_need > req.local_context_length) {
    want = "context";
    want_detail = std::to_string(local_need) + " tokens > local context " +
                  std::to_string(req.local_context_length);
  } else if (req.quality_high) {
    want = "quality";
    want_detail = "quality: high requested";
  } else if (policy.hard_prompt_tokens > 0 && req.prompt_tokens >= policy.hard_prompt_tokens) {
    want = "difficulty";
    want_detail = "prompt of ~" + std::to_string(req.prompt_tokens) + " tokens";
  } else if (area->latency_target_ms > 0) {
    const Backend* lb = policy.FindBackend(LocalBackendName(policy));
    const double tps = lb && lb->tokens_per_s > 0 ? lb->tokens_per_s : 0;
    if (tps > 0) {
      const double est_ms = 1000.0 * static_cast<double>(req.max_tokens) / tps;
      if (est_ms > static_cast<double>(area->latency_target_ms)) {
        want = "latency";
        want_detail = "local estimate " + std::to_string(static_cast<int64_t>(est_ms)) +
                      " ms > target " + std::to_string(area->latency_target_ms) + " ms";
      }
    }
  }
  if (want.empty()) return local("default", "local model suffices");
  std::string why_not = "no remote backend allowed in area '" + area->name + "'";
  for (const auto& name : area->backends) {
    const Backend* b = policy.FindBackend(name);
    if (!b || b->kind != BackendKind::kRemote) continue;
    if (try_remote(*b, &why_not)) return remote(*b, want, want_detail);
  }
  return local(why_not.rfind("budget", 0) == 0 ? "budget" : "no_remote",
               want_detail + "; stays local: " + why_not);
}

}  // namespace pocket::router
