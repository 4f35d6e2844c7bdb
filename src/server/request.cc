// Request-body validation for the OpenAI endpoints. Every access to the body goes through
// a type check first: nlohmann's value(key, default), get<T>() and at() throw on a type
// that differs from the one asked for, and an exception on the server's I/O thread once
// took the whole process down. A null optional field counts as absent, as OpenAI does.
// Fields the server only forwards to a remote are checked too (type, and range where
// OpenAI states one), so a remote never sees a request Pocket itself would refuse.
#include "server/request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "base/json_limits.h"
#include "router/privacy.h"

namespace pocket::server {
namespace {

using nlohmann::json;

RequestError Invalid(const std::string& param, const std::string& message) {
  return RequestError{Status::InvalidArgument(message), param, ""};
}

// "a string", "an integer", ...: how a value's type reads in an error message.
const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a value";
  }
}

// OpenAI's wording for a type mismatch.
RequestError WrongType(const std::string& param, const std::string& expected, const json& got) {
  return Invalid(param, "Invalid type for '" + param + "': expected " + expected + ", but got " +
                            TypeName(got) + " instead.");
}

// The member `key` of object `obj`, or nullptr when it is absent or null.
const json* Opt(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string Join(const std::string& parent, const char* key) {
  return parent.empty() ? std::string(key) : parent + "." + key;
}

enum class Kind { kString, kBool, kInteger, kNumber, kObject, kArray };

bool Is(const json& v, Kind kind) {
  switch (kind) {
    case Kind::kString:
      return v.is_string();
    case Kind::kBool:
      return v.is_boolean();
    case Kind::kInteger:
      return v.is_number_integer();
    case Kind::kNumber:
      return v.is_number() && std::isfinite(v.get<double>());
    case Kind::kObject:
      return v.is_object();
    case Kind::kArray:
      return v.is_array();
  }
  return false;
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kBool:
      return "a boolean";
    case Kind::kInteger:
      return "an integer";
    case Kind::kNumber:
      return "a number";
    case Kind::kObject:
      return "an object";
    case Kind::kArray:
      return "an array";
  }
  return "a value";
}

struct FieldSpec {
  const char* key;
  Kind kind;
  bool required = false;
};

// Checks the listed members of `obj` (whose own name is `where`, "" for the body).
std::optional<RequestError> CheckFields(const json& obj, const std::string& where,
                                        std::initializer_list<FieldSpec> specs) {
  for (const FieldSpec& f : specs) {
    const json* v = Opt(obj, f.key);
    if (!v) {
      if (f.required)
        return Invalid(Join(where, f.key),
                       "Missing required parameter: '" + Join(where, f.key) + "'.");
      continue;
    }
    if (!Is(*v, f.kind)) return WrongType(Join(where, f.key), KindName(f.kind), *v);
  }
  return std::nullopt;
}

// Whether integer `v` lies in [lo, hi]; an unsigned JSON integer past int64 never does.
bool IntIn(const json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return false;
  const int64_t x = v.get<int64_t>();
  return x >= lo && x <= hi;
}

// An optional integer member in [lo, hi].
std::optional<RequestError> CheckIntRange(const json& obj, const char* key, int64_t lo,
                                          int64_t hi) {
  const json* v = Opt(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) return WrongType(key, "an integer", *v);
  if (!IntIn(*v, lo, hi))
    return Invalid(key, "'" + std::string(key) + "' must be an integer between " +
                            std::to_string(lo) + " and " + std::to_string(hi));
  return std::nullopt;
}

// An optional finite number member in [lo, hi] (integral bounds).
std::optional<RequestError> CheckNumberRange(const json& obj, const char* key, int lo, int hi) {
  const json* v = Opt(obj, key);
  if (!v) return std::nullopt;
  if (!Is(*v, Kind::kNumber)) return WrongType(key, "a number", *v);
  const double x = v->get<double>();
  if (x < lo || x > hi)
    return Invalid(key, "'" + std::string(key) + "' must be a number between " +
                            std::to_string(lo) + " and " + std::to_string(hi));
  return std::nullopt;
}

// OpenAI function-calling fields, forwarded to a remote as they are.
std::optional<RequestError> CheckFunction(const json& f, const std::string& where) {
  if (!f.is_object()) return WrongType(where, "an object", f);
  return CheckFields(f, where,
                     {{"name", Kind::kString, true},
                      {"description", Kind::kString},
                      {"parameters", Kind::kObject},
                      {"strict", Kind::kBool}});
}

