// The privacy classifier on UTF-8 text (patterns match characters, redaction never cuts
// one, invalid input never fails the matcher) and on whole JSON request bodies (every
// field, text split across strings, redaction across boundaries, what cannot be redacted),
// the request privacy classes, and the Router's last check before the wire.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "router/privacy.h"
#include "router/router.h"

namespace pocket::router {
namespace {

using nlohmann::json;

bool Utf8Ok(const std::string& s) { return ValidUtf8(s) == s; }

// The strict serialiser (the default error handler) throws on invalid UTF-8.
bool StrictDumpOk(const json& j) {
  try {
    (void)j.dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

PrivacyClassifier Classifier(std::vector<PrivacyPattern> custom, bool defaults = true) {
  PrivacyRules rules;
  rules.default_patterns = defaults;
  rules.patterns = std::move(custom);
  auto c = PrivacyClassifier::Create(rules);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

TEST(PrivacyUtf8Test, RedactionOfCodenameKeepsZurichWhole) {
  const PrivacyClassifier c = Classifier({{"codename", "Codename: .{2}"}});
  int n = 0;
  const std::string out = c.Redact("Codename: Zürich", &n);
  EXPECT_EQ(out, "[REDACTED:codename]rich");
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(StrictDumpOk(json(out)));
}

TEST(PrivacyUtf8Test, PatternsOfEveryShapeNeverCutACharacter) {
  // 2-byte (ü, é, Ж), 3-byte (中, €, ह), 4-byte (𝄞, 😀, family emoji with ZWJ), combining
  // marks (e + U+0301, Hangul jamo) and a flag (two regional indicators).
  const std::vector<std::string> texts = {"Codename: Zürich",
                                          "Codename: 中文名字",
                                          "Codename: 😀😀 ok",
                                          "Codename: e\xCC\x81t\xC3\xA9",
                                          "Codename: 👨‍👩‍👧 family",
                                          "Codename: 🇩🇪 flag",
                                          "Name: Жанна ह𝄞€",
                                          "ID-ü-42 and ID-中-43",
                                          "x€x€x€",
                                          "plain ascii Codename: ab"};
  const std::vector<PrivacyPattern> shapes = {{"dot2", "Codename: .{2}"},
                                              {"notspace", "[^ ]{3}"},
                                              {"tail", "..$"},
                                              {"lookbehind", "(?<=Name: ).{3}"},
                                              {"class", "ID-[^-]-\\d+"},
                                              {"lazy", "x.*?x"},
                                              {"alt", "ü|中|😀|\xCC\x81"},
                                              {"single", "."}};
  for (const auto& shape : shapes) {
    const PrivacyClassifier c = Classifier({shape}, /*defaults=*/false);
    for (const auto& t : texts) {
      const std::string out = c.Redact(t);
      EXPECT_TRUE(Utf8Ok(out)) << shape.regex << " on " << t << " -> " << out;
      EXPECT_TRUE(StrictDumpOk(json(out))) << shape.regex << " on " << t;
    }
  }
  // "." takes one whole 4-byte character.
  EXPECT_EQ(Classifier({{"one", "^."}}, false).Redact("😀x"), "[REDACTED:one]x");
}

TEST(PrivacyUtf8Test, InvalidUtf8NeverFailsTheMatcherAndComesOutValid) {
  const PrivacyClassifier c = Classifier({{"codename", "Codename: .{2}"}, {"any", "\\xff"}});
  // Stray continuation bytes, a truncated sequence, an overlong '/', a surrogate, past
  // U+10FFFF: each becomes U+FFFD, which is what the serialiser would send.
  for (const std::string t : {"Codename: \xC3", "Codename: \x80\x80zz", "a\xC0\xAF b@example.com",
                              "\xED\xA0\x80", "\xF4\x90\x80\x80 x", "Codename: Z\xC3\xFCrich"}) {
    const std::string out = c.Redact(t);
    EXPECT_TRUE(Utf8Ok(out)) << out;
    EXPECT_TRUE(StrictDumpOk(json(out)));
  }
  EXPECT_EQ(c.Redact("Codename: \xC3!x"), "[REDACTED:codename]x");
  EXPECT_EQ(c.Scan("\xff\xfe bob@example.org"), std::vector<std::string>{"email"});
  // Random bytes: never crash, always valid output.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string t(rng() % 40, '\0');
    for (auto& ch : t) ch = static_cast<char>(rng());
    const std::string out = c.Redact(t);
    ASSERT_TRUE(Utf8Ok(out));
    (void)c.Scan(t);
  }
}

TEST(PrivacyUtf8Test, ManyMatchesInOneTextScanInLinearTime) {
  // PCRE2's per-call UTF check rescanned the whole subject for every match: 60,000 groups
  // of "1234 " took about a minute. Linear, this is well under a second (20 s allows for
  // sanitizers and a loaded machine).
  const PrivacyClassifier c = Classifier({});
  std::string text;
  for (int i = 0; i < 60000; ++i) text += "1234 ";
  const auto t0 = std::chrono::steady_clock::now();
  (void)c.Scan(text);
  (void)c.Redact(text);
  (void)c.ScanJson(json{{"x", text}, {"y", {text, text}}});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 20.0);
}

TEST(PrivacyUtf8Test, ValidUtf8ReplacesOnlyInvalidBytes) {
  EXPECT_EQ(ValidUtf8("Zürich 中 😀"), "Zürich 中 😀");
  EXPECT_EQ(ValidUtf8("a\xC0\xAF"), "a\xEF\xBF\xBD\xEF\xBF\xBD");                // overlong
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(ValidUtf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");  // truncated: one maximal subpart
  EXPECT_EQ(ValidUtf8("\xF0\x9F\x98x"), "\xEF\xBF\xBDx");
  json j = {{"k\xFF", "v\xFE"}, {"list", {"ok", "\xC3"}}};
  SanitizeUtf8(&j);
  EXPECT_TRUE(StrictDumpOk(j));
  EXPECT_EQ(j["list"][1], "\xEF\xBF\xBD");
}

TEST(PrivacyUtf8Test, BackslashCIsRefused) {
  PrivacyRules rules;
  rules.patterns.push_back({"bytes", "Codename: \\C"});
  auto c = PrivacyClassifier::Create(rules);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bytes"), std::string::npos);
}

// A chat body with `pii` planted in one place, as a test case generator.
json ChatWith(const std::string& where, const std::string& pii) {
  json b = {{"model", "auto"},
            {"messages",
             {{{"role", "system"}, {"content", "Be brief."}},
              {{"role", "user"}, {"content", "Hello there"}}}}};
  if (where == "user") b["user"] = pii;
  if (where == "name") b["messages"][1]["name"] = pii;
  if (where == "stop") b["stop"] = {"END", pii};
  if (where == "metadata") b["metadata"] = {{"customer", pii}};
  if (where == "metadata_key") b["metadata"] = {{pii, "x"}};
  if (where == "extra") b["x_extra"] = {{"deep", {{1, {{"deeper", {pii}}}}}}};
  if (where == "tool_args")
    b["messages"].push_back(
        {{"role", "assistant"},
         {"tool_calls",
          {{{"id", "call_1"},
            {"type", "function"},
            {"function", {{"name", "send"}, {"arguments", json{{"to", pii}}.dump()}}}}}}});
  if (where == "tools")
    b["tools"] = {
        {{"type", "function"}, {"function", {{"name", "f"}, {"description", "default " + pii}}}}};
  if (where == "part")
    b["messages"][1]["content"] = {{{"type", "text"}, {"text", "see "}},
                                   {{"type", "text"}, {"text", pii}}};
  return b;
}

TEST(PrivacyJsonTest, ScanFindsPiiInEveryField) {
  const PrivacyClassifier c = Classifier({{"project", "PROJECT-ZEUS"}});
  for (const std::string where : {"user", "name", "stop", "metadata", "metadata_key", "extra",
                                  "tool_args", "tools", "part"}) {
    EXPECT_EQ(c.ScanJson(ChatWith(where, "jane.doe@example.com")),
              std::vector<std::string>{"email"})
        << where;
    EXPECT_EQ(c.ScanJson(ChatWith(where, "about PROJECT-ZEUS")),
              std::vector<std::string>{"project"})
        << where;
  }
  EXPECT_TRUE(c.ScanJson(ChatWith("user", "nobody")).empty());
  // A card number written as a JSON number is still sent.
  json num = ChatWith("", "");
  num["metadata"] = {{"acct", 4111111111111111}};
  EXPECT_EQ(c.ScanJson(num), std::vector<std::string>{"card"});
}

TEST(PrivacyJsonTest, ScanFindsTextSplitAcrossPartsMessagesAndFields) {
  const PrivacyClassifier c = Classifier({});
  json parts = {{"messages",
                 {{{"role", "user"},
                   {"content",
                    {{{"type", "text"}, {"text", "mail jane.doe@exa"}},
                     {{"type", "text"}, {"text", "mple.com now"}}}}}}}};
  EXPECT_EQ(c.ScanJson(parts), std::vector<std::string>{"email"});
  json messages = {{"messages",
                    {{{"role", "user"}, {"content", "card 4111 1111 "}},
                     {{"role", "user"}, {"content", "1111 1111 thanks"}}}}};
  const auto hits = c.ScanJson(messages);
  EXPECT_NE(std::find(hits.begin(), hits.end(), "card"), hits.end());
  json stop = {{"stop", {"sk-abcdefgh", "ijklmnopqrst"}}};
  EXPECT_EQ(c.ScanJson(stop), std::vector<std::string>{"api_key"});
  // A neighbour that would hide the start or the end of a split value (a lookbehind, a
  // \b) does not: each pair of consecutive strings is also scanned as a text of its own.
  json glued = {{"metadata", {{"a", "notes"}}}, {"stop", {"(030) 12", "34-5678"}}};
  EXPECT_EQ(c.ScanJson(glued), std::vector<std::string>{"phone"});
  json ssn = {{"messages", {{{"role", "user"}, {"content", "thanks"}}}},
              {"stop", {"778-52-", "4674"}},
              {"user", "please"}};
  EXPECT_EQ(c.ScanJson(ssn), std::vector<std::string>{"us_ssn"});
  ASSERT_TRUE(c.RedactJson(&ssn));
  EXPECT_EQ(ssn["stop"], json({"[REDACTED:us_ssn]", "[REDACTED:us_ssn]"}));
  EXPECT_EQ(ssn["user"], "please");
  // Long strings of multi-byte text around the split: the pair window starts and ends on
  // character boundaries.
  std::string long_a, long_b;
  for (int i = 0; i < 700; ++i) long_a += "中";  // 2100 bytes, window edge inside a char
  for (int i = 0; i < 700; ++i) long_b += "ü";
  json wide = {{"metadata", {{"a", long_a + "w"}}}, {"stop", {"778-52-", "4674 " + long_b}}};
  EXPECT_EQ(c.ScanJson(wide), std::vector<std::string>{"us_ssn"});
  ASSERT_TRUE(c.RedactJson(&wide));
  EXPECT_TRUE(StrictDumpOk(wide));
  EXPECT_EQ(wide["stop"][1], "[REDACTED:us_ssn] " + long_b);
  // Each half alone is clean.
  EXPECT_TRUE(c.ScanJson(json{{"a", "mail jane.doe@exa"}}).empty());
  EXPECT_TRUE(c.ScanJson(json{{"a", "mple.com now"}}).empty());
}

TEST(PrivacyJsonTest, RedactReplacesEverywhereAcrossBoundariesAndKeepsStructure) {
  const PrivacyClassifier c = Classifier({{"codename", "Codename: .{2}"}});
  json b = {{"model", "auto"},
            {"user", "jane.doe@example.com"},
            {"stop", {"Codename: Zürich"}},
            {"metadata", {{"note", "call +1 415 555 0100"}}},
            {"messages",
             {{{"role", "user"},
               {"content",
                {{{"type", "text"}, {"text", "mail jane.doe@exa"}},
                 {{"type", "text"}, {"text", "mple.com now"}}}}},
              {{"role", "user"}, {"content", "card 4111 1111 "}},
              {{"role", "user"}, {"content", "1111 1111 thanks"}}}}};
  int n = 0;
  ASSERT_TRUE(c.RedactJson(&b, &n));
  EXPECT_GE(n, 5);
  EXPECT_TRUE(c.ScanJson(b).empty()) << b.dump();
  EXPECT_TRUE(StrictDumpOk(b));
  EXPECT_EQ(b["user"], "[REDACTED:email]");
  EXPECT_EQ(b["stop"][0], "[REDACTED:codename]rich");
  EXPECT_EQ(b["messages"][0]["content"][0]["text"], "mail [REDACTED:email]");
  EXPECT_EQ(b["messages"][0]["content"][1]["text"], "[REDACTED:email] now");
  EXPECT_EQ(b["messages"][0]["content"][0]["type"], "text");
  for (const auto& m : b["messages"]) EXPECT_EQ(m["role"], "user");
  const std::string all = b.dump();
  EXPECT_EQ(all.find("4111"), std::string::npos) << all;
  EXPECT_EQ(all.find("jane"), std::string::npos) << all;
}

TEST(PrivacyJsonTest, RedactRefusesWhatCannotBeReplaced) {
  const PrivacyClassifier c = Classifier({});
  json key = {{"metadata", {{"jane.doe@example.com", "x"}}}};
  EXPECT_FALSE(c.RedactJson(&key));
  json number = {{"metadata", {{"acct", 4111111111111111}}}};
  EXPECT_FALSE(c.RedactJson(&number));
  json clean = {{"messages", {{{"role", "user"}, {"content", "hello"}}}}};
  const json before = clean;
  int n = -1;
  EXPECT_TRUE(c.RedactJson(&clean, &n));
  EXPECT_EQ(n, 0);
  EXPECT_EQ(clean, before);
}

TEST(PrivacyJsonTest, DeeplyNestedBodiesAreWalkedWithoutRecursion) {
  const PrivacyClassifier c = Classifier({});
  json root = json::array();
  json* cur = &root;
  for (int i = 0; i < 100000; ++i) {
    cur->push_back(json::array());
    cur = &cur->back();
  }
  cur->push_back("jane.doe@example.com");
  EXPECT_EQ(c.ScanJson(root), std::vector<std::string>{"email"});
  EXPECT_TRUE(c.RedactJson(&root));
  EXPECT_TRUE(c.ScanJson(root).empty());
}

TEST(RequestPrivacyTest, ParsesClassesAndMostRestrictiveWins) {
  EXPECT_EQ(*ParseRequestPrivacy("private"), RequestPrivacy::kPrivate);
  EXPECT_EQ(*ParseRequestPrivacy(" PUBLIC "), RequestPrivacy::kPublic);
  auto bad = ParseRequestPrivacy("secret");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("public, private"), std::string::npos);
  EXPECT_FALSE(ParseRequestPrivacy("").ok());
  EXPECT_EQ(MostRestrictive(RequestPrivacy::kPublic, RequestPrivacy::kPrivate),
            RequestPrivacy::kPrivate);
  EXPECT_EQ(MostRestrictive(RequestPrivacy::kPrivate, RequestPrivacy::kPublic),
            RequestPrivacy::kPrivate);
}

TEST(RouterPrivacyTest, CallRemoteNeverSendsABodyThatMatches) {
  Policy p = DefaultPolicy();
  Backend cloud;
  cloud.name = "cloud";
  cloud.kind = BackendKind::kRemote;
  cloud.model = "big";
  cloud.base_url = "http://127.0.0.1:9/v1";  // would be `unreachable` if anything were sent
  cloud.timeout_ms = 2000;
  p.backends.push_back(cloud);
  auto r = Router::Create(p, ":memory:");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Backend& b = *(*r)->policy().FindBackend("cloud");
  json body = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
               {"metadata", {{"a", "jane.doe@exa"}, {"b", "mple.com"}}}};
  auto reply = (*r)->CallRemote(b, "/chat/completions", body);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().message().rfind("privacy:", 0), 0u) << reply.status().ToString();
  Status s = (*r)->CallRemoteStream(b, "/chat/completions", body, [](json&) { return true; });
  EXPECT_EQ(s.message().rfind("privacy:", 0), 0u) << s.ToString();
  // A clean body does get as far as the network.
  auto clean = (*r)->CallRemote(b, "/chat/completions", json{{"messages", json::array()}});
  ASSERT_FALSE(clean.ok());
  EXPECT_EQ(clean.status().message().rfind("unreachable", 0), 0u) << clean.status().ToString();
}

}  // namespace
}  // namespace pocket::router
