// JSON mode: the recognizer on hand-written cases and against nlohmann::json as the
// reference on many random strings; the token table's masking against a per-token check;
// constrained sampling on random logits and on a random-weight model (Session and
// Scheduler, many seeds at temperature 1): "stop" always leaves an object nlohmann parses,
// "length" a valid prefix.
#include "runtime/json_constraint.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine.h"
#include "runtime/engine_impl.h"
#include "runtime/engine_testutil.h"
#include "runtime/sampling.h"
#include "runtime/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace pocket::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Feeds all of `s`: -1 refused (at some byte), 0 a valid unfinished prefix, 1 complete.
int Recognize(std::string_view s) {
  JsonRecognizer r;
  if (!r.Push(s)) return -1;
  return r.complete() ? 1 : 0;
}

// The byte at which `s` is first refused, or -1 when it is not.
int RefusedAt(std::string_view s) {
  JsonRecognizer r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!r.Push(static_cast<uint8_t>(s[i]))) return static_cast<int>(i);
  }
  return -1;
}

bool NlohmannObject(const std::string& s) {
  const json j = json::parse(s, nullptr, /*allow_exceptions=*/false);
  return !j.is_discarded() && j.is_object();
}

// Whether `s` stays inside the recognizer's documented bounds (whitespace runs, depth,
// number magnitude), judged by a plain scan that does not validate anything else.
bool WithinLimits(const std::string& s) {
  bool in_string = false, escape = false;
  int depth = 0, ws = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (++ws > kJsonMaxWhitespaceRun) return false;
      continue;
    }
    ws = 0;
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') {
      if (++depth > kJsonMaxDepth) return false;
    }
    if (c == '}' || c == ']') --depth;
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i + (c == '-');
      int int_digits = 0;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++int_digits, ++j;
      while (j < s.size() && (s[j] == '.' || (s[j] >= '0' && s[j] <= '9'))) ++j;
      long exponent = 0;
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        ++j;
        const bool neg = j < s.size() && s[j] == '-';
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
          exponent = std::min(100000L, exponent * 10 + (s[j] - '0'));
          ++j;
        }
        if (neg) exponent = 0;
      }
      if (int_digits + exponent > kJsonMaxDecimalExponent) return false;
      i = j - 1;
    }
  }
  return true;
}

TEST(JsonRecognizerTest, AcceptsCompleteObjects) {
  for (const char* s : {
           "{}",
           "{\"a\":1}",
           " {\"a\" : -0.5e+3 }",
           "{\"n\":[0,-0,1.25,1E5,2e-7,123456789012345678901234567890,0.0e0]}",
           "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false,\"e\":[],\"f\":{}}",
           "{\"s\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\b\\f\\r\\t\\u0000\"}",
           "{\"raw\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac \x7f\"}",
           "{\n  \"pretty\": [\n    1,\n    2\n  ]\n}",
           "{}\n",
       }) {
    EXPECT_EQ(Recognize(s), 1) << s;
    EXPECT_TRUE(NlohmannObject(s)) << s;
  }
}

TEST(JsonRecognizerTest, RefusesWhatIsNotAnObjectPrefix) {
  for (const char* s : {
           "[]", "\"x\"", "1", "true", "null", "x", "}",
           "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}",
           "{\"a\":1e+}", "{\"a\":--1}", "{\"a\":0x1}", "{\"a\":NaN}", "{\"a\":Infinity}",
           "{a:1}", "{\"a\" 1}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}", "{\"a\":[1,]}",
           "{\"a\":[,1]}", "{\"a\":tru}", "{\"a\":trUe}", "{\"a\":nul}", "{\"a\":]}", "{]",
           "{\"a\":[}", "{\"a\":{]}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12G4\"}",
           "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
           "{\"a\":\"\\ud800x\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}",
           "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf5\x80\x80\x80\"}",
           "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
           "{} x", "{}{}", "{}[", "{'a':1}", "{\"a\":1}}",
       }) {
    EXPECT_NE(Recognize(s), 1) << s;
    EXPECT_FALSE(NlohmannObject(s)) << s;
  }
}