std::optional<RequestError> CheckTools(const json& b) {
  if (const json* tools = Opt(b, "tools")) {
    if (!tools->is_array()) return WrongType("tools", "an array", *tools);
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& t = (*tools)[i];
      const std::string where = "tools[" + std::to_string(i) + "]";
      if (!t.is_object()) return WrongType(where, "an object", t);
      if (auto e = CheckFields(t, where, {{"type", Kind::kString, true}})) return e;
      if (t["type"] == "function") {
        const json* f = Opt(t, "function");
        if (!f)
          return Invalid(where + ".function",
                         "Missing required parameter: '" + where + ".function'.");
        if (auto e = CheckFunction(*f, where + ".function")) return e;
      }
    }
  }
  if (const json* choice = Opt(b, "tool_choice")) {
    if (choice->is_object()) {
      if (auto e = CheckFields(*choice, "tool_choice",
                               {{"type", Kind::kString, true}, {"function", Kind::kObject}}))
        return e;
      if (const json* f = Opt(*choice, "function"))
        if (auto e = CheckFields(*f, "tool_choice.function", {{"name", Kind::kString, true}}))
          return e;
    } else if (!choice->is_string()) {
      return WrongType("tool_choice", "a string or an object", *choice);
    }
  }
  if (const json* fns = Opt(b, "functions")) {
    if (!fns->is_array()) return WrongType("functions", "an array", *fns);
    for (size_t i = 0; i < fns->size(); ++i)
      if (auto e = CheckFunction((*fns)[i], "functions[" + std::to_string(i) + "]")) return e;
  }
  if (const json* call = Opt(b, "function_call")) {
    if (call->is_object()) {
      if (auto e = CheckFields(*call, "function_call", {{"name", Kind::kString, true}})) return e;
    } else if (!call->is_string()) {
      return WrongType("function_call", "a string or an object", *call);
    }
  }
  return std::nullopt;
}

// Fields the local model does not use but a remote would get.
std::optional<RequestError> CheckForwardedFields(const json& b, bool chat) {
  if (auto e = CheckFields(b, "",
                           {{"user", Kind::kString},
                            {"service_tier", Kind::kString},
                            {"reasoning_effort", Kind::kString},
                            {"parallel_tool_calls", Kind::kBool},
                            {"store", Kind::kBool},
                            {"metadata", Kind::kObject},
                            {"prediction", Kind::kObject},
                            {"audio", Kind::kObject},
                            {"web_search_options", Kind::kObject},
                            {"modalities", Kind::kArray},
                            {"echo", Kind::kBool},
                            {"suffix", Kind::kString}}))
    return e;
  if (const json* meta = Opt(b, "metadata")) {
    for (const auto& [k, v] : meta->items())
      if (!v.is_string()) return WrongType("metadata." + k, "a string", v);
  }
  if (const json* modalities = Opt(b, "modalities")) {
    for (size_t i = 0; i < modalities->size(); ++i)
      if (!(*modalities)[i].is_string())
        return WrongType("modalities[" + std::to_string(i) + "]", "a string", (*modalities)[i]);
  }
  for (const char* key : {"frequency_penalty", "presence_penalty"})
    if (auto e = CheckNumberRange(b, key, -2, 2)) return e;
  if (const json* bias = Opt(b, "logit_bias")) {
    if (!bias->is_object()) return WrongType("logit_bias", "an object", *bias);
    for (const auto& [k, v] : bias->items()) {
      if (!Is(v, Kind::kNumber)) return WrongType("logit_bias." + k, "a number", v);
      if (v.get<double>() < -100 || v.get<double>() > 100)
        return Invalid("logit_bias." + k, "'logit_bias." + k + "' must be between -100 and 100");
    }
  }
  if (chat) {
    if (auto e = CheckFields(b, "", {{"logprobs", Kind::kBool}})) return e;
    if (auto e = CheckIntRange(b, "top_logprobs", 0, 20)) return e;
  } else {
    if (auto e = CheckIntRange(b, "logprobs", 0, 5)) return e;
    if (auto e = CheckIntRange(b, "best_of", 1, 20)) return e;
  }
  return CheckTools(b);
}

