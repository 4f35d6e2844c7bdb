#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "router/decision.h"
#include "router/ledger.h"
#include "router/policy.h"
#include "router/privacy.h"
#include "router/router.h"

namespace pocket::router {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kPolicy = R"(
default_area = "chat"
hard_prompt_tokens = 1000
[backends.local]
kind = "local"
tokens_per_s = 50
[backends.cloud]
kind = "openai"
base_url = "${URL}"
api_key = "${KEY}"
model = "big"
price_input_per_1k = 0.5
price_output_per_1k = 1.5
context_length = 8000
[areas.chat]
backends = ["local", "cloud"]
latency_target_ms = 1000
budget_day_usd = 1.0
[areas.summarize]
backends = ["local"]
[privacy]
mode = "local"
[privacy.patterns]
employee = "EMP-[0-9]{6}"
)";

Policy MustParse(const char* text, std::map<std::string, std::string> env = {
                                       {"URL", "http://127.0.0.1:9/v1"}, {"KEY", "k"}}) {
  auto p = ParsePolicy(text, FakeEnv(env));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Policy{};
}

TEST(ExpandEnvTest, SubstitutesDefaultsAndRejectsUnset) {
  auto env = FakeEnv({{"A", "x"}});
  EXPECT_EQ(*ExpandEnv("a${A}b", env), "axb");
  EXPECT_EQ(*ExpandEnv("${B:-dflt}", env), "dflt");
  EXPECT_EQ(*ExpandEnv("no vars $ {A}", env), "no vars $ {A}");
  EXPECT_FALSE(ExpandEnv("${B}", env).ok());
  EXPECT_FALSE(ExpandEnv("${A", env).ok());
  EXPECT_FALSE(ExpandEnv("${}", env).ok());
}

TEST(PolicyTest, ParsesBackendsAreasPrivacy) {
  Policy p = MustParse(kPolicy);
  ASSERT_EQ(p.backends.size(), 2u);
  const Backend* cloud = p.FindBackend("cloud");
  ASSERT_NE(cloud, nullptr);
  EXPECT_EQ(cloud->kind, BackendKind::kRemote);
  EXPECT_EQ(cloud->base_url, "http://127.0.0.1:9/v1");
  EXPECT_EQ(cloud->api_key, "k");
  EXPECT_DOUBLE_EQ(cloud->price_output_per_1k, 1.5);
  EXPECT_EQ(cloud->context_length, 8000);
  EXPECT_EQ(p.FindBackendByModel("big"), cloud);
  ASSERT_NE(p.FindArea("chat"), nullptr);
  EXPECT_DOUBLE_EQ(p.FindArea("chat")->budget.day_usd, 1.0);
  EXPECT_EQ(p.FindArea("summarize")->backends, std::vector<std::string>{"local"});
  ASSERT_EQ(p.privacy.patterns.size(), 1u);
  EXPECT_EQ(p.privacy.patterns[0].name, "employee");
}

TEST(PolicyTest, UnsetRemoteVariableDisablesBackendInsteadOfFailing) {
  Policy p = MustParse(kPolicy, {});
  ASSERT_NE(p.FindBackend("cloud"), nullptr);
  EXPECT_NE(p.FindBackend("cloud")->disabled_reason.find("URL"), std::string::npos);
}

TEST(PolicyTest, RejectsBadInputWithWhere) {
  auto env = FakeEnv({});
  auto bad_syntax = ParsePolicy("[backends.x\n", env, "p.toml");
  ASSERT_FALSE(bad_syntax.ok());
  EXPECT_NE(bad_syntax.status().message().find("p.toml:1"), std::string::npos);
  auto bad_type = ParsePolicy("[areas.chat]\nbudget_day_usd = \"lots\"\n", env);
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("areas.chat.budget_day_usd"), std::string::npos);
  EXPECT_FALSE(ParsePolicy("[areas.chat]\nbackends = [\"nope\"]\n", env).ok());
  EXPECT_FALSE(ParsePolicy("[backends.c]\nkind = \"ftp\"\n", env).ok());
  EXPECT_FALSE(ParsePolicy("[backends.c]\nkind = \"openai\"\nmodel = \"m\"\n", env).ok());
  EXPECT_FALSE(ParsePolicy("[privacy]\nmode = \"maybe\"\n", env).ok());
  EXPECT_FALSE(ParsePolicy("[api_keys.ci]\nsha256 = \"abc\"\n", env).ok());
  EXPECT_FALSE(ParsePolicy("[areas.chat]\nbudget_day_usd = -1\n", env).ok());
}

