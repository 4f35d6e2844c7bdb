#include "server/errors.h"

#include <nlohmann/json.hpp>

namespace pocket::server {

HttpError ToHttpError(const Status& status, const std::string& code, const std::string& param) {
  HttpError e;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotSupported: e.status = 400; break;
    case StatusCode::kNotFound: e.status = 404; break;
    case StatusCode::kResourceExhausted: e.status = 429; break;
    case StatusCode::kIOError: e.status = 502; break;
    case StatusCode::kCancelled: e.status = 499; break;
    default: e.status = 500; break;
  }
  static const std::pair<const char*, int> kByCode[] = {
      {"request_too_large", 413}, {"request_timeout", 408},    {"headers_too_large", 431},
      {"rate_limit_exceeded", 429}, {"budget_exceeded", 429},  {"model_not_found", 404},
      {"not_found", 404},           {"invalid_api_key", 401}, {"method_not_allowed", 405},
      {"server_overloaded", 503},   {"upstream_error", 502},
  };
  for (const auto& [c, s] : kByCode)
    if (code == c) e.status = s;
  switch (e.status) {
    case 401: e.type = "authentication_error"; break;
    case 404: e.type = code == "model_not_found" ? "invalid_request_error" : "not_found_error"; break;
    case 429: e.type = code == "budget_exceeded" ? "insufficient_quota" : "rate_limit_error"; break;
    case 500: case 502: case 503: e.type = "server_error"; break;
    default: e.type = "invalid_request_error"; break;
  }
  nlohmann::json err = {{"message", status.message()},
                        {"type", e.type},
                        {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                        {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}};
  e.body = nlohmann::json{{"error", err}}.dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace);
  return e;
}

std::string HttpLayerErrorBody(int http_status, const std::string& message) {
  std::string code;
  switch (http_status) {
    case 413: code = "request_too_large"; break;
    case 408: code = "request_timeout"; break;
    case 431: code = "headers_too_large"; break;
    case 429: code = "rate_limit_exceeded"; break;
    case 503: code = "server_overloaded"; break;
    default: break;
  }
  return ToHttpError(Status::InvalidArgument(message), code).body;
}

}  // namespace pocket::server
