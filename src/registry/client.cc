// The registry client (see client.h): remote references, authentication on 401, redirects
// and retries around net::HttpFetch.
#include "registry/client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "registry/auth.h"
#include "registry/oci.h"

namespace pocket::registry {
namespace {

std::string Authority(const std::string& url) {
  auto u = net::ParseUrl(url);
  return u.ok() ? u->host + ":" + u->port : "";
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Location may be absolute or a path on the server that sent it.
std::string ResolveLocation(const std::string& base, const std::string& location) {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  const size_t scheme_end = base.find("://");
  const size_t path_start = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  const std::string origin = base.substr(0, path_start);
  if (!location.empty() && location[0] == '/') return origin + location;
  return origin + "/" + location;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

std::string RemoteRef::ToString() const {
  std::string s = host + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

bool IsLoopbackHost(std::string_view host) {
  std::string_view h = host;
  if (!h.empty() && h[0] == '[') {  // [::1]:5000
    const size_t close = h.find(']');
    h = h.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
    return h == "::1";
  }
  if (const size_t colon = h.find(':'); colon != std::string_view::npos) h = h.substr(0, colon);
  return h == "localhost" || h.rfind("127.", 0) == 0;
}

Result<RemoteRef> ParseRemoteRef(std::string_view text, std::string_view default_host) {
  RemoteRef r;
  std::string_view rest = text;
  if (const size_t at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!IsValidDigest(r.digest)) {
      return Status::InvalidArgument("'" + std::string(text.substr(0, 200)) +
                                     "': the digest after '@' must be sha256: and 64 hex digits");
    }
  }
  const size_t slash = rest.find('/');
  const std::string_view first = rest.substr(0, slash);
  const bool has_host = slash != std::string_view::npos &&
                        (first.find('.') != std::string_view::npos ||
                         first.find(':') != std::string_view::npos || first == "localhost");
  if (has_host) {
    r.host = std::string(first);
    rest = rest.substr(slash + 1);
  } else if (!default_host.empty()) {
    r.host = std::string(default_host);
  } else {
    return Status::InvalidArgument(
        "'" + std::string(text.substr(0, 200)) +
        "' names no registry: write HOST[:PORT]/NAME[:TAG] (e.g. 127.0.0.1:5000/team/tiny:v1) "
        "or set POCKET_REGISTRY");
  }
  PK_ASSIGN_OR_RETURN(ModelRef repo, ParseModelRef(rest));
  const bool tag_given =
      rest.rfind(':') != std::string_view::npos &&
      rest.rfind(':') > (rest.rfind('/') == std::string_view::npos ? 0 : rest.rfind('/'));
  r.repository = repo.name;
  r.tag = (tag_given || r.digest.empty()) ? repo.tag : "";
  r.local.name = r.host + "/" + r.repository;
  r.local.tag = !r.tag.empty() ? r.tag : "sha256-" + std::string(DigestHex(r.digest));
  // The host goes into a stored name: it must fit the name grammar (lower case, a port).
  if (!IsValidName(r.local.name)) {
    return Status::InvalidArgument("'" + std::string(text.substr(0, 200)) + "': registry host '" +
                                   r.host.substr(0, 100) + "' is not a lower-case host[:port]");
  }
  return r;
}

Result<Credentials> CredentialsFrom(const std::string& user_pass) {
  Credentials c;
  if (!user_pass.empty()) {
    const size_t colon = user_pass.find(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument("--user must be USER:PASSWORD");
    }
    c.user = user_pass.substr(0, colon);
    c.password = user_pass.substr(colon + 1);
    return c;
  }
  if (const char* u = std::getenv("POCKET_REGISTRY_USER")) c.user = u;
  if (const char* p = std::getenv("POCKET_REGISTRY_PASSWORD")) c.password = p;
  return c;
}

bool IsTransientStatus(int http_status) { return http_status >= 500 || http_status == 429; }

bool IsTransient(const Status& status) {
  if (status.code() != StatusCode::kIOError) return false;
  const std::string& m = status.message();
  for (const char* marker : {"timeout: ", "reset: ", "unreachable: ", "HTTP 5", "HTTP 429"}) {
    if (m.find(marker) != std::string::npos) return true;
  }
  return false;
}

RegistryClient::RegistryClient(std::string host, ClientOptions options)
    : host_(std::move(host)), options_(std::move(options)) {
  const bool plain = options_.insecure || IsLoopbackHost(host_);
  base_url_ = (plain ? "http://" : "https://") + host_;
}

std::string RegistryClient::Where(std::string_view what) const {
  return "registry " + host_ + ": " + std::string(what);
}

std::string RegistryClient::Absolute(const std::string& url) const {
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) return url;
  return ResolveLocation(base_url_, url);
}

Status RegistryClient::Authenticate(const net::FetchResponse& unauthorized,
                                    const std::string& url) {
  const std::string header = unauthorized.Header("WWW-Authenticate");
  const std::string who =
      options_.credentials.empty()
          ? "no credentials given (set POCKET_REGISTRY_USER and POCKET_REGISTRY_PASSWORD, or "
            "--user USER:PASSWORD)"
          : "the credentials of user '" + options_.credentials.user + "' were refused";
  auto fail = [&](const std::string& why) {
    return Status::IOError(Where("401 Unauthorized for " + url + ": " + why));
  };
  if (header.empty()) return fail(who);
  auto challenge = ParseChallenge(header, Where("challenge"));
  if (!challenge.ok()) return fail(challenge.status().message());
  auto scope = challenge->params.find("scope");
  const std::string key =
      challenge->scheme + " " + (scope == challenge->params.end() ? "" : scope->second);
  const auto now = std::chrono::steady_clock::now();
  if (auto it = challenges_.find(key);
      it != challenges_.end() &&
      now - it->second < std::chrono::milliseconds(options_.reauth_after_ms)) {
    return fail(who);
  }
  challenges_[key] = now;
  if (challenge->scheme == "basic") {
    if (options_.credentials.empty()) return fail(who);
    authorization_ = BasicAuthorization(options_.credentials.user, options_.credentials.password);
    return Status::Ok();
  }
  if (challenge->scheme != "bearer") {
    return fail("unsupported authentication scheme '" + challenge->scheme.substr(0, 40) + "'");
  }
  auto realm = challenge->params.find("realm");
  if (realm == challenge->params.end() || realm->second.empty()) {
    return fail("Bearer challenge without a realm");
  }
  // The credentials go to the realm: never in clear text when the registry itself is https.
  if (base_url_.rfind("https://", 0) == 0 && realm->second.rfind("https://", 0) != 0) {
    return fail("the token realm '" + realm->second.substr(0, 100) + "' is not https");
  }
  std::string token_url = realm->second;
  char sep = token_url.find('?') == std::string::npos ? '?' : '&';
  for (const char* name : {"service", "scope"}) {
    auto it = challenge->params.find(name);
    if (it == challenge->params.end()) continue;
    token_url += sep + std::string(name) + "=" + PercentEncode(it->second);
    sep = '&';
  }
  net::FetchRequest req;
  req.url = token_url;
  req.timeout_ms = options_.timeout_ms;
  req.ca_file = options_.ca_file;
  req.max_response_bytes = 1 << 20;
  if (!options_.credentials.empty()) {
    req.headers.push_back({"Authorization", BasicAuthorization(options_.credentials.user,
                                                               options_.credentials.password)});
  }
  auto res = net::HttpFetch(req);
  if (!res.ok())
    return Status::IOError(Where("token from " + realm->second + ": " + res.status().message()));
  if (res->status != 200) {
    return fail("the token service " + realm->second + " answered HTTP " +
                std::to_string(res->status) + "; " + who);
  }
  PK_ASSIGN_OR_RETURN(std::string token,
                      ParseTokenResponse(res->body, Where("token from " + realm->second)));
  authorization_ = "Bearer " + token;
  return Status::Ok();
}

Result<net::FetchResponse> RegistryClient::Exchange(net::FetchRequest request,
                                                    const net::BodyChunkFn* on_body,
                                                    const net::ResponseHeadFn* on_head) {
  std::string url = Absolute(request.url);
  const std::string home = Authority(base_url_);
  for (int redirects = 0;;) {
    net::FetchRequest r = request;
    r.url = url;
    if (r.ca_file.empty()) r.ca_file = options_.ca_file;
    const bool same_host = Authority(url) == home;
    if (same_host && !authorization_.empty())
      r.headers.push_back({"Authorization", authorization_});
    Result<net::FetchResponse> res = Status::Internal("unset");
    if (on_body) {
      net::ResponseHeadFn head = [&](int status, const auto& headers) {
        if (status == 401 || IsRedirect(status)) return true;
        return on_head && *on_head ? (*on_head)(status, headers) : true;
      };
      res = net::HttpFetchStream(r, *on_body, head);
    } else {
      res = net::HttpFetch(r);
    }
    if (!res.ok()) return Status(res.status().code(), Where(res.status().message()));
    if (res->status == 401 && same_host) {
      PK_RETURN_IF_ERROR(Authenticate(*res, url));
      continue;
    }
    if (on_body && IsRedirect(res->status) && !res->Header("Location").empty()) {
      if (++redirects > kMaxRedirects) {
        return Status::IOError(
            Where("more than " + std::to_string(kMaxRedirects) + " redirects for " + request.url));
      }
      url = ResolveLocation(url, res->Header("Location"));
      continue;
    }
    return res;
  }
}

Result<net::FetchResponse> RegistryClient::Fetch(net::FetchRequest request) {
  return Exchange(std::move(request), nullptr, nullptr);
}

Result<net::FetchResponse> RegistryClient::FetchStream(net::FetchRequest request,
                                                       const net::BodyChunkFn& on_body,
                                                       const net::ResponseHeadFn& on_head) {
  return Exchange(std::move(request), &on_body, &on_head);
}

Status RegistryClient::WithRetries(
    const std::function<Status()>& attempt,
    const std::function<void(const Status&, int, int64_t)>& on_retry) const {
  const int max_attempts = std::max(1, options_.retry.max_attempts);
  for (int i = 1;; ++i) {
    Status s = attempt();
    if (s.ok() || !IsTransient(s) || i >= max_attempts) return s;
    const int64_t wait_ms =
        std::min(options_.retry.backoff_ms << (i - 1), options_.retry.backoff_ms * 8);
    if (on_retry) on_retry(s, i, wait_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

void TransferProgress::Emit(TransferEvent::Kind kind, const std::string& digest,
                            std::string message, int64_t resumed) const {
  if (!sink) return;
  TransferEvent e;
  e.kind = kind;
  e.digest = digest;
  e.done_bytes = done;
  e.total_bytes = total;
  e.resumed_bytes = resumed;
  e.message = std::move(message);
  sink(e);
}

void TransferProgress::Retry(const std::string& digest, const Status& why, int attempt,
                             int64_t wait_ms) const {
  Emit(TransferEvent::Kind::kRetry, digest,
       "attempt " + std::to_string(attempt) + " failed (" + why.message() + "); retrying in " +
           std::to_string(wait_ms) + " ms");
}

}  // namespace pocket::registry
