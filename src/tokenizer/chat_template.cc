// The public ChatTemplate API: parsing a template (jinja_lexer.cc, jinja_parser.cc) into a
// shared immutable program, and rendering a conversation with it (jinja_render.cc,
// jinja_filters.cc) with the globals transformers' apply_chat_template provides. Semantics
// follow jinja2 3.x as transformers configures it for apply_chat_template
// (ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True, the
// loopcontrols extension, tojson with ensure_ascii=False, raise_exception and strftime_now
// globals); the goldens in testdata/tokenizer/chat_golden.json were rendered by that
// configuration. The built-in templates are in builtin_templates.cc.
#include "tokenizer/chat_template.h"

#include <ctime>
#include <optional>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_render.h"
#include "tokenizer/jinja_value.h"

namespace pocket::tokenizer {

using jinja::Array;
using jinja::KwArgs;
using jinja::Value;

struct ChatTemplate::Program {
  std::string source;
  std::vector<jinja::Node> nodes;
};

ChatTemplate::ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}

const std::string& ChatTemplate::source() const { return program_->source; }

Result<ChatTemplate> ChatTemplate::Parse(std::string_view jinja_source) {
  PK_ASSIGN_OR_RETURN(std::vector<jinja::Segment> segs, jinja::LexTemplate(jinja_source));
  PK_ASSIGN_OR_RETURN(std::vector<jinja::Node> nodes, jinja::ParseSegments(std::move(segs)));
  auto program = std::make_shared<Program>();
  program->source = std::string(jinja_source);
  program->nodes = std::move(nodes);
  return ChatTemplate(std::move(program));
}

Result<std::string> ChatTemplate::Apply(std::span<const ChatMessage> messages,
                                        bool add_generation_prompt, std::string_view bos_token,
                                        std::string_view eos_token) const {
  return Apply(messages, add_generation_prompt, bos_token, eos_token, ChatOptions{});
}

Result<std::string> ChatTemplate::Apply(std::span<const ChatMessage> messages,
                                        bool add_generation_prompt, std::string_view bos_token,
                                        std::string_view eos_token,
                                        const ChatOptions& options) const {
  std::string out;
  jinja::Renderer r(&out);
  Array list;
  for (const ChatMessage& m : messages) {
    Value msg = Value::Dict();
    msg.obj->Set("role", Value::Str(m.role));
    msg.obj->Set("content", Value::Str(m.content));
    list.push_back(std::move(msg));
  }
  r.SetGlobal("messages", Value::List(std::move(list)));
  r.SetGlobal("add_generation_prompt", Value::Bool(add_generation_prompt));
  r.SetGlobal("bos_token", Value::Str(std::string(bos_token)));
  r.SetGlobal("eos_token", Value::Str(std::string(eos_token)));
  r.SetGlobal("raise_exception", Value::Fn([](std::vector<Value>& a, KwArgs&) -> Result<Value> {
                return Status::InvalidArgument("raise_exception: " +
                                               (a.empty() ? std::string() : jinja::ToString(a[0])));
              }));
  r.SetGlobal("namespace", Value::Fn([](std::vector<Value>& a, KwArgs& kw) -> Result<Value> {
                Value ns = Value::Dict();
                ns.obj->is_namespace = true;
                if (!a.empty() && a[0].is_object()) {
                  for (const auto& [k, v] : a[0].obj->items) ns.obj->Set(k, v);
                }
                for (auto& [k, v] : kw) ns.obj->Set(k, v);
                return ns;
              }));
  r.SetGlobal("range", Value::Fn([](std::vector<Value>& a, KwArgs&) -> Result<Value> {
                if (a.empty() || a.size() > 3)
                  return Status::InvalidArgument("range expects 1 to 3 arguments");
                int64_t start = 0, stop, step = 1;
                if (a.size() == 1) {
                  stop = jinja::AsInt(a[0]);
                } else {
                  start = jinja::AsInt(a[0]);
                  stop = jinja::AsInt(a[1]);
                  if (a.size() == 3) step = jinja::AsInt(a[2]);
                }
                if (step == 0) return Status::InvalidArgument("range step must not be zero");
                Array values;
                for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
                  if (values.size() >= 100000) return Status::InvalidArgument("range too large");
                  values.push_back(Value::Int(k));
                }
                return Value::List(std::move(values));
              }));
  const std::optional<int64_t> now = options.now_unix_s;
  r.SetGlobal("strftime_now", Value::Fn([now](std::vector<Value>& a, KwArgs&) -> Result<Value> {
                const std::string fmt = a.empty() ? std::string("%Y-%m-%d") : jinja::ToString(a[0]);
                const std::time_t t = now ? static_cast<std::time_t>(*now) : std::time(nullptr);
                std::tm tm{};
                if (now) {
                  gmtime_r(&t, &tm);
                } else {
                  localtime_r(&t, &tm);
                }
                char buf[256];
                const size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
                return Value::Str(std::string(buf, n));
              }));
  for (const auto& [k, v] : options.extra_vars) r.SetGlobal(k, Value::Str(v));
  auto flow = r.Exec(program_->nodes);
  if (!flow.ok()) return flow.status();
  return out;
}

}  // namespace pocket::tokenizer