TEST(JsonRecognizerTest, RefusesAtTheFirstByteWithNoValidContinuation) {
  EXPECT_EQ(RefusedAt("{\"a\":01"), 6);
  EXPECT_EQ(RefusedAt("{\"a\":\"\\uDC"), 9);     // a lone low surrogate: no 4th digit saves it
  EXPECT_EQ(RefusedAt("{\"a\":\"\\uD800\\u00"), 15);  // after a high one, only a low one
  EXPECT_EQ(RefusedAt("{\"a\":\"\xe0\x80"), 7);  // an overlong form, known at its 2nd byte
  EXPECT_EQ(RefusedAt("{\"a\":1}x"), 7);
  EXPECT_EQ(RefusedAt("["), 0);
  // Every prefix of a valid document is accepted, and only the whole is complete.
  const std::string doc = "{\"k\":[1,-2.5e-3,true,null,\"\\ud83d\\ude00\xc3\xa9\",{}],\"z\":{}}";
  for (size_t n = 0; n < doc.size(); ++n) EXPECT_EQ(Recognize(doc.substr(0, n)), 0) << n;
  EXPECT_EQ(Recognize(doc), 1);
}

TEST(JsonRecognizerTest, CapsNestingDepth) {
  std::string ok = "{\"a\":", bad;
  for (int i = 1; i < kJsonMaxDepth; ++i) ok += "[";
  bad = ok + "[";
  std::string closed = ok;
  for (int i = 1; i < kJsonMaxDepth; ++i) closed += "]";
  EXPECT_EQ(Recognize(closed + "}"), 1);
  EXPECT_EQ(Recognize(bad), -1);
}

TEST(JsonRecognizerTest, CapsWhitespaceRunsButNotSpacesInStrings) {
  const std::string run(kJsonMaxWhitespaceRun, ' ');
  EXPECT_EQ(Recognize(run + "{" + run + "\"a\"" + run + ":" + run + "1" + run + "}" + run), 1);
  EXPECT_EQ(Recognize("{" + run + " "), -1);
  EXPECT_EQ(Recognize(run + " {"), -1);
  EXPECT_EQ(Recognize("{\"a\":1" + run + "\n}"), -1);
  EXPECT_EQ(Recognize("{\"a\":\"" + std::string(1000, ' ') + "\"}"), 1);
  EXPECT_EQ(Recognize("{\"a\":1 \n\t\r" + std::string(kJsonMaxWhitespaceRun - 4, ' ') + "}"), 1);
}

TEST(JsonRecognizerTest, KeepsNumbersFinite) {
  EXPECT_EQ(Recognize("{\"a\":1e307}"), 1);
  EXPECT_EQ(Recognize("{\"a\":-9.99e307}"), 1);
  EXPECT_EQ(Recognize("{\"a\":1e308}"), -1);
  EXPECT_EQ(Recognize("{\"a\":1e999}"), -1);
  EXPECT_EQ(Recognize("{\"a\":1e-999}"), 1);
  EXPECT_EQ(Recognize("{\"a\":1e+0000000000000000000000307}"), 1);
  EXPECT_EQ(Recognize("{\"a\":" + std::string(308, '9') + "}"), 1);
  EXPECT_EQ(Recognize("{\"a\":" + std::string(309, '9') + "}"), -1);
  EXPECT_TRUE(NlohmannObject("{\"a\":" + std::string(308, '9') + "}"));
  EXPECT_FALSE(NlohmannObject("{\"a\":1e999}"));  // why the bound exists
}

