// Server-sent events parsing (sse.h): bytes in, complete events out.
#include "net/sse.h"

namespace pocket::net {

Status SseParser::Feed(std::string_view bytes, const EventFn& on_event) {
  for (const char ch : bytes) {
    const bool was_cr = after_cr_;
    after_cr_ = ch == '\r';
    if (ch == '\n' && was_cr) continue;  // the LF of a CRLF whose CR ended the line
    if (ch == '\r' || ch == '\n') {
      bool stop = false;
      PK_RETURN_IF_ERROR(EndLine(on_event, &stop));
      if (stop) return Status::Cancelled("sse: stopped by the event handler");
      continue;
    }
    if (line_.size() >= max_event_bytes_)
      return Status::Corruption("sse: a line is longer than " + std::to_string(max_event_bytes_) +
                                " bytes");
    line_ += ch;
  }
  return Status::Ok();
}

Status SseParser::EndLine(const EventFn& on_event, bool* stop) {
  std::string line = std::move(line_);
  line_.clear();
  if (line.empty()) {  // a blank line dispatches the event, if it had data
    if (!has_data_) return Status::Ok();
    std::string data = std::move(data_);
    data_.clear();
    has_data_ = false;
    *stop = !on_event(data);
    return Status::Ok();
  }
  if (line[0] == ':') return Status::Ok();  // comment (keep-alive pings)
  const size_t colon = line.find(':');
  const std::string_view field = std::string_view(line).substr(0, colon);
  if (field != "data") return Status::Ok();
  std::string_view value;
  if (colon != std::string::npos) {
    value = std::string_view(line).substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (data_.size() + value.size() + 1 > max_event_bytes_)
    return Status::Corruption("sse: an event is longer than " + std::to_string(max_event_bytes_) +
                              " bytes");
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
  return Status::Ok();
}

}  // namespace pocket::net
