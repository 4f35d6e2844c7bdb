#include "router/policy.h"

#include <cstdlib>
#include <toml++/toml.h>

#include <sstream>

#include "base/file.h"

namespace pocket::router {
namespace {

// Reads tables of the form [section.<name>] into (name, table) pairs, or an array of
// tables [[section]] with a `name` key. Both spellings are accepted.
struct Ctx {
  const EnvLookup& env;
  std::string where;
};

Status TypeError(const std::string& where, const std::string& key, const char* want) {
  return Status::InvalidArgument(where + "." + key + ": expected " + want);
}

Result<std::optional<std::string>> GetString(const toml::table& t, const std::string& key,
                                             const Ctx& ctx, bool expand = true) {
  const toml::node* n = t.get(key);
  if (!n) return std::optional<std::string>();
  const auto* s = n->as_string();
  if (!s) return TypeError(ctx.where, key, "a string");
  if (!expand) return std::optional<std::string>(s->get());
  auto expanded = ExpandEnv(s->get(), ctx.env);
  if (!expanded.ok()) return expanded.status().WithContext(ctx.where + "." + key);
  return std::optional<std::string>(std::move(*expanded));
}

Result<std::optional<double>> GetNumber(const toml::table& t, const std::string& key,
                                        const Ctx& ctx) {
  const toml::node* n = t.get(key);
  if (!n) return std::optional<double>();
  if (const auto* i = n->as_integer()) return std::optional<double>(static_cast<double>(i->get()));
  if (const auto* f = n->as_floating_point()) return std::optional<double>(f->get());
  if (const auto* s = n->as_string()) {  // "${PRICE}" style values
    auto expanded = ExpandEnv(s->get(), ctx.env);
    if (!expanded.ok()) return expanded.status().WithContext(ctx.where + "." + key);
    char* end = nullptr;
    const double v = std::strtod(expanded->c_str(), &end);
    if (expanded->empty() || *end != '\0') return TypeError(ctx.where, key, "a number");
    return std::optional<double>(v);
  }
  return TypeError(ctx.where, key, "a number");
}

Status ReadNumber(const toml::table& t, const std::string& key, const Ctx& ctx, double* out) {
  PK_ASSIGN_OR_RETURN(auto v, GetNumber(t, key, ctx));
  if (v) {
    if (*v < 0) return Status::InvalidArgument(ctx.where + "." + key + ": must not be negative");
    *out = *v;
  }
  return Status::Ok();
}

Status ReadInt(const toml::table& t, const std::string& key, const Ctx& ctx, int64_t* out) {
  double d = static_cast<double>(*out);
  PK_RETURN_IF_ERROR(ReadNumber(t, key, ctx, &d));
  if (d > 9.0e15) return Status::InvalidArgument(ctx.where + "." + key + ": too large");
  *out = static_cast<int64_t>(d);
  return Status::Ok();
}

Status ReadBudget(const toml::table& t, const Ctx& ctx, Budget* b) {
  PK_RETURN_IF_ERROR(ReadNumber(t, "budget_day_usd", ctx, &b->day_usd));
  PK_RETURN_IF_ERROR(ReadNumber(t, "budget_month_usd", ctx, &b->month_usd));
  PK_RETURN_IF_ERROR(ReadInt(t, "budget_day_tokens", ctx, &b->day_tokens));
  PK_RETURN_IF_ERROR(ReadInt(t, "budget_month_tokens", ctx, &b->month_tokens));
  return Status::Ok();
}

// Collects named sub-tables: [backends.local] or [[backends]] name = "local".
Result<std::vector<std::pair<std::string, const toml::table*>>> NamedTables(
    const toml::table& root, const std::string& key, const std::string& source) {
  std::vector<std::pair<std::string, const toml::table*>> out;
  const toml::node* n = root.get(key);
  if (!n) return out;
  if (const auto* t = n->as_table()) {
    for (const auto& [k, v] : *t) {
      const auto* sub = v.as_table();
      if (!sub) return Status::InvalidArgument(source + ": " + key + "." + std::string(k.str()) +
                                               ": expected a table");
      out.emplace_back(std::string(k.str()), sub);
    }
    return out;
  }
  if (const auto* a = n->as_array()) {
    for (size_t i = 0; i < a->size(); ++i) {
      const auto* sub = a->get(i)->as_table();
      const std::string where = source + ": " + key + "[" + std::to_string(i) + "]";
      if (!sub) return Status::InvalidArgument(where + ": expected a table");
      const auto* name = sub->get("name");
      if (!name || !name->as_string() || name->as_string()->get().empty())
        return Status::InvalidArgument(where + ": needs a name");
      out.emplace_back(name->as_string()->get(), sub);
    }
    return out;
  }
  return Status::InvalidArgument(source + ": " + key + ": expected a table or array of tables");
}

Status ParseBackend(const std::string& name, const toml::table& t, const Ctx& ctx,
                    Backend* b) {
  b->name = name;
  const Ctx lenient{ctx.env, ctx.where};
  PK_ASSIGN_OR_RETURN(auto kind, GetString(t, "kind", ctx, false));
  if (!kind || *kind == "local") {
    b->kind = BackendKind::kLocal;
  } else if (*kind == "openai" || *kind == "remote") {
    b->kind = BackendKind::kRemote;
  } else {
    return Status::InvalidArgument(ctx.where + ".kind: '" + *kind +
                                   "' is not one of local, openai");
  }
  // Environment references in a remote backend's URL or key may be unset: the backend is
  // then disabled (and says why) instead of failing the whole policy, so the shipped
  // example works on a machine with no cloud configured.
  auto soft = [&](const char* key, std::string* out) -> Status {
    auto v = GetString(t, key, lenient);
    if (!v.ok()) {
      if (b->kind == BackendKind::kRemote && v.status().message().find("is not set") !=
                                                 std::string::npos) {
        if (b->disabled_reason.empty()) b->disabled_reason = v.status().message();
        return Status::Ok();
      }
      return v.status();
    }
    if (*v) *out = **v;
    return Status::Ok();
  };
  PK_RETURN_IF_ERROR(soft("model", &b->model));
  PK_RETURN_IF_ERROR(soft("base_url", &b->base_url));
  PK_RETURN_IF_ERROR(soft("api_key", &b->api_key));
  PK_RETURN_IF_ERROR(soft("ca_file", &b->ca_file));
  PK_RETURN_IF_ERROR(ReadNumber(t, "price_input_per_1k", ctx, &b->price_input_per_1k));
  PK_RETURN_IF_ERROR(ReadNumber(t, "price_output_per_1k", ctx, &b->price_output_per_1k));
  PK_RETURN_IF_ERROR(ReadInt(t, "context_length", ctx, &b->context_length));
  PK_RETURN_IF_ERROR(ReadInt(t, "timeout_ms", ctx, &b->timeout_ms));
  PK_RETURN_IF_ERROR(ReadInt(t, "stream_timeout_ms", ctx, &b->stream_timeout_ms));
  PK_RETURN_IF_ERROR(ReadNumber(t, "tokens_per_s", ctx, &b->tokens_per_s));
  if (b->kind == BackendKind::kRemote) {
    if (b->base_url.empty() && b->disabled_reason.empty())
      return Status::InvalidArgument(ctx.where + ": a remote backend needs base_url");
    if (b->model.empty() && b->disabled_reason.empty())
      return Status::InvalidArgument(ctx.where + ": a remote backend needs model");
    if (b->timeout_ms <= 0) return Status::InvalidArgument(ctx.where + ".timeout_ms: must be > 0");
    if (b->stream_timeout_ms <= 0)
      return Status::InvalidArgument(ctx.where + ".stream_timeout_ms: must be > 0");
  }
  return Status::Ok();
}

}  // namespace

const Backend* Policy::FindBackend(std::string_view name) const {
  for (const auto& b : backends)
    if (b.name == name) return &b;
  return nullptr;
}

const Area* Policy::FindArea(std::string_view name) const {
  for (const auto& a : areas)
    if (a.name == name) return &a;
  return nullptr;
}

const Backend* Policy::FindBackendByModel(std::string_view model) const {
  if (const Backend* b = FindBackend(model)) return b;
  for (const auto& b : backends)
    if (b.kind == BackendKind::kRemote && b.model == model) return &b;
  return nullptr;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Result<std::string> ExpandEnv(std::string_view text, const EnvLookup& env) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos)
        return Status::InvalidArgument("unterminated ${ in '" + std::string(text) + "'");
      std::string_view inner = text.substr(i + 2, close - i - 2);
      std::optional<std::string> fallback;
      if (size_t d = inner.find(":-"); d != std::string_view::npos) {
        fallback = std::string(inner.substr(d + 2));
        inner = inner.substr(0, d);
      }
      const std::string name(inner);
      if (name.empty()) return Status::InvalidArgument("empty ${} in '" + std::string(text) + "'");
      auto v = env ? env(name) : std::nullopt;
      if (v && !v->empty()) {
        out += *v;
      } else if (fallback) {
        out += *fallback;
      } else {
        return Status::InvalidArgument("environment variable " + name + " is not set");
      }
      i = close + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

Result<Policy> ParsePolicy(std::string_view toml_text, const EnvLookup& env,
                           std::string_view source_name) {
  const std::string source(source_name);
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return Status::InvalidArgument(msg.str());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(source + ": " + e.what());
  }
  Policy p;
  const Ctx top{env, source};
  PK_ASSIGN_OR_RETURN(auto ledger, GetString(root, "ledger", top));
  if (ledger) p.ledger_path = *ledger;
  PK_ASSIGN_OR_RETURN(auto default_area, GetString(root, "default_area", top));
  if (default_area) p.default_area = *default_area;
  PK_RETURN_IF_ERROR(ReadInt(root, "hard_prompt_tokens", top, &p.hard_prompt_tokens));