// The sampling and output fields shared by chat and completions.
std::optional<RequestError> ParseCommon(const json& b, const GenerationDefaults& defaults,
                                        GenerationFields* out) {
  runtime::GenerateRequest& gen = out->gen;
  gen.sampling.temperature = defaults.temperature;
  gen.sampling.top_p = defaults.top_p;
  gen.sampling.top_k = defaults.top_k;
  gen.sampling.min_p = defaults.min_p;
  gen.sampling.seed = defaults.seed;
  gen.max_tokens = defaults.max_tokens;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const json* v = Opt(b, key)) {
      if (!v->is_number_integer()) return WrongType(key, "an integer", *v);
      if (!IntIn(*v, 1, 1 << 24))
        return Invalid(key, "'" + std::string(key) + "' must be a positive integer");
      gen.max_tokens = static_cast<int>(v->get<int64_t>());
      out->max_tokens_requested = true;
    }
  }
  if (auto e = CheckNumberRange(b, "temperature", 0, 2)) return e;
  if (const json* v = Opt(b, "temperature")) gen.sampling.temperature = v->get<float>();
  if (const json* v = Opt(b, "top_p")) {
    if (!Is(*v, Kind::kNumber)) return WrongType("top_p", "a number", *v);
    if (v->get<double>() <= 0 || v->get<double>() > 1)
      return Invalid("top_p", "'top_p' must be a number in (0, 1]");
    gen.sampling.top_p = v->get<float>();
  }
  if (const json* bias = Opt(b, "logit_bias"); bias != nullptr && bias->is_object()) {
    for (const auto& [k, v] : bias->items()) {  // types and range: CheckForwardedFields
      if (!Is(v, Kind::kNumber)) continue;
      int32_t id = -1;
      const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), id);
      if (ec != std::errc() || end != k.data() + k.size() || id < 0) {
        return Invalid("logit_bias." + k, "'logit_bias' keys must be token ids, got '" + k + "'");
      }
      gen.sampling.logit_bias.emplace_back(id, v.get<float>());
    }
  }
  if (const json* v = Opt(b, "seed")) {
    if (!v->is_number_integer()) return WrongType("seed", "an integer", *v);
    gen.sampling.seed =
        v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
  if (const json* v = Opt(b, "n")) {
    if (!v->is_number_integer()) return WrongType("n", "an integer", *v);
    if (*v != 1) return Invalid("n", "'n': only n=1 is supported");
  }
  if (const json* v = Opt(b, "stop")) {
    if (v->is_string()) {
      gen.stop.push_back(v->get<std::string>());
    } else if (v->is_array() && v->size() <= 4) {
      for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string())
          return WrongType("stop[" + std::to_string(i) + "]", "a string", (*v)[i]);
        gen.stop.push_back((*v)[i].get<std::string>());
      }
    } else {
      return Invalid("stop", "'stop' must be a string or up to 4 strings");
    }
  }
  if (const json* v = Opt(b, "stream")) {
    if (!v->is_boolean()) return WrongType("stream", "a boolean", *v);
    out->stream = v->get<bool>();
  }
  if (const json* v = Opt(b, "stream_options")) {
    if (!v->is_object()) return WrongType("stream_options", "an object", *v);
    if (const json* u = Opt(*v, "include_usage")) {
      if (!u->is_boolean()) return WrongType("stream_options.include_usage", "a boolean", *u);
      out->include_usage = u->get<bool>();
    }
  }
  if (const json* v = Opt(b, "response_format")) {
    if (!v->is_object()) return WrongType("response_format", "an object", *v);
    const json* t = Opt(*v, "type");
    if (!t)
      return Invalid("response_format.type", "Missing required parameter: 'response_format.type'.");
    if (!t->is_string()) return WrongType("response_format.type", "a string", *t);
    const std::string& type = t->get_ref<const std::string&>();
    if (type == "json_object") {
      gen.response_format = runtime::ResponseFormat::kJsonObject;
    } else if (type == "json_schema") {
      return RequestError{Status::NotSupported("'response_format' of type 'json_schema' is not "
                                               "supported; use {\"type\": \"json_object\"} "
                                               "(any JSON object) or 'text'"),
                          "response_format", ""};
    } else if (type != "text") {
      return Invalid(
          "response_format.type",
          "'response_format.type' must be 'text', 'json_object' or 'json_schema', not '" + type +
              "'");
    }
  }
  return std::nullopt;
}

// OpenAI's rule for JSON mode: the messages must ask for JSON, or a model that was not told
// to write it may fill the context with whitespace (here the constraint bounds whitespace
// runs, but an unprompted model still writes poor JSON).
bool MentionsJson(const std::vector<runtime::ChatMessage>& messages) {
  for (const auto& m : messages) {
    for (size_t i = 0; i + 4 <= m.content.size(); ++i) {
      if ((m.content[i] | 0x20) == 'j' && (m.content[i + 1] | 0x20) == 's' &&
          (m.content[i + 2] | 0x20) == 'o' && (m.content[i + 3] | 0x20) == 'n')
        return true;
    }
  }
  return false;
}