TEST(PolicyTest, EmptyPolicyHasLocalBackendAndDefaultArea) {
  Policy p = DefaultPolicy();
  ASSERT_EQ(p.backends.size(), 1u);
  EXPECT_EQ(p.backends[0].kind, BackendKind::kLocal);
  ASSERT_NE(p.FindArea("chat"), nullptr);
}

TEST(PolicyTest, ShippedExampleParses) {
  auto p = LoadPolicy(std::string(POCKET_SOURCE_DIR) + "/docs/policy.example.toml",
                      FakeEnv({{"POCKET_REMOTE_URL", "http://127.0.0.1:1/v1"},
                               {"POCKET_REMOTE_KEY", "secret"}}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto c = PrivacyClassifier::Create(p->privacy);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

TEST(PrivacyTest, DefaultPatternsCatchCommonSecrets) {
  auto c = PrivacyClassifier::Create(PrivacyRules{});
  ASSERT_TRUE(c.ok());
  auto hits = [&](std::string_view t) { return c->Scan(t); };
  EXPECT_EQ(hits("mail me at jane.doe@example.com"), std::vector<std::string>{"email"});
  EXPECT_EQ(hits("call +1 415 555 0100 now"), std::vector<std::string>{"phone"});
  EXPECT_EQ(hits("key sk-abcdefghijklmnop1234 here"), std::vector<std::string>{"api_key"});
  EXPECT_EQ(hits("AKIAABCDEFGHIJKLMNOP"), std::vector<std::string>{"api_key"});
  // Grouped digits also look like a phone number; over-matching errs on the private side.
  const auto card = hits("card 4111 1111 1111 1111 exp");
  EXPECT_NE(std::find(card.begin(), card.end(), "card"), card.end());
  EXPECT_EQ(hits("card 4111111111111111"), std::vector<std::string>{"card"});
  EXPECT_EQ(hits("ssn 123-45-6789"), std::vector<std::string>{"us_ssn"});
  EXPECT_TRUE(hits("Summarize the meeting of 2026-11-21 about 3 items.").empty());
  EXPECT_TRUE(hits("order 4111111111111112").empty()) << "fails Luhn";
  EXPECT_TRUE(hits("").empty());
}

TEST(PrivacyTest, InvalidUtf8StillScanned) {
  auto c = PrivacyClassifier::Create(PrivacyRules{});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Scan("\xff\xfe bob@example.org"), std::vector<std::string>{"email"});
}

TEST(PrivacyTest, RedactReplacesEveryMatch) {
  PrivacyRules rules;
  rules.patterns.push_back({"employee", "EMP-[0-9]{6}"});
  auto c = PrivacyClassifier::Create(rules);
  ASSERT_TRUE(c.ok());
  int n = 0;
  const std::string out = c->Redact("a@b.io and EMP-123456 and c@d.io", &n);
  EXPECT_EQ(out, "[REDACTED:email] and [REDACTED:employee] and [REDACTED:email]");
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(c->Scan(out).empty());
}

TEST(PrivacyTest, BadCustomRegexNamesPattern) {
  PrivacyRules rules;
  rules.patterns.push_back({"broken", "(unclosed"});
  auto c = PrivacyClassifier::Create(rules);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("broken"), std::string::npos);
}

TEST(LuhnTest, KnownNumbers) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_TRUE(LuhnValid("5500 0000 0000 0004"));
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid("0000"));
}

// ---- Decision ----

Status Fits(const Backend&) { return Status::Ok(); }
Status Broke(const Backend&) { return Status::ResourceExhausted("area 'chat': daily budget"); }

RouteRequest Req() {
  RouteRequest r;
  r.prompt_tokens = 10;
  r.max_tokens = 16;
  r.local_context_length = 2048;
  return r;
}

TEST(DecideTest, DefaultStaysLocal) {
  Policy p = MustParse(kPolicy);
  auto d = Decide(p, Req(), Fits);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->remote);
  EXPECT_EQ(d->reason, "default");
  EXPECT_EQ(d->Header(), "local; reason=default");
}

TEST(DecideTest, QualityHighGoesRemote) {
  Policy p = MustParse(kPolicy);
  auto r = Req();
  r.quality_high = true;
  auto d = Decide(p, r, Fits);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->remote);
  EXPECT_EQ(d->backend, "cloud");
  EXPECT_EQ(d->Header(), "remote=cloud; reason=quality");
}

