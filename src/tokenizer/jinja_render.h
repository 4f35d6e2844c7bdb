// Internal to the chat-template interpreter: the Renderer, which walks the AST of
// jinja_ast.h and writes the output, and the value helpers its two halves share. Statements,
// expressions and operators are in jinja_render.cc; filters, tests and the Python
// str/dict methods in jinja_filters.cc. Thread safety: a Renderer is one render on one
// thread; it is made per ChatTemplate::Apply call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace pocket::tokenizer::jinja {

int64_t AsInt(const Value& v);
double AsDouble(const Value& v);
// Python's type name of a value, for error messages.
std::string TypeName(const Value& v);
// UTF-8 characters of a string (iteration and length count code points, as Python does).
std::vector<std::string> Utf8Chars(const std::string& s);
// The items a for loop or a filter iterates: list items, dict keys, string characters;
// nothing for undefined. InvalidArgument for other types.
Result<std::vector<Value>> Iterate(const Value& v, int line);

class Renderer {
 public:
  explicit Renderer(std::string* out) : out_(out) { scopes_.emplace_back(); }

  void SetGlobal(std::string name, Value v) { scopes_.front()[std::move(name)] = std::move(v); }

  enum class Flow : uint8_t { kNormal, kBreak, kContinue };

  Result<Flow> Exec(const std::vector<Node>& nodes) {
    for (const Node& n : nodes) {
      PK_ASSIGN_OR_RETURN(Flow flow, ExecOne(n));
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

 private:
  Result<Flow> ExecOne(const Node& n);

  // A macro is a function rendering its body in a fresh scope with its parameters bound.
  // The Renderer outlives every value made during its render, so capturing it is safe.
  Value MakeMacro(const Node& n);

  Result<Flow> ExecFor(const Node& n);

  Value Lookup(const std::string& name) const;

  Result<Value> Eval(const Expr& e);

  Result<Value> GetAttr(const Value& obj, const std::string& name, int line);

  Result<Value> GetItem(const Value& obj, const Value& key, int line);

  Result<Value> EvalSlice(const Expr& e);

  Result<Value> EvalCall(const Expr& e);

  // Python str/dict methods, bound to `self`.
  Value Method(const Value& self, const std::string& name);

  static const Value* Kwarg(const KwArgs& kwargs, std::string_view name);

  Result<Value> EvalFilter(const Expr& e);

  Result<Value> GetAttrOrUndefined(const Value& item, const std::string& path, int line);

  Result<bool> EvalTest(const Expr& e);

  Result<bool> RunTest(const std::string& t, const Value& v, const std::vector<Value>& args,
                       int line);

  Result<bool> Contains(const Value& container, const Value& item, int line);

  Result<Value> EvalCompare(const Expr& e);

  Result<Value> EvalBinary(const Expr& e);

  static constexpr uint64_t kMaxSteps = 500'000;
  static constexpr int kMaxMacroDepth = 50;
  int macro_depth_ = 0;
  static constexpr size_t kMaxStringBytes = 16u << 20;
  uint64_t steps_ = 0;
  std::string* out_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
};

}  // namespace pocket::tokenizer::jinja