std::optional<RequestError> CheckToolCalls(const json& m, const std::string& where) {
  if (const json* calls = Opt(m, "tool_calls")) {
    if (!calls->is_array()) return WrongType(where + ".tool_calls", "an array", *calls);
    for (size_t j = 0; j < calls->size(); ++j) {
      const json& call = (*calls)[j];
      const std::string w = where + ".tool_calls[" + std::to_string(j) + "]";
      if (!call.is_object()) return WrongType(w, "an object", call);
      if (auto e = CheckFields(
              call, w,
              {{"id", Kind::kString}, {"type", Kind::kString}, {"function", Kind::kObject}}))
        return e;
      if (const json* f = Opt(call, "function"))
        if (auto e = CheckFields(*f, w + ".function",
                                 {{"name", Kind::kString}, {"arguments", Kind::kString}}))
          return e;
    }
  }
  if (const json* f = Opt(m, "function_call")) {
    if (!f->is_object()) return WrongType(where + ".function_call", "an object", *f);
    if (auto e = CheckFields(*f, where + ".function_call",
                             {{"name", Kind::kString}, {"arguments", Kind::kString}}))
      return e;
  }
  return std::nullopt;
}

std::optional<RequestError> ParseMessages(const json& b, const RequestLimits& limits,
                                          std::vector<runtime::ChatMessage>* out,
                                          size_t* text_bytes) {
  const json* list = Opt(b, "messages");
  if (!list) return Invalid("messages", "Missing required parameter: 'messages'.");
  if (!list->is_array()) return WrongType("messages", "an array", *list);
  if (list->empty()) return Invalid("messages", "'messages' must be a non-empty array");
  if (list->size() > limits.max_messages)
    return Invalid("messages", "'messages' has " + std::to_string(list->size()) +
                                   " entries; at most " + std::to_string(limits.max_messages) +
                                   " are accepted");
  out->reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    const json& m = (*list)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return WrongType(where, "an object", m);
    if (auto e = CheckFields(m, where,
                             {{"role", Kind::kString, true},
                              {"name", Kind::kString},
                              {"tool_call_id", Kind::kString},
                              {"refusal", Kind::kString}}))
      return e;
    if (auto e = CheckToolCalls(m, where)) return e;
    runtime::ChatMessage msg;
    msg.role = m["role"].get<std::string>();
    if (const json* content = Opt(m, "content")) {
      if (content->is_string()) {
        msg.content = content->get<std::string>();
      } else if (content->is_array()) {
        for (size_t j = 0; j < content->size(); ++j) {
          const json& part = (*content)[j];
          const std::string pw = where + ".content[" + std::to_string(j) + "]";
          if (!part.is_object()) return WrongType(pw, "an object", part);
          if (auto e = CheckFields(part, pw, {{"type", Kind::kString, true}})) return e;
          const std::string& type = part["type"].get_ref<const std::string&>();
          if (type != "text")
            return Invalid(pw + ".type",
                           "'" + pw + ".type' is '" + type + "'; only text parts are supported");
          if (auto e = CheckFields(part, pw, {{"text", Kind::kString, true}})) return e;
          msg.content += part["text"].get_ref<const std::string&>();
        }
      } else {
        return WrongType(where + ".content", "a string or an array of text parts", *content);
      }
    }
    *text_bytes += msg.content.size();
    if (*text_bytes > limits.max_prompt_bytes)
      return Invalid("messages", "the messages hold more than " +
                                     std::to_string(limits.max_prompt_bytes) +
                                     " bytes of text, the most a request may carry");
    out->push_back(std::move(msg));
  }
  return std::nullopt;
}