TEST(DecideTest, PrivateNeverRemoteWhateverElse) {
  Policy p = MustParse(kPolicy);
  for (bool pinned : {false, true}) {
    auto r = Req();
    r.quality_high = true;
    r.prompt_tokens = 5000;
    if (pinned) r.pinned = "cloud";
    r.marked_private = true;
    auto d = Decide(p, r, Fits);
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(d->remote);
    EXPECT_EQ(d->reason, "private");
    r.marked_private = false;
    r.privacy_hits = {"email"};
    d = Decide(p, r, Fits);
    EXPECT_FALSE(d->remote);
    EXPECT_EQ(d->reason, "privacy_pattern");
  }
}

TEST(DecideTest, RedactModeSendsRedacted) {
  Policy p = MustParse(kPolicy);
  p.privacy.mode = PrivacyMode::kRedactThenSend;
  auto r = Req();
  r.quality_high = true;
  r.privacy_hits = {"email"};
  auto d = Decide(p, r, Fits);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->remote);
  EXPECT_TRUE(d->redact);
  r.marked_private = true;  // an explicit mark still wins over redaction
  EXPECT_FALSE(Decide(p, r, Fits)->remote);
}

TEST(DecideTest, ContextDifficultyLatencyReasons) {
  Policy p = MustParse(kPolicy);
  auto r = Req();
  r.prompt_tokens = 3000;
  r.local_context_length = 2048;
  EXPECT_EQ(Decide(p, r, Fits)->reason, "context");
  r.local_context_length = 8192;
  EXPECT_EQ(Decide(p, r, Fits)->reason, "difficulty");
  r = Req();
  r.max_tokens = 100;  // 100 tokens at 50 tok/s = 2 s > 1 s target
  EXPECT_EQ(Decide(p, r, Fits)->reason, "latency");
  r.area = "summarize";  // no target and no remote allowed
  EXPECT_EQ(Decide(p, r, Fits)->reason, "default");
  r.quality_high = true;
  auto d = Decide(p, r, Fits);
  EXPECT_FALSE(d->remote);
  EXPECT_EQ(d->reason, "no_remote");
}

TEST(DecideTest, RemoteContextTooSmallStaysLocal) {
  Policy p = MustParse(kPolicy);
  auto r = Req();
  r.prompt_tokens = 9000;
  auto d = Decide(p, r, Fits);
  EXPECT_FALSE(d->remote);
  EXPECT_NE(d->detail.find("context 8000"), std::string::npos);
}

TEST(DecideTest, BudgetExhaustedFallsBackLocal) {
  Policy p = MustParse(kPolicy);
  auto r = Req();
  r.quality_high = true;
  auto d = Decide(p, r, Broke);
  EXPECT_FALSE(d->remote);
  EXPECT_EQ(d->reason, "budget");
  r.quality_high = false;
  r.pinned = "cloud";
  d = Decide(p, r, Broke);
  EXPECT_FALSE(d->remote);
  EXPECT_EQ(d->reason, "budget");
}

TEST(DecideTest, DisabledBackendAndUnknownArea) {
  Policy p = MustParse(kPolicy, {});
  auto r = Req();
  r.quality_high = true;
  EXPECT_FALSE(Decide(p, r, Fits)->remote);
  r.area = "nope";
  EXPECT_FALSE(Decide(p, r, Fits).ok());
}

TEST(DecideTest, PinnedRemoteNotAllowedInArea) {
  Policy p = MustParse(kPolicy);
  auto r = Req();
  r.area = "summarize";
  r.pinned = "cloud";
  auto d = Decide(p, r, Fits);
  EXPECT_FALSE(d->remote);
  EXPECT_EQ(d->reason, "not_allowed");
  r.pinned = "local";
  EXPECT_EQ(Decide(p, r, Fits)->reason, "requested");
}

// ---- Ledger ----

constexpr double kNow = 1.8e9;  // 2027-01-15

