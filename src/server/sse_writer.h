// Server-sent events as OpenAI's streaming API frames them: every event is one
// "data: <json>\n\n", a stream ends with "data: [DONE]\n\n", and a failure after the
// headers went out is an error body sent as one more event before [DONE]. Used by the
// local and the remote (proxied) streams and by the handler boundary (Server::Contain).
// Thread safety: pure functions; an Exchange is written by one thread at a time.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "net/http_server.h"

namespace pocket::server {

// "data: " + Dump(event) + "\n\n".
std::string SseEvent(const nlohmann::json& event);
// "data: " + data + "\n\n", for a body already serialised (an OpenAI error body).
std::string SseData(const std::string& data);
// "data: [DONE]\n\n".
std::string SseDone();
// The headers a stream starts with: event-stream, no-cache, x-pocket-route, x-request-id.
net::Headers SseHeaders(const std::string& route_header, const std::string& request_id);
// Ends a stream under way: `error_body` as an event, [DONE], End().
void EndStreamWithError(net::Exchange& ex, const std::string& error_body);

}  // namespace pocket::server
