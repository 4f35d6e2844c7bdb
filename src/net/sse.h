// Incremental parser of a Server-Sent Events body (the WHATWG HTML "event stream"
// format) as OpenAI-compatible servers stream it: lines end in LF, CRLF or CR; a line
// starting with ':' is a comment; "data:" lines (one optional space after the colon) are
// joined with '\n' into one event, which ends at a blank line; other fields (event, id,
// retry) are ignored. Bytes may be cut anywhere, also inside a CRLF, between Feed() calls.
// Used by router::Router::CallRemoteStream on the bytes HttpFetchStream delivers.
// Thread safety: one parser per stream; not shared.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace pocket::net {

class SseParser {
 public:
  // Called with the data of each complete event; return false to stop parsing.
  using EventFn = std::function<bool(std::string_view data)>;

  // REQUIRES: max_event_bytes > 0. A line or event over it is Corruption (a peer that
  // never sends a line end must not grow memory without bound).
  explicit SseParser(size_t max_event_bytes = 4u << 20) : max_event_bytes_(max_event_bytes) {}

  // Parses `bytes`, calling `on_event` for each event completed by them. Cancelled when
  // `on_event` returned false (the rest of `bytes` is dropped); Corruption "sse: ..." when
  // a line or an event is over the limit.
  Status Feed(std::string_view bytes, const EventFn& on_event);

 private:
  Status EndLine(const EventFn& on_event, bool* stop);

  size_t max_event_bytes_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;  // the last byte seen was CR: an LF right after it ends no line
};

}  // namespace pocket::net