TEST(LedgerTest, ReserveSettleReleaseAndLimits) {
  auto l = Ledger::Open(":memory:");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  Budget b;
  b.day_usd = 1.0;
  std::vector<BudgetScope> scopes{{BudgetScope::Kind::kArea, "chat", b}};
  auto id1 = (*l)->Reserve(scopes, "cloud", 600000, 10, kNow);
  ASSERT_TRUE(id1.ok());
  auto id2 = (*l)->Reserve(scopes, "cloud", 500000, 10, kNow);
  EXPECT_EQ(id2.status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE((*l)->Settle(*id1, 100000, 5).ok());
  EXPECT_FALSE((*l)->Settle(*id1, 1, 1).ok()) << "settled twice";
  auto id3 = (*l)->Reserve(scopes, "cloud", 900000, 10, kNow);
  ASSERT_TRUE(id3.ok());
  ASSERT_TRUE((*l)->Release(*id3).ok());
  auto sp = (*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->day_micro_usd, 100000);
  EXPECT_EQ(sp->day_tokens, 5);
  // The next day starts fresh; the month keeps counting.
  auto tomorrow = (*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow + 86400);
  EXPECT_EQ(tomorrow->day_micro_usd, 0);
  EXPECT_EQ(tomorrow->month_micro_usd, 100000);
}

TEST(LedgerTest, TokenAndKeyBudgets) {
  auto l = Ledger::Open(":memory:");
  ASSERT_TRUE(l.ok());
  Budget area, key;
  area.month_tokens = 100;
  key.day_usd = 0.001;
  std::vector<BudgetScope> scopes{{BudgetScope::Kind::kArea, "code", area},
                                  {BudgetScope::Kind::kApiKey, "ci", key}};
  EXPECT_FALSE((*l)->Reserve(scopes, "c", 0, 101, kNow).ok());
  EXPECT_TRUE((*l)->Reserve(scopes, "c", 1000, 50, kNow).ok());
  auto over = (*l)->Reserve(scopes, "c", 1, 1, kNow);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("api key 'ci'"), std::string::npos);
  auto all = (*l)->AllSpend(BudgetScope::Kind::kApiKey, kNow);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].first, "ci");
}

TEST(LedgerTest, ConcurrentReservationsNeverExceedBudget) {
  const std::string path = ::testing::TempDir() + "/ledger_concurrent.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  Budget b;
  b.day_usd = 0.01;  // 10000 micro-USD; each reservation is 700 -> at most 14 fit
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto l = Ledger::Open(path);  // one connection per thread, like separate processes
      ASSERT_TRUE(l.ok()) << l.status().ToString();
      for (int i = 0; i < 10; ++i) {
        auto id = (*l)->Reserve({{BudgetScope::Kind::kArea, "chat", b}}, "cloud", 700, 1, kNow);
        if (id.ok()) ++granted;
        else EXPECT_EQ(id.status().code(), StatusCode::kResourceExhausted) << id.status().ToString();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 14);
  auto l = Ledger::Open(path);
  auto sp = (*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow);
  EXPECT_LE(sp->day_micro_usd, 10000);
  l->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

TEST(CostTest, RoundsUp) {
  Backend b;
  b.price_input_per_1k = 0.0005;   // 0.5 micro-USD per token
  b.price_output_per_1k = 0.0015;  // 1.5 micro-USD per token
  EXPECT_EQ(CostMicros(b, 1, 0), 1);
  EXPECT_EQ(CostMicros(b, 2, 2), 4);
  EXPECT_EQ(UsdToMicros(1.5), 1500000);
}

// ---- Router facade ----

TEST(RouterTest, PlanReservesAndSettles) {
  Policy p = MustParse(kPolicy);
  auto router = Router::Create(p, ":memory:");
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  auto r = Req();
  r.quality_high = true;
  auto plan = (*router)->Plan(r, "", kNow);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->decision.remote);
  EXPECT_GE(plan->reservation_id, 0);
  // 10 in at 500 micro/token... 0.5/1k = 500 micro per token; 16 out at 1500.
  EXPECT_EQ(plan->reserved_micro_usd, 10 * 500 + 16 * 1500);
  UsageReport usage;
  usage.Read(nlohmann::json::parse(R"({"usage":{"prompt_tokens":4,"completion_tokens":2}})"));
  const Settlement settled = (*router)->Assess(*plan, usage, /*complete=*/true);
  EXPECT_EQ(settled.anomaly, "");
  ASSERT_TRUE((*router)->Settle(*plan, settled).ok());
  auto sp = (*router)->ledger().SpendFor(BudgetScope::Kind::kArea, "chat", kNow);
  EXPECT_EQ(sp->day_micro_usd, 4 * 500 + 2 * 1500);
}

// ---- Usage a remote reports ----