// Random JSON text: values of random shape with random spacing, kept inside the bounds.
class JsonGen {
 public:
  explicit JsonGen(uint64_t seed) : rng_(seed) {}
  int Below(int n) { return static_cast<int>(rng_.NextU64() % static_cast<uint64_t>(n)); }
  std::string Ws() {
    static const char* kWs[] = {"", "", "", " ", "\n", "  ", "\t", "\r\n", " \n   "};
    return kWs[Below(9)];
  }
  std::string String() {
    static const char* kParts[] = {"a", "key", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9",
                                   "\\uD83D\\uDE00", "\xc3\xa9", "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80", "\\t", "7", "\\u0000", "{", "]", ":"};
    std::string s = "\"";
    for (int n = Below(4); n > 0; --n) s += kParts[Below(18)];
    return s + "\"";
  }
  std::string Number() {
    std::string s = Below(3) == 0 ? "-" : "";
    s += Below(3) == 0 ? "0" : std::to_string(1 + Below(99999));
    if (Below(2)) s += "." + std::to_string(Below(1000));
    if (Below(3) == 0) {
      s += Below(2) ? "e" : "E";
      if (Below(2)) s += Below(2) ? "+" : "-";
      s += std::to_string(Below(40));
    }
    return s;
  }
  std::string Value(int depth) {
    const int k = depth > 6 ? 2 + Below(4) : Below(8);
    switch (k) {
      case 0: return Object(depth + 1);
      case 1: return Array(depth + 1);
      case 2: return String();
      case 3: return Number();
      case 4: return "true";
      case 5: return "false";
      default: return Below(2) ? "null" : Number();
    }
  }
  std::string Object(int depth) {
    std::string s = "{" + Ws();
    const int n = Below(4);
    for (int i = 0; i < n; ++i) {
      if (i) s += "," + Ws();
      s += String() + Ws() + ":" + Ws() + Value(depth) + Ws();
    }
    return s + "}";
  }
  std::string Array(int depth) {
    std::string s = "[" + Ws();
    const int n = Below(4);
    for (int i = 0; i < n; ++i) {
      if (i) s += "," + Ws();
      s += Value(depth) + Ws();
    }
    return s + "]";
  }
  // One random edit: drop, duplicate, replace or insert a byte from a JSON-heavy alphabet.
  std::string Mutate(std::string s) {
    static const std::string kAlphabet = "{}[]\":,.-+eE0123456789 \n\\utrfalsn\x80\xc3\xe2\xed\xf0";
    if (s.empty()) return s;
    const size_t at = static_cast<size_t>(Below(static_cast<int>(s.size())));
    const char c = kAlphabet[static_cast<size_t>(Below(static_cast<int>(kAlphabet.size())))];
    switch (Below(4)) {
      case 0: s.erase(at, 1); break;
      case 1: s.insert(at, 1, s[at]); break;
      case 2: s[at] = c; break;
      default: s.insert(at, 1, c); break;
    }
    return s;
  }

 private:
  Rng rng_;
};

TEST(JsonRecognizerTest, AgreesWithNlohmannOnRandomDocumentsAndMutations) {
  JsonGen gen(12345);
  int complete = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = gen.Ws() + (gen.Below(8) ? gen.Object(0) : gen.Value(0)) + gen.Ws();
    for (int m = gen.Below(3); m > 0; --m) s = gen.Mutate(s);
    const int ours = Recognize(s);
    const bool ref = NlohmannObject(s);
    if (ours == 1) {
      ++complete;
      EXPECT_TRUE(ref) << "we accept, nlohmann does not: " << s;
    } else {
      ++refused;
      if (ref && WithinLimits(s)) ADD_FAILURE() << "nlohmann accepts, we do not: " << s;
    }
  }
  EXPECT_GT(complete, 2000);
  EXPECT_GT(refused, 2000);
}

// Every prefix the recognizer keeps can be finished (it is exact on prefixes): some short
// tail from a fixed set, then closing brackets, always yields an object nlohmann parses.
TEST(JsonRecognizerTest, EveryAcceptedPrefixCanBeCompleted) {
  JsonGen gen(777);
  const std::vector<std::string> tails = {
      "", "0", "\"", "0\"", "00\"", "000\"", "0000\"", "n\"", "\\udc00\"", "udc00\"", "dc00\"",
      "c00\"", "00\\udc00\"", "0\\udc00\"", "rue", "ue", "e", "alse", "lse", "se", "ull",
      "ll", "l", "{",
      "\x80\"", "\x80\x80\"", "\x90\x80\x80\"", "\x80\x80\x80\"", "\"k\":0", "\":0",
      ":0", "1"};
  for (int i = 0; i < 3000; ++i) {
    const std::string s = gen.Object(0);
    const std::string prefix = s.substr(0, static_cast<size_t>(gen.Below(static_cast<int>(s.size()))));
    ASSERT_EQ(Recognize(prefix), 0) << prefix;
    bool done = false;
    for (size_t t = 0; t < tails.size() && !done; ++t) {
      for (const char* key : {"", ":0"}) {
        std::string text = prefix + tails[t] + key;
        JsonRecognizer r;
        if (!r.Push(text)) continue;
        for (int k = 0; k <= kJsonMaxDepth && !r.complete(); ++k) {
          JsonRecognizer c = r;
          if (c.Push(uint8_t{'}'})) {
            r = c, text += '}';
            continue;
          }
          c = r;
          if (!c.Push(uint8_t{']'})) break;
          r = c, text += ']';
        }
        if (r.complete()) {
          EXPECT_TRUE(NlohmannObject(text)) << text;
          done = true;
          break;
        }
      }
    }
    EXPECT_TRUE(done) << "no completion found for " << prefix;
  }
}

class JsonModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((fs::temp_directory_path() /
                             ("pocket_json_test." + std::to_string(getpid()) + ".gguf"))
                                .string());
    auto engine = LoadSmallRandomEngine(*path_, 11);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = new std::shared_ptr<Engine>(*engine);
  }
  static void TearDownTestSuite() {
    delete engine_;
    std::error_code ec;
    fs::remove(*path_, ec);
    delete path_;
  }
  static std::shared_ptr<Engine>& engine() { return *engine_; }
  static const JsonTokenTable& table() { return ImplOf(*engine()).json_tokens(); }
  static std::string* path_;
  static std::shared_ptr<Engine>* engine_;
};

std::string* JsonModelTest::path_ = nullptr;
std::shared_ptr<Engine>* JsonModelTest::engine_ = nullptr;

TEST_F(JsonModelTest, MaskAgreesWithPerTokenCheck) {
  const JsonTokenTable& t = table();
  const tokenizer::Tokenizer& tok = engine()->tokenizer();
  ASSERT_EQ(t.vocab_size(), 512u);
  const std::string doc =
      " {\"ab\": [1, -0.5e+3, true, \"x\\u00e9\xc3\xa9\\ud83d\\ude00\"], \"c\" : {\"d\":null}}";
  for (size_t n = 0; n <= doc.size(); ++n) {
    JsonRecognizer state;
    ASSERT_TRUE(state.Push(std::string_view(doc).substr(0, n)));
    std::vector<float> logits(t.vocab_size(), 0.0f);
    const size_t allowed = t.Mask(state, logits);
    size_t count = 0;
    for (size_t id = 0; id < logits.size(); ++id) {
      const bool ok = t.Allows(state, static_cast<int32_t>(id));
      count += ok;
      EXPECT_EQ(ok, logits[id] == 0.0f) << "prefix " << n << " token " << id;
      if (tok.IsControl(static_cast<int32_t>(id)) &&
          !tok.IsEndOfGeneration(static_cast<int32_t>(id))) {
        EXPECT_FALSE(ok);
      }
      if (tok.IsEndOfGeneration(static_cast<int32_t>(id))) {
        EXPECT_EQ(ok, n == doc.size());
      }
    }
    EXPECT_EQ(allowed, count);
    EXPECT_GT(allowed, 0u) << "prefix " << n;
  }
}