  PK_ASSIGN_OR_RETURN(auto backends, NamedTables(root, "backends", source));
  for (const auto& [name, t] : backends) {
    Backend b;
    PK_RETURN_IF_ERROR(ParseBackend(name, *t, Ctx{env, source + ": backends." + name}, &b));
    if (p.FindBackend(name)) return Status::InvalidArgument(source + ": backend '" + name + "' twice");
    p.backends.push_back(std::move(b));
  }
  if (p.backends.empty()) {
    Backend local;
    local.name = "local";
    p.backends.push_back(std::move(local));
  }

  PK_ASSIGN_OR_RETURN(auto areas, NamedTables(root, "areas", source));
  for (const auto& [name, t] : areas) {
    const Ctx ctx{env, source + ": areas." + name};
    Area a;
    a.name = name;
    PK_RETURN_IF_ERROR(ReadBudget(*t, ctx, &a.budget));
    PK_RETURN_IF_ERROR(ReadInt(*t, "latency_target_ms", ctx, &a.latency_target_ms));
    if (const toml::node* n = t->get("backends")) {
      const auto* arr = n->as_array();
      if (!arr) return TypeError(ctx.where, "backends", "an array of backend names");
      for (const auto& e : *arr) {
        const auto* s = e.as_string();
        if (!s) return TypeError(ctx.where, "backends", "an array of backend names");
        if (!p.FindBackend(s->get()))
          return Status::InvalidArgument(ctx.where + ".backends: no backend named '" + s->get() + "'");
        a.backends.push_back(s->get());
      }
    } else {
      for (const auto& b : p.backends) a.backends.push_back(b.name);
    }
    if (p.FindArea(name)) return Status::InvalidArgument(source + ": area '" + name + "' twice");
    p.areas.push_back(std::move(a));
  }
  if (!p.FindArea(p.default_area)) {
    if (!areas.empty())
      return Status::InvalidArgument(source + ": default_area '" + p.default_area +
                                     "' is not one of the areas");
    Area a;
    a.name = p.default_area;
    for (const auto& b : p.backends) a.backends.push_back(b.name);
    p.areas.push_back(std::move(a));
  }