// The usage of one response, read and checked.
UsageReport ReportOf(const std::string& usage_json) {
  UsageReport r;
  r.Read(nlohmann::json::parse(R"({"choices":[],"usage":)" + usage_json + "}"));
  return r;
}

TEST(UsageReportTest, WellFormedUsageIsReadAndNullUsageIsNoReport) {
  UsageReport r = ReportOf(R"({"prompt_tokens":7,"completion_tokens":3,"total_tokens":10})");
  EXPECT_EQ(r.reports(), 1);
  EXPECT_EQ(r.anomaly(), "");
  EXPECT_EQ(r.prompt_tokens(), 7);
  EXPECT_EQ(r.completion_tokens(), 3);
  EXPECT_EQ(ReportOf(R"({"prompt_tokens":7,"completion_tokens":3})").anomaly(), "")
      << "total_tokens is optional";
  EXPECT_EQ(ReportOf(R"({"prompt_tokens":0,"completion_tokens":0,"total_tokens":0})").anomaly(),
            "");
  EXPECT_EQ(ReportOf("null").reports(), 0) << "streams carry usage: null until the last event";
  UsageReport none;
  none.Read(nlohmann::json::parse(R"({"choices":[]})"));
  EXPECT_EQ(none.reports(), 0);
}

// Every token field, with every JSON type a lying or broken remote might send.
TEST(UsageReportTest, EveryFieldOfEveryWrongTypeIsAnAnomaly) {
  const std::vector<std::pair<std::string, std::string>> bad_values = {
      {R"("5")", "not_integer"},
      {R"("-5")", "not_integer"},
      {"5.0", "not_integer"},
      {"5.5", "not_integer"},
      {"1e30", "not_integer"},
      {"1.7976931348623157e308", "not_integer"},  // (1e400 is no JSON nlohmann parses: the
      {"-1e308", "not_integer"},                  // response is bad_response, no usage)
      {"true", "not_integer"},
      {"null", "not_integer"},
      {R"({"n":5})", "not_integer"},
      {"[5]", "not_integer"},
      {"-1", "negative"},
      {"-2000000000", "negative"},
      {"-9223372036854775808", "negative"},
      {"9223372036854775808", "too_large"},     // INT64_MAX + 1: kept unsigned
      {"18446744073709551615", "too_large"},    // UINT64_MAX: would wrap to -1
      {"18446744073709551616", "not_integer"},  // past UINT64_MAX: a float
  };
  for (const char* field : {"prompt_tokens", "completion_tokens", "total_tokens"}) {
    for (const auto& [value, kind] : bad_values) {
      nlohmann::json usage = {{"prompt_tokens", 7}, {"completion_tokens", 3}, {"total_tokens", 10}};
      std::string text = usage.dump();
      const std::string key = std::string("\"") + field + "\":";
      const size_t at = text.find(key) + key.size();
      text.replace(at, text.find_first_of(",}", at) - at, value);
      UsageReport r = ReportOf(text);
      EXPECT_EQ(r.reports(), 1) << text;
      EXPECT_EQ(r.anomaly(), kind) << text;
    }
  }
  EXPECT_EQ(ReportOf(R"({"completion_tokens":3})").anomaly(), "missing");
  EXPECT_EQ(ReportOf(R"({"prompt_tokens":7})").anomaly(), "missing");
  EXPECT_EQ(ReportOf(R"({"total_tokens":10})").anomaly(), "missing");
  EXPECT_EQ(ReportOf("{}").anomaly(), "missing");
  EXPECT_EQ(ReportOf(R"("lots")").anomaly(), "not_integer");
  EXPECT_EQ(ReportOf("12").anomaly(), "not_integer");
  EXPECT_EQ(ReportOf("[]").anomaly(), "not_integer");
  EXPECT_EQ(ReportOf(R"({"prompt_tokens":7,"completion_tokens":3,"total_tokens":11})").anomaly(),
            "inconsistent");
  EXPECT_EQ(ReportOf(R"({"prompt_tokens":9223372036854775807,"completion_tokens":1})").anomaly(),
            "too_large")
      << "a sum past int64 does not overflow";
}