std::optional<RequestError> ParseModel(const json& b, std::string* model) {
  if (const json* v = Opt(b, "model")) {
    if (!v->is_string()) return WrongType("model", "a string", *v);
    *model = v->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::optional<RequestError> ParseRequestBody(std::string_view text, nlohmann::json* body) {
  auto parsed = ParseUntrustedJson(text, "request body");
  if (!parsed.ok()) return RequestError{parsed.status(), "", "invalid_json"};
  if (!parsed->is_object())
    return RequestError{Status::InvalidArgument("request body must be a JSON object"), "",
                        "invalid_json"};
  *body = std::move(*parsed);
  return std::nullopt;
}

std::optional<RequestError> ParseGenerationRequest(const json& b, bool chat,
                                                   const RequestLimits& limits,
                                                   GenerationFields* out,
                                                   const GenerationDefaults& defaults) {
  if (!b.is_object())
    return RequestError{Status::InvalidArgument("request body must be a JSON object"), "",
                        "invalid_json"};
  if (auto e = ParseModel(b, &out->model)) return e;
  if (auto e = ParseCommon(b, defaults, out)) return e;
  if (auto e = CheckForwardedFields(b, chat)) return e;
  if (chat) {
    size_t text_bytes = 0;
    if (auto e = ParseMessages(b, limits, &out->gen.messages, &text_bytes)) return e;
    if (out->gen.response_format == runtime::ResponseFormat::kJsonObject &&
        !MentionsJson(out->gen.messages))
      return Invalid("messages",
                     "'messages' must contain the word 'json' in some form, to use "
                     "'response_format' of type 'json_object'.");
    return std::nullopt;
  }
  const json* prompt = Opt(b, "prompt");
  if (prompt && prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    out->gen.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt && prompt->is_string()) {
    out->gen.prompt = prompt->get<std::string>();
  } else if (!prompt) {
    return Invalid("prompt", "Missing required parameter: 'prompt'.");
  } else {
    return Invalid("prompt", "'prompt' must be a string (or an array of one string)");
  }
  if (out->gen.prompt.size() > limits.max_prompt_bytes)
    return Invalid("prompt", "'prompt' holds more than " + std::to_string(limits.max_prompt_bytes) +
                                 " bytes, the most a request may carry");
  return std::nullopt;
}

std::optional<RequestError> ParseEmbeddingsRequest(const json& b, const RequestLimits& limits,
                                                   EmbeddingsFields* out) {
  if (!b.is_object())
    return RequestError{Status::InvalidArgument("request body must be a JSON object"), "",
                        "invalid_json"};
  if (auto e = ParseModel(b, &out->model)) return e;
  if (auto e = CheckFields(b, "", {{"user", Kind::kString}})) return e;
  if (auto e = CheckIntRange(b, "dimensions", 1, 1 << 16)) return e;
  const json* input = Opt(b, "input");
  size_t bytes = 0;
  if (input && input->is_string()) {
    out->inputs.push_back(input->get<std::string>());
    bytes = out->inputs.back().size();
  } else if (input && input->is_array() && !input->empty() && input->size() <= 2048) {
    for (size_t i = 0; i < input->size(); ++i) {
      const json& s = (*input)[i];
      if (!s.is_string())
        return Invalid("input",
                       "'input' must be a string or an array of strings (token arrays "
                       "are not supported); 'input[" +
                           std::to_string(i) + "]' is " + TypeName(s));
      out->inputs.push_back(s.get<std::string>());
      bytes += out->inputs.back().size();
    }
  } else {
    return Invalid("input",
                   "'input' must be a string or a non-empty array of at most 2048 strings");
  }
  if (bytes > limits.max_prompt_bytes)
    return Invalid("input", "'input' holds more than " + std::to_string(limits.max_prompt_bytes) +
                                " bytes, the most a request may carry");
  if (const json* f = Opt(b, "encoding_format")) {
    if (!f->is_string() || (*f != "float" && *f != "base64"))
      return Invalid("encoding_format", "'encoding_format' must be 'float' or 'base64'");
    out->base64 = *f == "base64";
  }
  return std::nullopt;
}

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The `pocket` object's keys; any other key is refused, so a misspelt "privcy": "private"
// cannot silently send a private request out.
constexpr const char* kPocketKeys[] = {"privacy", "private", "area", "quality", "truncate"};

// Every value of the header `lower_name`, over all its repetitions and comma lists,
// blanks trimmed, empty items dropped.
std::vector<std::string> HeaderItems(const HttpRequest& req, const std::string& lower_name) {
  std::vector<std::string> items;
  for (const auto& [k, v] : req.headers) {
    if (k != lower_name) continue;
    size_t start = 0;
    while (start <= v.size()) {
      size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      size_t b = start, e = end;
      while (b < e && (v[b] == ' ' || v[b] == '\t')) ++b;
      while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) --e;
      if (e > b) items.push_back(v.substr(b, e - b));
      start = end + 1;
    }
  }
  return items;
}

// Reads the Pocket extensions into `route` (marked_private, area, quality_high) and
// `truncate`. Every field is type-checked (a FieldError naming it: "pocket.private",
// "x-pocket-privacy"). Privacy can be stated by the x-pocket-privacy header (repeatable,
// comma lists allowed), the x-pocket-private header (true/false), pocket.privacy
// ("public" | "private") and pocket.private (a boolean): the most restrictive statement
// wins, so no combination of them can make a request marked private go out. For area,
// quality and truncate the body's value wins over the header's.
}  // namespace

