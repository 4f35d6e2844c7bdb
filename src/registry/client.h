// A client of one registry speaking the OCI distribution spec v2: remote references
// (HOST/REPO[:TAG][@DIGEST], Docker's rule for what is a host), the scheme (https, or plain
// http for loopback hosts and --insecure), authentication on demand (anonymous first; on a
// 401, Basic with the given credentials or a Bearer token fetched from the challenge's
// realm, per scope), redirects for blob downloads (up to kMaxRedirects, the Authorization
// header dropped when the host changes: real registries send blob GETs to a storage
// service that must not see the registry's credentials), and retries with exponential
// backoff for transient failures (5xx, 429, reset, timeout, unreachable).
// Called by registry::Pull and registry::Push. Thread safety: a RegistryClient is used by
// one thread (it caches the Authorization it obtained).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http_client.h"
#include "registry/reference.h"

namespace pocket::registry {

inline constexpr int kMaxRedirects = 5;

// HOST/REPO[:TAG][@sha256:HEX]. The first '/'-part is the host when it holds a '.' or a
// ':' or is "localhost" (Docker's rule); without one, `default_host` is used (empty:
// InvalidArgument saying to name a registry). `local` is how the model is stored: the
// whole reference as NAME:TAG (with the host), the tag "sha256-<hex>" for a pull by digest
// alone.
struct RemoteRef {
  std::string host;        // "127.0.0.1:5000", "registry.example.com"
  std::string repository;  // "library/smollm2"
  std::string tag;         // "" when pulled by digest alone
  std::string digest;      // "" unless @sha256:... was given
  ModelRef local;
  std::string ToString() const;  // host/repository[:tag][@digest]
};
Result<RemoteRef> ParseRemoteRef(std::string_view text, std::string_view default_host = "");

// True for hosts that are this machine (localhost, 127.0.0.0/8, ::1), where plain http is
// used without --insecure.
bool IsLoopbackHost(std::string_view host);

struct Credentials {
  std::string user, password;
  bool empty() const { return user.empty() && password.empty(); }
};

// --user USER:PASS when given, else $POCKET_REGISTRY_USER / $POCKET_REGISTRY_PASSWORD
// (either may be unset). InvalidArgument when `user_pass` has no ':' (the password is never
// echoed).
Result<Credentials> CredentialsFrom(const std::string& user_pass);

struct RetryPolicy {
  int max_attempts = 6;      // per request, the first included
  int64_t backoff_ms = 500;  // before the 2nd attempt; doubles, capped at 8x
};

struct ClientOptions {
  Credentials credentials;
  bool insecure = false;  // plain http to a host that is not loopback
  std::string ca_file;    // https: trust this CA file instead of the system's
  RetryPolicy retry;
  int64_t timeout_ms = 60000;  // whole exchange, for everything but blob transfers
  // The same challenge again within this long means the credentials or token were refused;
  // later, a token has expired (registries issue them for minutes; a long pull outlives
  // one) and the challenge is answered again.
  int64_t reauth_after_ms = 30000;
};

// True for failures worth retrying: IOError timeout/reset/unreachable, and (for a
// response) 5xx and 429.
bool IsTransient(const Status& status);
bool IsTransientStatus(int http_status);

class RegistryClient {
 public:
  RegistryClient(std::string host, ClientOptions options);

  const std::string& host() const { return host_; }
  // "https://HOST" or "http://HOST".
  const std::string& base_url() const { return base_url_; }

  // One exchange with authentication: `request.url` is a path on the registry
  // ("/v2/...") or a full URL (an upload Location). A 401 is answered once per challenge
  // (Basic with the credentials, or a Bearer token for the challenge's scope; again once
  // reauth_after_ms has passed, for an expired token) and the request repeated; a 401 that
  // remains is IOError "registry HOST: 401 Unauthorized ..."
  // saying whether credentials were given (never the password). Other statuses are
  // returned as they are.
  Result<net::FetchResponse> Fetch(net::FetchRequest request);
  // Fetch for a GET whose 2xx body is streamed (blobs): also follows redirects. `on_head`
  // sees only the final response's head.
  Result<net::FetchResponse> FetchStream(net::FetchRequest request, const net::BodyChunkFn& on_body,
                                         const net::ResponseHeadFn& on_head);

  // Runs `attempt` up to retry.max_attempts times while it fails transiently, sleeping
  // with exponential backoff in between; `on_retry` (may be empty) hears of each retry.
  Status WithRetries(const std::function<Status()>& attempt,
                     const std::function<void(const Status&, int attempt, int64_t wait_ms)>&
                         on_retry = nullptr) const;

  // "registry HOST: " + what, as one line.
  std::string Where(std::string_view what) const;

 private:
  Result<net::FetchResponse> Exchange(net::FetchRequest request, const net::BodyChunkFn* on_body,
                                      const net::ResponseHeadFn* on_head);
  Status Authenticate(const net::FetchResponse& unauthorized, const std::string& url);
  std::string Absolute(const std::string& url) const;

  std::string host_, base_url_;
  ClientOptions options_;
  std::string authorization_;  // the header value in use, "" = anonymous
  // scheme + scope -> when it was last answered (ClientOptions::reauth_after_ms).
  std::map<std::string, std::chrono::steady_clock::time_point> challenges_;
};

}  // namespace pocket::registry

namespace pocket::registry {

// What pull and push report while they work, for a progress bar or JSON lines. Called on
// the calling thread, often (every piece received): the receiver throttles.
struct TransferEvent {
  enum class Kind { kStart, kProgress, kRetry, kBlobDone, kDone };
  Kind kind = Kind::kProgress;
  std::string digest;         // the blob concerned ("" for start/done)
  int64_t done_bytes = 0;     // of all blobs of the model, including those already there
  int64_t total_bytes = 0;    // config + layers
  int64_t resumed_bytes = 0;  // kBlobDone/kStart: bytes a partial file already held
  std::string message;        // kRetry: why; kBlobDone: "downloaded", "present", ...
};
using TransferFn = std::function<void(const TransferEvent&)>;

// The running totals of one pull or push and where its events go; each owns one.
// Thread safety: owned by one thread.
struct TransferProgress {
  TransferFn sink;    // may be empty
  int64_t done = 0;   // TransferEvent::done_bytes
  int64_t total = 0;  // TransferEvent::total_bytes
  // Sends an event carrying the totals (nothing when sink is empty).
  void Emit(TransferEvent::Kind kind, const std::string& digest, std::string message = "",
            int64_t resumed = 0) const;
  // A kRetry event: "attempt N failed (why); retrying in W ms".
  void Retry(const std::string& digest, const Status& why, int attempt, int64_t wait_ms) const;
};

}  // namespace pocket::registry