TEST(UsageReportTest, RepeatedStreamUsageCountsTheLargestAndKeepsTheFirstAnomaly) {
  UsageReport r;
  for (const char* ev :
       {R"({"usage":null})", R"({"usage":{"prompt_tokens":5,"completion_tokens":1}})",
        R"({"usage":{"prompt_tokens":5,"completion_tokens":4}})",
        R"({"usage":{"prompt_tokens":5,"completion_tokens":2}})"})
    r.Read(nlohmann::json::parse(ev));
  EXPECT_EQ(r.reports(), 3);
  EXPECT_EQ(r.anomaly(), "");
  EXPECT_EQ(r.completion_tokens(), 4) << "a later, smaller report cannot lower the count";
  r.Read(nlohmann::json::parse(R"({"usage":{"prompt_tokens":-5,"completion_tokens":2}})"));
  r.Read(nlohmann::json::parse(R"({"usage":{"prompt_tokens":"x","completion_tokens":2}})"));
  EXPECT_EQ(r.anomaly(), "negative");
  EXPECT_NE(r.raw().find("\"x\""), std::string::npos) << "raw() is the last report: " << r.raw();
}

// A router with the test policy's "cloud" (0.5 / 1.5 USD per 1K tokens in / out) and a plan
// that reserved 10 prompt and 16 completion tokens (see Req()).
class AssessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = MustParse(kPolicy);
    auto router = Router::Create(policy_, ":memory:");
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    router_ = std::move(*router);
  }
  RoutePlan Plan() {
    auto r = Req();
    r.quality_high = true;
    auto plan = router_->Plan(r, "", 1.8e9);
    EXPECT_TRUE(plan.ok());
    EXPECT_EQ(plan->reserved_prompt_tokens, 10);
    EXPECT_EQ(plan->reserved_completion_tokens, 16);
    return *plan;
  }
  int64_t Spent() {
    return router_->ledger().SpendFor(BudgetScope::Kind::kArea, "chat", 1.8e9)->day_micro_usd;
  }
  static constexpr int64_t kReserved = 10 * 500 + 16 * 1500;
  Policy policy_;
  std::unique_ptr<Router> router_;
};

TEST_F(AssessTest, BelievableUsageIsSettledAsReported) {
  RoutePlan plan = Plan();
  Settlement s =
      router_->Assess(plan, ReportOf(R"({"prompt_tokens":10,"completion_tokens":16})"), true);
  EXPECT_EQ(s.anomaly, "");
  EXPECT_EQ(s.micro_usd, kReserved) << "exactly the bounds is possible";
  s = router_->Assess(plan, ReportOf(R"({"prompt_tokens":4,"completion_tokens":2})"), true);
  EXPECT_EQ(s.micro_usd, 4 * 500 + 2 * 1500);
  ASSERT_TRUE(router_->Settle(plan, s).ok());
  EXPECT_EQ(Spent(), 4 * 500 + 2 * 1500);
}

// Whatever the remote says, the ledger records between 0 and the reservation, never a
// credit and never more than reserved, and says why.
TEST_F(AssessTest, UnbelievableUsageSettlesAtTheReservation) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"prompt_tokens":10,"completion_tokens":2000000000})", "too_large"},
      {R"({"prompt_tokens":11,"completion_tokens":1})", "too_large"},
      {R"({"prompt_tokens":1,"completion_tokens":17})", "too_large"},
      {R"({"prompt_tokens":-2000000000,"completion_tokens":5})", "negative"},
      {R"({"prompt_tokens":5,"completion_tokens":-1})", "negative"},
      {R"({"prompt_tokens":"5","completion_tokens":"1"})", "not_integer"},
      {R"({"prompt_tokens":5.5,"completion_tokens":1})", "not_integer"},
      {R"({"prompt_tokens":null,"completion_tokens":1})", "not_integer"},
      {R"({"prompt_tokens":{},"completion_tokens":1})", "not_integer"},
      {R"({"prompt_tokens":18446744073709551615,"completion_tokens":1})", "too_large"},
      {R"({"prompt_tokens":5,"completion_tokens":1,"total_tokens":-6})", "negative"},
      {R"({"prompt_tokens":5,"completion_tokens":1,"total_tokens":600})", "inconsistent"},
      {R"({"completion_tokens":1})", "missing"},
  };
  int64_t spent = 0;
  for (const auto& [usage, kind] : cases) {
    RoutePlan plan = Plan();
    Settlement s = router_->Assess(plan, ReportOf(usage), /*complete=*/true);
    EXPECT_EQ(s.anomaly, kind) << usage;
    EXPECT_EQ(s.micro_usd, kReserved) << usage;
    EXPECT_EQ(s.prompt_tokens, 10);
    EXPECT_EQ(s.completion_tokens, 16);
    EXPECT_NE(s.detail.find("remote 'cloud'"), std::string::npos) << s.detail;
    EXPECT_NE(s.detail.find(kind), std::string::npos) << s.detail;
    ASSERT_TRUE(router_->Settle(plan, s).ok()) << usage;
    spent += kReserved;
    EXPECT_EQ(Spent(), spent) << usage;
  }
}