  if (const toml::node* n = root.get("privacy")) {
    const auto* t = n->as_table();
    if (!t) return Status::InvalidArgument(source + ": privacy: expected a table");
    const Ctx ctx{env, source + ": privacy"};
    PK_ASSIGN_OR_RETURN(auto mode, GetString(*t, "mode", ctx));
    if (mode) {
      if (*mode == "local") p.privacy.mode = PrivacyMode::kLocalOnly;
      else if (*mode == "redact") p.privacy.mode = PrivacyMode::kRedactThenSend;
      else return Status::InvalidArgument(ctx.where + ".mode: '" + *mode + "' is not one of local, redact");
    }
    if (const toml::node* d = t->get("default_patterns")) {
      if (!d->as_boolean()) return TypeError(ctx.where, "default_patterns", "true or false");
      p.privacy.default_patterns = d->as_boolean()->get();
    }
    if (const toml::node* pats = t->get("patterns")) {
      const auto* pt = pats->as_table();
      if (!pt) return TypeError(ctx.where, "patterns", "a table of name = \"regex\"");
      for (const auto& [k, v] : *pt) {
        const auto* s = v.as_string();
        if (!s) return TypeError(ctx.where + ".patterns", std::string(k.str()), "a regex string");
        p.privacy.patterns.push_back({std::string(k.str()), s->get()});
      }
    }
  }

  PK_ASSIGN_OR_RETURN(auto keys, NamedTables(root, "api_keys", source));
  for (const auto& [name, t] : keys) {
    const Ctx ctx{env, source + ": api_keys." + name};
    ApiKey k;
    k.name = name;
    PK_ASSIGN_OR_RETURN(auto hash, GetString(*t, "sha256", ctx));
    if (!hash || hash->size() != 64 ||
        hash->find_first_not_of("0123456789abcdef") != std::string::npos)
      return Status::InvalidArgument(ctx.where + ".sha256: expected 64 lower-case hex digits "
                                     "(sha256 of the key; `printf %s KEY | sha256sum`)");
    k.sha256_hex = *hash;
    PK_RETURN_IF_ERROR(ReadBudget(*t, ctx, &k.budget));
    p.api_keys.push_back(std::move(k));
  }
  return p;
}

Result<Policy> LoadPolicy(const std::string& path, const EnvLookup& env) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParsePolicy(*text, env, path);
}

Policy DefaultPolicy() {
  auto p = ParsePolicy("", nullptr);
  PK_CHECK(p.ok());
  return std::move(p).value();
}

}  // namespace pocket::router