std::optional<RequestError> ParsePocketExtensions(const json& b, const HttpRequest& req,
                                                  PocketExtensions* out) {
  auto bad = [](const std::string& param, const std::string& what) {
    return Invalid(param, "'" + param + "' " + what);
  };
  const json* pocket = nullptr;
  if (auto it = b.find("pocket"); it != b.end() && !it->is_null()) {
    if (!it->is_object()) return bad("pocket", "must be an object");
    pocket = &*it;
  }
  auto field = [&](const char* key) -> const json* {
    if (!pocket) return nullptr;
    auto it = pocket->find(key);
    return it == pocket->end() || it->is_null() ? nullptr : &*it;
  };
  if (pocket) {
    for (auto it = pocket->begin(); it != pocket->end(); ++it) {
      if (std::find_if(std::begin(kPocketKeys), std::end(kPocketKeys),
                       [&](const char* k) { return it.key() == k; }) != std::end(kPocketKeys))
        continue;
      std::string known;
      for (const char* k : kPocketKeys) known += (known.empty() ? "" : ", ") + std::string(k);
      return bad("pocket." + router::ValidUtf8(it.key().substr(0, 64)),
                 "is not a Pocket extension (known: " + known + ")");
    }
  }

  router::RequestPrivacy privacy = router::RequestPrivacy::kPublic;
  for (const std::string& item : HeaderItems(req, "x-pocket-privacy")) {
    auto p = router::ParseRequestPrivacy(item);
    if (!p.ok())
      return RequestError{p.status().WithContext("header x-pocket-privacy"), "x-pocket-privacy", ""};
    privacy = router::MostRestrictive(privacy, *p);
  }
  for (const std::string& item : HeaderItems(req, "x-pocket-private")) {
    const std::string v = Lower(item);
    if (v != "true" && v != "false") return bad("x-pocket-private", "must be true or false");
    if (v == "true") privacy = router::RequestPrivacy::kPrivate;
  }
  if (const json* v = field("privacy")) {
    if (!v->is_string()) return bad("pocket.privacy", "must be a string: public or private");
    auto p = router::ParseRequestPrivacy(v->get<std::string>());
    if (!p.ok()) return RequestError{p.status().WithContext("pocket.privacy"), "pocket.privacy", ""};
    privacy = router::MostRestrictive(privacy, *p);
  }
  if (const json* v = field("private")) {
    if (!v->is_boolean()) return bad("pocket.private", "must be a boolean");
    if (v->get<bool>()) privacy = router::RequestPrivacy::kPrivate;
  }
  out->marked_private = privacy == router::RequestPrivacy::kPrivate;

  std::vector<std::string> areas = HeaderItems(req, "x-pocket-area");
  std::string area_param = "x-pocket-area";
  if (const json* v = field("area")) {
    if (!v->is_string()) return bad("pocket.area", "must be a string");
    areas.push_back(v->get<std::string>());
    area_param = "pocket.area";
  }
  for (const std::string& a : areas) {
    if (a != areas.front())
      return bad(area_param, "names area '" + router::ValidUtf8(a.substr(0, 64)) +
                                 "' where another statement names '" +
                                 router::ValidUtf8(areas.front().substr(0, 64)) +
                                 "' (header x-pocket-area and pocket.area must agree)");
  }
  out->area = areas.empty() ? "" : areas.front();
  std::string quality = req.Header("x-pocket-quality");
  if (const json* v = field("quality")) {
    if (!v->is_string()) return bad("pocket.quality", "must be a string");
    quality = v->get<std::string>();
  }
  out->quality_high = Lower(quality) == "high";
  out->truncate = req.Header("x-pocket-truncate") == "true";
  if (const json* v = field("truncate")) {
    if (v->is_boolean()) {
      out->truncate = v->get<bool>();
    } else if (v->is_string() && (*v == "true" || *v == "false")) {
      out->truncate = *v == "true";
    } else {
      return bad("pocket.truncate", "must be a boolean");
    }
  }
  return std::nullopt;
}


}  // namespace pocket::server