TEST_F(AssessTest, MissingUsageIsAnAnomalyOnlyInAWholeResponse) {
  RoutePlan plan = Plan();
  Settlement whole = router_->Assess(plan, UsageReport(), /*complete=*/true);
  EXPECT_EQ(whole.anomaly, "missing");
  EXPECT_NE(whole.detail.find("none"), std::string::npos) << whole.detail;
  EXPECT_EQ(whole.micro_usd, kReserved);
  Settlement cut = router_->Assess(plan, UsageReport(), /*complete=*/false);
  EXPECT_EQ(cut.anomaly, "") << "a stream cut short is not the remote's lie";
  EXPECT_EQ(cut.micro_usd, kReserved) << "but the worst case is still settled";
  Settlement cut_bad = router_->Assess(plan, ReportOf(R"({"prompt_tokens":-1})"), false);
  EXPECT_EQ(cut_bad.anomaly, "negative");
}

TEST(RouterTest, RemoteUnreachableIsIoError) {
  Policy p = MustParse(kPolicy, {{"URL", "http://127.0.0.1:1/v1"}, {"KEY", "k"}});
  auto router = Router::Create(p, ":memory:");
  ASSERT_TRUE(router.ok());
  auto reply = (*router)->CallRemote(*p.FindBackend("cloud"), "/chat/completions",
                                     nlohmann::json::object());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kIOError);
  EXPECT_EQ(reply.status().message().rfind("unreachable", 0), 0u) << reply.status().message();
}

TEST(PolicyTest, ParsesCaFileWithEnv) {
  auto p = ParsePolicy("[backends.cloud]\nkind = \"openai\"\nbase_url = \"https://gw:8443/v1\"\n"
                       "model = \"m\"\nca_file = \"${DIR}/ca.pem\"\n",
                       FakeEnv({{"DIR", "/etc/pocket"}}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->FindBackend("cloud")->ca_file, "/etc/pocket/ca.pem");
}

TEST(RouterTest, MissingCaFileFailsAtStartNamingIt) {
  Policy p = MustParse(kPolicy, {{"URL", "https://127.0.0.1:1/v1"}, {"KEY", "k"}});
  for (auto& b : p.backends)
    if (b.name == "cloud") b.ca_file = "/nonexistent/pocket-ca.pem";
  auto router = Router::Create(p, ":memory:");
  ASSERT_FALSE(router.ok());
  EXPECT_NE(router.status().message().find("backend 'cloud'"), std::string::npos)
      << router.status().message();
  EXPECT_NE(router.status().message().find("/nonexistent/pocket-ca.pem"), std::string::npos)
      << router.status().message();
}

// A loopback TCP listener that accepts one connection and hands it to `serve` on its
// own thread: a remote that streams (the HTTP client itself is tested in
// net/http_client_test.cc).
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(boost::asio::ip::tcp::socket&)> serve)
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, serve = std::move(serve)] {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (!ec) serve(socket);
    });
  }
  ~OneShotServer() { thread_.join(); }
  std::string port() const { return std::to_string(acceptor_.local_endpoint().port()); }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

// Reads one request's head from `s` (the client's request fits one read on loopback).
void ReadRequest(boost::asio::ip::tcp::socket& s) {
  std::string got;
  char buf[4096];
  boost::system::error_code ec;
  while (got.find("\r\n\r\n") == std::string::npos && !ec) {
    const size_t n = s.read_some(boost::asio::buffer(buf), ec);
    got.append(buf, n);
  }
}

void WriteAll(boost::asio::ip::tcp::socket& s, const std::string& bytes) {
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(bytes), ec);
}

