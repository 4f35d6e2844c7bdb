// SSE framing of sse_writer.h.
#include "server/sse_writer.h"

#include "server/openai_json.h"

namespace pocket::server {

std::string SseEvent(const nlohmann::json& event) { return "data: " + Dump(event) + "\n\n"; }

std::string SseData(const std::string& data) { return "data: " + data + "\n\n"; }

std::string SseDone() { return "data: [DONE]\n\n"; }

net::Headers SseHeaders(const std::string& route_header, const std::string& request_id) {
  return {{"Content-Type", "text/event-stream"},
          {"Cache-Control", "no-cache"},
          {"x-pocket-route", route_header},
          {"x-request-id", request_id}};
}

void EndStreamWithError(net::Exchange& ex, const std::string& error_body) {
  ex.Write(SseData(error_body));
  ex.Write(SseDone());
  ex.End();
}

}  // namespace pocket::server
