// SseParser: events the same wherever the bytes are cut, comments and blank lines, the
// handler's stop and the size limit.
#include "net/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pocket::net {
namespace {

// Feeds `bytes` to a parser in pieces of `piece` bytes; returns the events' data.
std::vector<std::string> ParseSse(std::string_view bytes, size_t piece) {
  SseParser parser;
  std::vector<std::string> events;
  for (size_t i = 0; i < bytes.size(); i += piece) {
    Status s = parser.Feed(bytes.substr(i, piece), [&](std::string_view d) {
      events.emplace_back(d);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return events;
}

TEST(SseTest, EventsAreTheSameWhereverTheBytesAreCut) {
  // LF, CRLF and bare CR line ends; a comment; a field that is not data; a multi-line event.
  const std::string stream =
      ": keep-alive\r\n"
      "data: {\"a\":1}\r\n\r\n"
      "event: message\n"
      "data: {\"b\":\n"
      "data:2}\n\n"
      "id: 7\r"
      "data: [DONE]\r\r";
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":\n2}", "[DONE]"};
  for (size_t piece = 1; piece <= stream.size(); ++piece)
    EXPECT_EQ(ParseSse(stream, piece), want) << "pieces of " << piece << " bytes";
  // Every single cut point, CRLF split between the two pieces included.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser parser;
    std::vector<std::string> got;
    auto keep = [&](std::string_view d) {
      got.emplace_back(d);
      return true;
    };
    ASSERT_TRUE(parser.Feed(std::string_view(stream).substr(0, cut), keep).ok());
    ASSERT_TRUE(parser.Feed(std::string_view(stream).substr(cut), keep).ok());
    EXPECT_EQ(got, want) << "cut at " << cut;
  }
}

TEST(SseTest, BlankLinesWithoutDataAndCommentsMakeNoEvent) {
  EXPECT_TRUE(ParseSse("\n\n: ping\n\n:another\r\n\r\nevent: x\n\n", 3).empty());
  // "data" with no colon is an empty data line; one space after the colon is dropped, not two.
  EXPECT_EQ(ParseSse("data\n\ndata:  x\n\n", 1), (std::vector<std::string>{"", " x"}));
}

TEST(SseTest, HandlerCanStopAndOversizedEventsAreCorruption) {
  SseParser parser;
  int seen = 0;
  Status s = parser.Feed("data: 1\n\ndata: 2\n\n", [&](std::string_view) { return ++seen < 1; });
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_EQ(seen, 1);
  SseParser small(16);
  auto ignore = [](std::string_view) { return true; };
  EXPECT_EQ(small.Feed(std::string(40, 'x'), ignore).code(), StatusCode::kCorruption);
  SseParser small_event(16);
  EXPECT_EQ(small_event.Feed("data: 0123456789\ndata: 0123456789\n", ignore).code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace pocket::net
