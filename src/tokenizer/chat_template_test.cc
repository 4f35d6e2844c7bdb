#include "tokenizer/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/file.h"
#include "tokenizer/tokenizer_testutil.h"

namespace pocket::tokenizer {
namespace {

using ::testing::HasSubstr;

std::string ReadTestdata(const std::string& name) {
  auto text = ReadFile(testing::TestdataPath(name));
  PK_CHECK(text.ok());
  return *text;
}

// Every template × conversation × add_generation_prompt renders exactly as jinja2 did in
// transformers' configuration (tests/golden/tokenizer/make_golden.py), or fails where it
// raised.
TEST(ChatTemplateTest, MatchesJinja2Goldens) {
  const auto golden = nlohmann::json::parse(ReadTestdata("chat_golden.json"));
  std::vector<std::vector<ChatMessage>> conversations;
  for (const auto& conv : golden.at("conversations")) {
    std::vector<ChatMessage> messages;
    for (const auto& m : conv) messages.push_back({m.at("role"), m.at("content")});
    conversations.push_back(std::move(messages));
  }
  int checked = 0;
  for (const auto& c : golden.at("cases")) {
    const std::string name = c.at("template");
    auto tmpl = ChatTemplate::Parse(ReadTestdata("templates/" + name + ".jinja"));
    ASSERT_TRUE(tmpl.ok()) << name << ": " << tmpl.status().ToString();
    ChatOptions options;
    for (const auto& [k, v] : c.at("extra").items()) options.extra_vars.emplace_back(k, v);
    const auto& conv = conversations.at(c.at("conversation").get<size_t>());
    auto out = tmpl->Apply(conv, c.at("add_generation_prompt").get<bool>(),
                           c.at("bos_token").get<std::string>(),
                           c.at("eos_token").get<std::string>(), options);
    const std::string where = name + " conversation " + c.at("conversation").dump() +
                              " add_generation_prompt=" + c.at("add_generation_prompt").dump();
    if (c.contains("error")) {
      ASSERT_FALSE(out.ok()) << where;
      EXPECT_THAT(out.status().message(), HasSubstr(c.at("error").get<std::string>())) << where;
    } else {
      ASSERT_TRUE(out.ok()) << where << ": " << out.status().ToString();
      EXPECT_EQ(*out, c.at("rendered").get<std::string>()) << where;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 80);
}

// More template styles and feature mixes (tests/golden/tokenizer/make_chat_extra.py, jinja2
// 3.1.6 in transformers' configuration).
TEST(ChatTemplateTest, MatchesJinja2OnMoreTemplates) {
  const auto golden = nlohmann::json::parse(ReadTestdata("chat_golden_extra.json"));
  std::vector<std::vector<ChatMessage>> conversations;
  for (const auto& conv : golden.at("conversations")) {
    std::vector<ChatMessage> messages;
    for (const auto& m : conv) messages.push_back({m.at("role"), m.at("content")});
    conversations.push_back(std::move(messages));
  }
  ChatOptions options;
  options.now_unix_s = 1721995200;  // 2024-07-26 12:00 UTC, as in the script
  int checked = 0;
  for (const auto& c : golden.at("cases")) {
    const std::string where = c.at("name").get<std::string>() + " conversation " +
                              c.at("conversation").dump() +
                              " add_generation_prompt=" + c.at("add_generation_prompt").dump();
    auto tmpl = ChatTemplate::Parse(c.at("source").get<std::string>());
    ASSERT_TRUE(tmpl.ok()) << where << ": " << tmpl.status().ToString();
    auto out = tmpl->Apply(conversations.at(c.at("conversation").get<size_t>()),
                           c.at("add_generation_prompt").get<bool>(), "<s>", "</s>", options);
    if (c.contains("error")) {
      ASSERT_FALSE(out.ok()) << where;
      EXPECT_THAT(out.status().message(), HasSubstr(c.at("error").get<std::string>())) << where;
    } else {
      ASSERT_TRUE(out.ok()) << where << ": " << out.status().ToString();
      EXPECT_EQ(*out, c.at("rendered").get<std::string>()) << where;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 42);
}

TEST(ChatTemplateTest, BuiltinsAreTheTestdataTemplates) {
  for (const std::string& name : ChatTemplate::BuiltinNames()) {
    EXPECT_EQ(ChatTemplate::BuiltinSource(name), ReadTestdata("templates/" + name + ".jinja"))
        << name;
    EXPECT_TRUE(ChatTemplate::Builtin(name).ok()) << name;
  }
  for (const char* name : {"chatml", "llama3", "llama2", "mistral", "zephyr"}) {
    EXPECT_TRUE(ChatTemplate::Builtin(name).ok()) << name;
  }
  auto missing = ChatTemplate::Builtin("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("chatml"));
}

TEST(ChatTemplateTest, UnsupportedSyntaxNamesTheFallbackFlag) {
  for (const char* bad :
       {"{% call f() %}x{% endcall %}", "{% raw %}x{% endraw %}", "{{ messages | frobnicate }}",
        "{% if x %}never closed", "{{ 'unterminated }}", "{{ x is weird }}",
        "{% include 'other.jinja' %}", "{{ ) }}", "{{ a.b["}) {
    auto t = ChatTemplate::Parse(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr("--chat-template")) << bad;
  }
}

std::string Render(std::string_view source, std::vector<ChatMessage> messages = {{"user", "hi"}},
                   bool add_generation_prompt = false) {
  auto t = ChatTemplate::Parse(source);
  if (!t.ok()) return "PARSE ERROR: " + t.status().ToString();
  ChatOptions options;
  options.now_unix_s = 1721995200;  // 2024-07-26 12:00 UTC
  auto out = t->Apply(messages, add_generation_prompt, "<s>", "</s>", options);
  if (!out.ok()) return "ERROR: " + out.status().ToString();
  return *out;
}

// Expected strings below were checked with jinja2 3.1.6 (trim_blocks, lstrip_blocks).
TEST(ChatTemplateTest, Expressions) {
  EXPECT_EQ(
      Render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}"),
      "7 3 -4 2 3.5 1024");
  EXPECT_EQ(Render("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }}"),
            "a1None ababab [1, 2, 3]");
  EXPECT_EQ(Render("{{ 'x' if false else 'y' }}{{ 'z' if true }}"), "yz");
  EXPECT_EQ(Render("{{ not 1 == 2 and 'b' in 'abc' and 3 not in [1, 2] }}"), "True");
  EXPECT_EQ(Render("{{ messages[0]['role'] }} {{ messages[0].content }} {{ messages[-1].role }}"),
            "user hi user");
  EXPECT_EQ(Render("{{ 'hello'[1:3] }} {{ [1,2,3,4][::2] }} {{ [1,2,3][::-1] }}"),
            "el [1, 3] [3, 2, 1]");
  EXPECT_EQ(
      Render(
          "{{ '  pad  ' | trim }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|{{ 'a\\tb\\n' | length }}"),
      "pad|ABab|4");
  EXPECT_EQ(Render("{{ {'a': [1, 'x'], 'b': none, 'c': true} | tojson }}"),
            "{\"a\": [1, \"x\"], \"b\": null, \"c\": true}");
  EXPECT_EQ(Render("{{ {'a': [1]} | tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(Render("{{ undefined_name }}|{{ undefined_name | default('d') }}|{{ x is defined }}"),
            "|d|False");
  EXPECT_EQ(Render("{{ '  a b  '.strip() }}|{{ 'abc'.startswith('ab') }}|{{ 'a,b'.split(',') }}"),
            "a b|True|['a', 'b']");
  EXPECT_EQ(Render("{{ \"it's\" }} {{ ['it\\'s', \"q\\\"\"] }} {{ '\\u00e9\\x41' }}"),
            "it's [\"it's\", 'q\"'] éA");
  EXPECT_EQ(Render("{{ strftime_now('%d %b %Y') }}"), "26 Jul 2024");
  // Python's whitespace is Unicode-aware (trim on a message ending in U+3000 or NBSP).
  EXPECT_EQ(Render("[{{ '\u3000 x\u00a0\u2003' | trim }}] {{ 'a\u3000b  c'.split() }} "
                   "[{{ 'xx\u00e9yy'.strip('xy') }}]"),
            "[x] ['a', 'b', 'c'] [\u00e9]");
  EXPECT_EQ(
      Render("{{ range(3) | list }} {{ [3, 1, 3] | unique | list }} {{ [1, 2] | join('-') }}"),
      "[0, 1, 2] [3, 1] 1-2");
}

TEST(ChatTemplateTest, StatementsAndWhitespaceControl) {
  EXPECT_EQ(
      Render(
          "{% for i in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
          "{{ loop.length }}{{ loop.revindex }};{% endfor %}"),
      "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
  EXPECT_EQ(Render("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for i in range(10) if i is odd %}{% if i > 6 %}{% break %}{% endif %}"
                   "{% if i == 3 %}{% continue %}{% endif %}{{ i }}{% endfor %}"),
            "15");
  EXPECT_EQ(Render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}"),
            "a=1 b=2 ");
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% for m in [1, 2, 3] %}{% set ns.n = ns.n + m %}"
                   "{% set local = 5 %}{% endfor %}{{ ns.n }}{{ local is defined }}"),
            "6False");
  EXPECT_EQ(Render("{% set x %}captured {{ 1 }}{% endset %}[{{ x }}]"), "[captured 1]");
  EXPECT_EQ(Render("{% if false %}a{% elif 0 %}b{% elif 'x' %}c{% else %}d{% endif %}"), "c");
  // trim_blocks removes the newline after a block tag; lstrip_blocks the indentation before.
  EXPECT_EQ(Render("{% if true %}\n  yes\n  {% endif %}\nend"), "  yes\nend");
  EXPECT_EQ(Render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(Render("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(Render("x {{- ' y ' -}} z{# comment #}\n!"), "x y z!");
  EXPECT_EQ(Render("trailing newline dropped\n"), "trailing newline dropped");
}

TEST(ChatTemplateTest, RuntimeErrorsAreStatuses) {
  EXPECT_THAT(Render("{{ raise_exception('bad roles') }}"), HasSubstr("bad roles"));
  EXPECT_THAT(Render("{{ missing.attr }}"), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render("{{ 'a' + 1 }}"), HasSubstr("unsupported operand"));
  EXPECT_THAT(Render("{{ 1 // 0 }}"), HasSubstr("division by zero"));
  EXPECT_THAT(Render("{% for x in 3 %}{% endfor %}"), HasSubstr("not iterable"));
}

TEST(ChatTemplateTest, RendersConversationForEachFamily) {
  const std::vector<ChatMessage> conv = {{"system", "S"}, {"user", "U"}};
  auto qwen = ChatTemplate::Builtin("qwen2.5");
  ASSERT_TRUE(qwen.ok());
  EXPECT_EQ(
      *qwen->Apply(conv, true, "", ""),
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  auto llama3 = ChatTemplate::Builtin("llama3");
  ASSERT_TRUE(llama3.ok());
  EXPECT_EQ(*llama3->Apply(conv, true, "<|begin_of_text|>", "<|eot_id|>"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

}  // namespace
}  // namespace pocket::tokenizer
