// The one place where a failure becomes an HTTP status and an OpenAI-style error body:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "..."}}
// `code` (OpenAI's error code, e.g. "context_length_exceeded", "model_not_found") picks the
// HTTP status when it has one of its own; otherwise the StatusCode does. Thread safety: pure.
#pragma once

#include <string>

#include "base/status.h"

namespace pocket::server {

struct HttpError {
  int status = 500;
  std::string type;  // OpenAI error type
  std::string body;  // JSON
};

// Codes with their own HTTP status: request_too_large 413, request_timeout 408,
// headers_too_large 431, rate_limit_exceeded 429, budget_exceeded 429,
// model_not_found 404, not_found 404, invalid_api_key 401, method_not_allowed 405,
// server_overloaded 503, upstream_error 502. Otherwise: InvalidArgument/NotSupported 400,
// NotFound 404, ResourceExhausted 429, IOError 502, Cancelled 499, the rest 500.
HttpError ToHttpError(const Status& status, const std::string& code = "",
                      const std::string& param = "");

// For failures the HTTP layer detects before any handler runs (413, 408, 431, 400, 503).
std::string HttpLayerErrorBody(int http_status, const std::string& message);

}  // namespace pocket::server