std::string Chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// A remote that streams `body` (raw bytes after the headers, chunked).
Status StreamFrom(const std::string& body, std::vector<nlohmann::json>* events) {
  OneShotServer server([&](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    // Cut the body into 7-byte chunks so events and CRLFs straddle chunk boundaries.
    for (size_t i = 0; i < body.size(); i += 7) out += Chunk(body.substr(i, 7));
    WriteAll(s, out + "0\r\n\r\n");
  });
  Policy p =
      MustParse(kPolicy, {{"URL", "http://127.0.0.1:" + server.port() + "/v1"}, {"KEY", "k"}});
  auto router = Router::Create(p, ":memory:");
  if (!router.ok()) return router.status();
  return (*router)->CallRemoteStream(*p.FindBackend("cloud"), "/chat/completions",
                                     nlohmann::json::object(), [&](nlohmann::json& e) {
                                       events->push_back(e);
                                       return true;
                                     });
}

TEST(RouterTest, CallRemoteStreamDeliversEventsUntilDone) {
  std::vector<nlohmann::json> events;
  Status s = StreamFrom(
      "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n: ping\r\n\r\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\r\n\r\n"
      "data: [DONE]\r\n\r\n",
      &events);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1]["choices"][0]["delta"]["content"], "lo");
  UsageReport usage;
  for (const auto& e : events) usage.Read(e);
  EXPECT_EQ(usage.reports(), 1);
  EXPECT_EQ(usage.anomaly(), "");
  EXPECT_EQ(usage.prompt_tokens(), 3);
  EXPECT_EQ(usage.completion_tokens(), 2);
}

TEST(RouterTest, CallRemoteStreamFailuresAreBadResponse) {
  for (const std::string body :
       {"data: {\"choices\":[]}\n\n",                              // no [DONE]
        "data: {\"error\":{\"message\":\"overloaded\"}}\n\n",       // an error event
        "data: not json\n\ndata: [DONE]\n\n"}) {                    // an event that is not JSON
    std::vector<nlohmann::json> events;
    Status s = StreamFrom(body, &events);
    ASSERT_FALSE(s.ok()) << body;
    EXPECT_EQ(s.message().rfind("bad_response: cloud", 0), 0u) << s.message();
  }
}

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A remote that answers one non-streamed call with `body` (Content-Length).
Result<RemoteReply> ReplyFrom(const std::string& body) {
  OneShotServer server([&](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    WriteAll(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  Policy p =
      MustParse(kPolicy, {{"URL", "http://127.0.0.1:" + server.port() + "/v1"}, {"KEY", "k"}});
  auto router = Router::Create(p, ":memory:");
  if (!router.ok()) return router.status();
  return (*router)->CallRemote(*p.FindBackend("cloud"), "/chat/completions",
                               nlohmann::json::object());
}

TEST(RouterTest, DeeplyNestedReplyIsBadResponseNotACrash) {
  for (size_t depth : {65u, 10000u, 200000u}) {
    auto r = ReplyFrom(R"({"choices":[{"message":{"content":"x"}}],"extra":)" + Nested(depth) +
                       "}");
    ASSERT_FALSE(r.ok()) << depth;
    EXPECT_EQ(r.status().code(), StatusCode::kIOError);
    EXPECT_EQ(r.status().message(),
              "bad_response: cloud: response nests deeper than 64 levels of arrays and objects");
  }
  auto ok = ReplyFrom(R"({"choices":[],"extra":)" + Nested(60) + "}");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(RouterTest, DeeplyNestedStreamEventIsBadResponseNotACrash) {
  for (size_t depth : {65u, 100000u}) {
    std::vector<nlohmann::json> events;
    Status s = StreamFrom("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                          "data: {\"choices\":[],\"x\":" + Nested(depth) + "}\n\ndata: [DONE]\n\n",
                          &events);
    ASSERT_FALSE(s.ok()) << depth;
    EXPECT_EQ(s.message().rfind("bad_response: cloud", 0), 0u) << s.message();
    EXPECT_NE(s.message().find("a stream event nests deeper than 64 levels"), std::string::npos)
        << s.message();
    EXPECT_EQ(events.size(), 1u);
  }
}

TEST(RouterTest, ErrorEventOfAnyShapeIsBadResponse) {
  // An error object whose message is not a string once threw out of the reader.
  for (const std::string err : {R"({"message":42})", R"({"message":{"a":[1]}})", R"({"code":1})",
                                R"("overloaded")", "[1,2]", "7", "true"}) {
    std::vector<nlohmann::json> events;
    Status s = StreamFrom("data: {\"error\":" + err + "}\n\ndata: [DONE]\n\n", &events);
    ASSERT_FALSE(s.ok()) << err;
    EXPECT_NE(s.message().find("error event"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace pocket::router
