// Chat templates: renders a conversation into the prompt text a chat model was trained on,
// from the Jinja source in tokenizer.chat_template (GGUF) / tokenizer_config.json.
//
// A small Jinja interpreter, rendering like transformers' apply_chat_template (jinja2 with
// trim_blocks, lstrip_blocks, loop controls, and its tojson / raise_exception /
// strftime_now helpers). Supported: text, {{ }}, {% if/elif/else %}, {% for %} (with
// else, an `if` filter, tuple targets, loop.index/index0/revindex/first/last/length,
// break/continue), {% set %} (names, namespace attributes, blocks), comments, whitespace
// control ({%- -%}, {%+), literals (strings with Python escapes, numbers, lists, dicts),
// and/or/not, comparisons, in / not in, is [not] tests, + - * / // % **, ~, a if b else c,
// attribute / item / slice access, filters (trim, length, upper, lower, tojson, default,
// join, first, last, list, replace, string, int, items, selectattr, map, ...), string and
// dict methods (strip, startswith, split, items, get, ...), namespace(), range(), macros
// (with default arguments; no call blocks). Includes, call/raw/filter blocks and other tags
// are a parse error that names the fallback flag --chat-template.
//
// Users: runtime/server/cli (chat prompts). Thread safety: ChatTemplate is immutable after
// Parse()/Builtin(); Apply is const and may run on many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pocket::formats {
class GgufFile;
}  // namespace pocket::formats

namespace pocket::tokenizer {

struct ChatMessage {
  std::string role, content;
};

struct ChatOptions {
  // Extra string variables visible to the template (e.g. {"date_string", "26 Jul 2024"}).
  std::vector<std::pair<std::string, std::string>> extra_vars;
  // The time strftime_now() formats (UTC); the local clock when unset.
  std::optional<int64_t> now_unix_s;
};

class ChatTemplate {
 public:
  // Parses `jinja_source`. InvalidArgument with the line and what is wrong for syntax this
  // interpreter does not support; the message names the fallback flag --chat-template.
  static Result<ChatTemplate> Parse(std::string_view jinja_source);
  // A built-in template: "chatml", "llama3", "llama2", "mistral", "zephyr", and the exact
  // model templates "qwen2.5", "smollm2", "llama3.2". NotFound listing the names otherwise.
  static Result<ChatTemplate> Builtin(std::string_view name);
  static std::vector<std::string> BuiltinNames();
  // The Jinja source of a built-in template ("" for an unknown name).
  static std::string_view BuiltinSource(std::string_view name);
  // tokenizer.chat_template of a GGUF file; NotFound naming the key and --chat-template when
  // the file has none.
  static Result<ChatTemplate> FromGguf(const formats::GgufFile& gguf);

  // Renders `messages`. Variables: messages (list of {role, content}), add_generation_prompt,
  // bos_token, eos_token, plus options.extra_vars. InvalidArgument for a runtime error
  // (raise_exception(...) in the template, undefined attribute access, type errors).
  Result<std::string> Apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                            std::string_view bos_token, std::string_view eos_token) const;
  Result<std::string> Apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                            std::string_view bos_token, std::string_view eos_token,
                            const ChatOptions& options) const;

  const std::string& source() const;

  struct Program;

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program);
  std::shared_ptr<const Program> program_;
};

}  // namespace pocket::tokenizer