// Constrained sampling on random logits that favour JSON punctuation, so that objects
// often close: every run ends complete (nlohmann parses the object) or a valid prefix.
TEST_F(JsonModelTest, SamplingOnRandomLogitsYieldsObjects) {
  const JsonTokenTable& t = table();
  const tokenizer::Tokenizer& tok = engine()->tokenizer();
  std::vector<float> bias(t.vocab_size(), 0.0f);
  for (size_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string p = tok.TokenToPiece(static_cast<int32_t>(id));
    if (p.size() == 1 && std::string_view("{}[]\":,1tn ").find(p[0]) != std::string_view::npos)
      bias[id] = 6.0f;
  }
  int complete = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SamplingParams params;
    params.temperature = 1.0f;
    params.top_k = seed % 2 ? 40 : 0;  // truncated and untruncated draws
    params.seed = seed;
    Sampler sampler(params);
    Rng noise(seed * 7919);
    JsonRecognizer state;
    std::string text;
    std::vector<float> scratch, logits(t.vocab_size());
    std::vector<int32_t> history;
    for (int step = 0; step < 300 && !state.complete(); ++step) {
      for (size_t i = 0; i < logits.size(); ++i)
        logits[i] = bias[i] + static_cast<float>(noise.NextDouble() * 4.0);
      auto next = SampleJsonToken(sampler, t, state, logits, history, &scratch);
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      ASSERT_FALSE(tok.IsEndOfGeneration(*next));  // never before the object is complete
      const std::string piece = tok.TokenToPiece(*next);
      ASSERT_TRUE(state.Push(piece)) << text << " + " << piece;
      text += piece;
      history.push_back(*next);
    }
    if (state.complete()) {
      ++complete;
      EXPECT_TRUE(NlohmannObject(text)) << text;
    }
  }
  EXPECT_GT(complete, 50);
}

void CheckOutcome(const GenerateResult& r, uint64_t seed) {
  if (r.finish_reason == "stop") {
    EXPECT_TRUE(NlohmannObject(r.text)) << "seed " << seed << ": " << r.text;
  } else {
    EXPECT_EQ(r.finish_reason, "length") << "seed " << seed;
    EXPECT_EQ(Recognize(r.text), 0) << "seed " << seed << ": " << r.text;
  }
}

GenerateRequest JsonRequest(uint64_t seed, int max_tokens) {
  GenerateRequest req;
  req.messages = {{"user", "Answer in JSON."}};
  req.max_tokens = max_tokens;
  req.sampling.temperature = 1.0f;
  req.sampling.top_k = 0;
  req.sampling.top_p = 1.0f;
  req.sampling.min_p = 0.0f;
  req.sampling.seed = seed;
  req.response_format = ResponseFormat::kJsonObject;
  return req;
}

TEST_F(JsonModelTest, ConstrainedGenerationIsAlwaysAnObjectOrAPrefix) {
  auto session = engine()->NewSession();
  int stops = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::string streamed;
    auto r = session->Generate(JsonRequest(seed, 40), [&](std::string_view t) {
      streamed += t;
      return true;
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(streamed, r->text);
    stops += r->finish_reason == "stop";
    CheckOutcome(*r, seed);
  }
  // Same seed, same tokens.
  auto a = session->Generate(JsonRequest(3, 40), nullptr);
  auto b = session->Generate(JsonRequest(3, 40), nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->text, b->text);
  // A stop string still applies on top of the constraint (and ends with "stop").
  GenerateRequest stop = JsonRequest(5, 40);
  stop.stop = {"\""};
  auto s = session->Generate(stop, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->text.find('"'), std::string::npos);
  RecordProperty("json_stops_of_40", stops);
}

TEST_F(JsonModelTest, SchedulerMatchesSessionAloneAndBatched) {
  std::vector<GenerateRequest> reqs;
  for (uint64_t seed = 1; seed <= 6; ++seed) reqs.push_back(JsonRequest(seed, 24));
  reqs.push_back(JsonRequest(9, 24));
  reqs.back().response_format = ResponseFormat::kText;  // mixed in the same batch
  std::vector<std::string> want, want_finish;
  for (const auto& r : reqs) {
    auto res = engine()->NewSession()->Generate(r, nullptr);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    want.push_back(res->text);
    want_finish.push_back(res->finish_reason);
  }
  SchedulerOptions opts;
  opts.max_sequences = 4;
  opts.prefill_chunk = 5;
  Scheduler sched(engine(), opts);
  std::vector<Result<GenerateResult>> got(reqs.size(), Status::Internal("unset"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < reqs.size(); ++i)
    threads.emplace_back([&, i] { got[i] = sched.Generate(reqs[i], nullptr); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
    EXPECT_EQ(got[i]->text, want[i]) << "request " << i;
    EXPECT_EQ(got[i]->finish_reason, want_finish[i]) << "request " << i;
    if (reqs[i].response_format == ResponseFormat::kJsonObject) CheckOutcome(*got[i], i);
  }
}

}  // namespace
}  // namespace pocket::runtime
