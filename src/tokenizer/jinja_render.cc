// The chat-template renderer's core: statements (if, for with loop.*, set, macros),
// expression evaluation, attribute/item/slice access, calls, comparisons and arithmetic with
// Python's semantics. Filters, tests and str/dict methods are in jinja_filters.cc.
#include "tokenizer/jinja_render.h"

#include <algorithm>
#include <cmath>

namespace pocket::tokenizer::jinja {

int64_t AsInt(const Value& v) {
  return v.kind == Value::Kind::kInt    ? v.i
         : v.kind == Value::Kind::kBool ? (v.b ? 1 : 0)
                                        : static_cast<int64_t>(v.f);
}
double AsDouble(const Value& v) {
  return v.kind == Value::Kind::kFloat ? v.f : static_cast<double>(AsInt(v));
}

std::string TypeName(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kArray:
      return "list";
    case Value::Kind::kObject:
      return "dict";
    case Value::Kind::kFunction:
      return "function";
  }
  return "?";
}

std::vector<std::string> Utf8Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t k = 0; k < s.size();) {
    const auto c = static_cast<unsigned char>(s[k]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    n = std::min(n, s.size() - k);
    out.push_back(s.substr(k, n));
    k += n;
  }
  return out;
}

Result<std::vector<Value>> Iterate(const Value& v, int line) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return std::vector<Value>{};
    case Value::Kind::kArray:
      return *v.arr;
    case Value::Kind::kObject: {
      std::vector<Value> keys;
      for (const auto& [k, item] : v.obj->items) keys.push_back(Value::Str(k));
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (auto& c : Utf8Chars(v.s)) chars.push_back(Value::Str(std::move(c)));
      return chars;
    }
    default:
      return RenderError(line, "'" + TypeName(v) + "' object is not iterable");
  }
}

Result<Renderer::Flow> Renderer::ExecOne(const Node& n) {
  // A budget instead of a timeout: real chat templates take a few thousand steps.
  if (++steps_ > kMaxSteps || out_->size() > kMaxStringBytes) {
    return Status::ResourceExhausted("chat template: line " + std::to_string(n.line) +
                                     ": rendering exceeds the step or output budget");
  }
  switch (n.kind) {
    case Node::Kind::kText:
      out_->append(n.text);
      return Flow::kNormal;
    case Node::Kind::kOutput: {
      PK_ASSIGN_OR_RETURN(Value v, Eval(*n.expr));
      out_->append(jinja::ToString(v));
      return Flow::kNormal;
    }
    case Node::Kind::kIf: {
      for (size_t k = 0; k < n.conds.size(); ++k) {
        PK_ASSIGN_OR_RETURN(Value c, Eval(*n.conds[k]));
        if (jinja::Truthy(c)) return Exec(n.bodies[k]);
      }
      if (n.bodies.size() > n.conds.size()) return Exec(n.bodies.back());
      return Flow::kNormal;
    }
    case Node::Kind::kFor:
      return ExecFor(n);
    case Node::Kind::kSet: {
      PK_ASSIGN_OR_RETURN(Value v, Eval(*n.expr));
      if (!n.attr.empty()) {
        Value target = Lookup(n.targets[0]);
        if (!target.is_object() || !target.obj->is_namespace) {
          return RenderError(n.line, "cannot assign attribute on non-namespace object");
        }
        target.obj->Set(n.attr, std::move(v));
        return Flow::kNormal;
      }
      if (n.targets.size() == 1) {
        scopes_.back()[n.targets[0]] = std::move(v);
        return Flow::kNormal;
      }
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, n.line));
      if (items.size() != n.targets.size()) {
        return RenderError(n.line, "cannot unpack " + std::to_string(items.size()) +
                                       " values into " + std::to_string(n.targets.size()));
      }
      for (size_t k = 0; k < items.size(); ++k) scopes_.back()[n.targets[k]] = items[k];
      return Flow::kNormal;
    }
    case Node::Kind::kSetBlock: {
      std::string captured;
      std::string* saved = out_;
      out_ = &captured;
      auto flow = Exec(n.bodies[0]);
      out_ = saved;
      if (!flow.ok()) return flow.status();
      scopes_.back()[n.targets[0]] = Value::Str(std::move(captured));
      return Flow::kNormal;
    }
    case Node::Kind::kMacro:
      scopes_.back()[n.targets[0]] = MakeMacro(n);
      return Flow::kNormal;
    case Node::Kind::kBreak:
      return Flow::kBreak;
    case Node::Kind::kContinue:
      return Flow::kContinue;
  }
  return Flow::kNormal;
}

// A macro is a function rendering its body in a fresh scope with its parameters bound.
// The Renderer outlives every value made during its render, so capturing it is safe.
Value Renderer::MakeMacro(const Node& n) {
  return Value::Fn([this, &n](std::vector<Value>& args, KwArgs& kwargs) -> Result<Value> {
    if (macro_depth_ >= kMaxMacroDepth) {
      return Status::ResourceExhausted("macro '" + n.targets[0] + "' recursion too deep");
    }
    const size_t num_params = n.targets.size() - 1;
    if (args.size() > num_params) {
      return Status::InvalidArgument("macro '" + n.targets[0] + "' takes " +
                                     std::to_string(num_params) + " arguments");
    }
    std::unordered_map<std::string, Value> frame;
    for (size_t k = 0; k < num_params; ++k) {
      const std::string& param = n.targets[k + 1];
      if (k < args.size()) {
        frame[param] = args[k];
      } else if (const Value* kw = Kwarg(kwargs, param)) {
        frame[param] = *kw;
      } else if (n.conds[k]) {
        PK_ASSIGN_OR_RETURN(frame[param], Eval(*n.conds[k]));
      } else {
        frame[param] = Value::Undefined(param);
      }
    }
    std::string captured;
    std::string* saved = out_;
    out_ = &captured;
    scopes_.push_back(std::move(frame));
    ++macro_depth_;
    auto flow = Exec(n.bodies[0]);
    --macro_depth_;
    scopes_.pop_back();
    out_ = saved;
    if (!flow.ok()) return flow.status();
    return Value::Str(std::move(captured));
  });
}

Result<Renderer::Flow> Renderer::ExecFor(const Node& n) {
  PK_ASSIGN_OR_RETURN(Value iterable, Eval(*n.expr));
  PK_ASSIGN_OR_RETURN(std::vector<Value> all, Iterate(iterable, n.line));
  auto bind = [&](const Value& item) -> Status {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = item;
      return Status::Ok();
    }
    PK_ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(item, n.line));
    if (parts.size() != n.targets.size()) {
      return RenderError(n.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                                     std::to_string(n.targets.size()));
    }
    for (size_t k = 0; k < parts.size(); ++k) scopes_.back()[n.targets[k]] = parts[k];
    return Status::Ok();
  };
  std::vector<Value> items;
  if (n.filter) {
    for (const Value& item : all) {
      if (++steps_ > kMaxSteps) {
        return Status::ResourceExhausted("chat template: line " + std::to_string(n.line) +
                                         ": rendering exceeds the step budget");
      }
      scopes_.emplace_back();
      Status s = bind(item);
      Result<Value> keep = s.ok() ? Eval(*n.filter) : Result<Value>(s);
      scopes_.pop_back();
      if (!keep.ok()) return keep.status();
      if (jinja::Truthy(*keep)) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) {
    if (n.bodies.size() > 1) return Exec(n.bodies[1]);
    return Flow::kNormal;
  }
  const auto count = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < count; ++k) {
    if (++steps_ > kMaxSteps) {
      return Status::ResourceExhausted("chat template: line " + std::to_string(n.line) +
                                       ": rendering exceeds the step budget");
    }
    scopes_.emplace_back();
    Value loop = Value::Dict();
    loop.obj->Set("index", Value::Int(k + 1));
    loop.obj->Set("index0", Value::Int(k));
    loop.obj->Set("revindex", Value::Int(count - k));
    loop.obj->Set("revindex0", Value::Int(count - k - 1));
    loop.obj->Set("first", Value::Bool(k == 0));
    loop.obj->Set("last", Value::Bool(k == count - 1));
    loop.obj->Set("length", Value::Int(count));
    loop.obj->Set("previtem", k > 0 ? items[k - 1] : Value::Undefined("loop.previtem"));
    loop.obj->Set("nextitem", k + 1 < count ? items[k + 1] : Value::Undefined("loop.nextitem"));
    scopes_.back()["loop"] = std::move(loop);
    Status s = bind(items[k]);
    Result<Flow> flow = s.ok() ? Exec(n.bodies[0]) : Result<Flow>(s);
    scopes_.pop_back();
    if (!flow.ok()) return flow.status();
    if (*flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Renderer::Lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto found = it->find(name);
    if (found != it->end()) return found->second;
  }
  return Value::Undefined(name);
}

Result<Value> Renderer::Eval(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kName:
      return Lookup(e.name);
    case Expr::Kind::kAttr: {
      PK_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
      return GetAttr(obj, e.name, e.line);
    }
    case Expr::Kind::kItem: {
      PK_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
      PK_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1]));
      return GetItem(obj, key, e.line);
    }
    case Expr::Kind::kSlice:
      return EvalSlice(e);
    case Expr::Kind::kCall:
      return EvalCall(e);
    case Expr::Kind::kFilter:
      return EvalFilter(e);
    case Expr::Kind::kTest: {
      PK_ASSIGN_OR_RETURN(bool r, EvalTest(e));
      return Value::Bool(e.negated ? !r : r);
    }
    case Expr::Kind::kNeg: {
      PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
      if (v.kind == Value::Kind::kFloat) return Value::Float(-v.f);
      if (v.is_number()) return Value::Int(-AsInt(v));
      return RenderError(e.line, "bad operand type for unary -: '" + TypeName(v) + "'");
    }
    case Expr::Kind::kNot: {
      PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
      return Value::Bool(!jinja::Truthy(v));
    }
    case Expr::Kind::kAnd: {
      PK_ASSIGN_OR_RETURN(Value l, Eval(*e.args[0]));
      if (!jinja::Truthy(l)) return l;
      return Eval(*e.args[1]);
    }
    case Expr::Kind::kOr: {
      PK_ASSIGN_OR_RETURN(Value l, Eval(*e.args[0]));
      if (jinja::Truthy(l)) return l;
      return Eval(*e.args[1]);
    }
    case Expr::Kind::kBinary:
      return EvalBinary(e);
    case Expr::Kind::kCompare:
      return EvalCompare(e);
    case Expr::Kind::kCond: {
      PK_ASSIGN_OR_RETURN(Value c, Eval(*e.args[1]));
      if (jinja::Truthy(c)) return Eval(*e.args[0]);
      if (e.args[2]) return Eval(*e.args[2]);
      return Value::Undefined();
    }
    case Expr::Kind::kList: {
      Array items;
      for (const auto& a : e.args) {
        PK_ASSIGN_OR_RETURN(Value v, Eval(*a));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items));
    }
    case Expr::Kind::kDict: {
      Value d = Value::Dict();
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        PK_ASSIGN_OR_RETURN(Value key, Eval(*e.args[k]));
        PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[k + 1]));
        d.obj->Set(jinja::ToString(key), std::move(v));
      }
      return d;
    }
  }
  return Value::Undefined();
}

Result<Value> Renderer::GetAttr(const Value& obj, const std::string& name, int line) {
  if (obj.is_undefined()) {
    return RenderError(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) +
                                 "' is undefined (reading ." + name + ")");
  }
  if (obj.is_object()) {
    if (const Value* v = obj.obj->Find(name)) return *v;
    if (!obj.obj->is_namespace) {
      if (Value m = Method(obj, name); m.kind == Value::Kind::kFunction) return m;
    }
    return Value::Undefined(name);
  }
  if (Value m = Method(obj, name); m.kind == Value::Kind::kFunction) return m;
  return Value::Undefined(name);
}

Result<Value> Renderer::GetItem(const Value& obj, const Value& key, int line) {
  if (obj.is_undefined()) {
    return RenderError(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) +
                                 "' is undefined (reading [" + jinja::Repr(key) + "])");
  }
  if (obj.is_object()) {
    if (const Value* v = obj.obj->Find(jinja::ToString(key))) return *v;
    return Value::Undefined(jinja::ToString(key));
  }
  if ((obj.is_array() || obj.is_string()) && key.is_number()) {
    if (obj.is_array()) {
      const auto n = static_cast<int64_t>(obj.arr->size());
      int64_t k = AsInt(key);
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::Undefined("[" + std::to_string(AsInt(key)) + "]");
      return (*obj.arr)[static_cast<size_t>(k)];
    }
    const auto chars = Utf8Chars(obj.s);
    const auto n = static_cast<int64_t>(chars.size());
    int64_t k = AsInt(key);
    if (k < 0) k += n;
    if (k < 0 || k >= n) return Value::Undefined("[" + std::to_string(AsInt(key)) + "]");
    return Value::Str(chars[static_cast<size_t>(k)]);
  }
  if (key.is_string()) return GetAttr(obj, key.s, line);
  return Value::Undefined();
}

Result<Value> Renderer::EvalSlice(const Expr& e) {
  PK_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
  std::optional<int64_t> bounds[3];
  for (int k = 0; k < 3; ++k) {
    if (!e.args[k + 1]) continue;
    PK_ASSIGN_OR_RETURN(Value b, Eval(*e.args[k + 1]));
    if (b.is_none()) continue;
    if (!b.is_number()) return RenderError(e.line, "slice indices must be integers");
    bounds[k] = AsInt(b);
  }
  std::vector<Value> items;
  std::vector<std::string> chars;
  if (obj.is_array()) {
    items = *obj.arr;
  } else if (obj.is_string()) {
    chars = Utf8Chars(obj.s);
  } else {
    return RenderError(e.line, "'" + TypeName(obj) + "' object is not subscriptable");
  }
  const int64_t n = static_cast<int64_t>(obj.is_array() ? items.size() : chars.size());
  const int64_t step = bounds[2].value_or(1);
  if (step == 0) return RenderError(e.line, "slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> b, int64_t def) {
    if (!b) return def;
    int64_t v = *b;
    if (v < 0) v += n;
    return step > 0 ? std::clamp<int64_t>(v, 0, n) : std::clamp<int64_t>(v, -1, n - 1);
  };
  const int64_t start = clamp(bounds[0], step > 0 ? 0 : n - 1);
  const int64_t stop = clamp(bounds[1], step > 0 ? n : -1);
  Array out_items;
  std::string out_str;
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
    if (obj.is_array()) {
      out_items.push_back(items[static_cast<size_t>(k)]);
    } else {
      out_str += chars[static_cast<size_t>(k)];
    }
  }
  if (obj.is_array()) return Value::List(std::move(out_items));
  return Value::Str(std::move(out_str));
}

Result<Value> Renderer::EvalCall(const Expr& e) {
  PK_ASSIGN_OR_RETURN(Value callee, Eval(*e.args[0]));
  std::vector<Value> args;
  for (size_t k = 1; k < e.args.size(); ++k) {
    PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[k]));
    args.push_back(std::move(v));
  }
  KwArgs kwargs;
  for (const auto& [k, v] : e.kwargs) {
    PK_ASSIGN_OR_RETURN(Value value, Eval(*v));
    kwargs.emplace_back(k, std::move(value));
  }
  if (callee.kind != Value::Kind::kFunction) {
    return RenderError(e.line, "'" + (callee.is_undefined() ? callee.s : TypeName(callee)) +
                                   "' is " +
                                   (callee.is_undefined() ? "undefined" : "not callable"));
  }
  auto r = (*callee.fn)(args, kwargs);
  if (!r.ok()) return RenderError(e.line, r.status().message());
  return r;
}

Result<bool> Renderer::Contains(const Value& container, const Value& item, int line) {
  if (container.is_string()) {
    if (!item.is_string())
      return RenderError(line, "'in <string>' requires string as left operand");
    return container.s.find(item.s) != std::string::npos;
  }
  if (container.is_array()) {
    return std::any_of(container.arr->begin(), container.arr->end(),
                       [&](const Value& x) { return jinja::Equals(x, item); });
  }
  if (container.is_object()) return container.obj->Find(jinja::ToString(item)) != nullptr;
  if (container.is_undefined()) return false;
  return RenderError(line, "argument of type '" + TypeName(container) + "' is not iterable");
}

Result<Value> Renderer::EvalCompare(const Expr& e) {
  PK_ASSIGN_OR_RETURN(Value l, Eval(*e.args[0]));
  PK_ASSIGN_OR_RETURN(Value r, Eval(*e.args[1]));
  const std::string& op = e.name;
  if (op == "==") return Value::Bool(jinja::Equals(l, r));
  if (op == "!=") return Value::Bool(!jinja::Equals(l, r));
  if (op == "in" || op == "notin") {
    PK_ASSIGN_OR_RETURN(bool in, Contains(r, l, e.line));
    return Value::Bool(op == "in" ? in : !in);
  }
  int cmp;
  if (l.is_number() && r.is_number()) {
    const double a = AsDouble(l), b = AsDouble(r);
    cmp = a < b ? -1 : a > b ? 1 : 0;
  } else if (l.is_string() && r.is_string()) {
    cmp = l.s.compare(r.s);
  } else {
    return RenderError(e.line, "'" + op + "' not supported between '" + TypeName(l) + "' and '" +
                                   TypeName(r) + "'");
  }
  if (op == "<") return Value::Bool(cmp < 0);
  if (op == ">") return Value::Bool(cmp > 0);
  if (op == "<=") return Value::Bool(cmp <= 0);
  return Value::Bool(cmp >= 0);
}

Result<Value> Renderer::EvalBinary(const Expr& e) {
  PK_ASSIGN_OR_RETURN(Value l, Eval(*e.args[0]));
  PK_ASSIGN_OR_RETURN(Value r, Eval(*e.args[1]));
  const std::string& op = e.name;
  if (op == "~" || (op == "+" && l.is_string() && r.is_string())) {
    std::string a = jinja::ToString(l), b = jinja::ToString(r);
    if (a.size() + b.size() > kMaxStringBytes) return RenderError(e.line, "string too long");
    return Value::Str(a + b);
  }
  if (l.is_undefined() || r.is_undefined()) {
    const Value& u = l.is_undefined() ? l : r;
    return RenderError(e.line, "'" + (u.s.empty() ? std::string("value") : u.s) + "' is undefined");
  }
  if (op == "+") {
    if (l.is_array() && r.is_array()) {
      Array items = *l.arr;
      items.insert(items.end(), r.arr->begin(), r.arr->end());
      return Value::List(std::move(items));
    }
  }
  if (op == "*" && ((l.is_string() && r.kind == Value::Kind::kInt) ||
                    (r.is_string() && l.kind == Value::Kind::kInt))) {
    const std::string& s = l.is_string() ? l.s : r.s;
    const int64_t n = l.is_string() ? r.i : l.i;
    std::string out;
    for (int64_t k = 0; k < n && out.size() < kMaxStringBytes; ++k) out += s;
    return Value::Str(out);
  }
  if (!l.is_number() || !r.is_number()) {
    return RenderError(e.line, "unsupported operand types for " + op + ": '" + TypeName(l) +
                                   "' and '" + TypeName(r) + "'");
  }
  const bool floating = l.kind == Value::Kind::kFloat || r.kind == Value::Kind::kFloat;
  if (op == "/") {
    if (AsDouble(r) == 0) return RenderError(e.line, "division by zero");
    return Value::Float(AsDouble(l) / AsDouble(r));
  }
  if (op == "**") {
    const double p = std::pow(AsDouble(l), AsDouble(r));
    if (!floating && AsInt(r) >= 0) return Value::Int(static_cast<int64_t>(p));
    return Value::Float(p);
  }
  if (floating) {
    const double a = AsDouble(l), b = AsDouble(r);
    if (op == "+") return Value::Float(a + b);
    if (op == "-") return Value::Float(a - b);
    if (op == "*") return Value::Float(a * b);
    if (b == 0) return RenderError(e.line, "division by zero");
    if (op == "//") return Value::Float(std::floor(a / b));
    return Value::Float(a - std::floor(a / b) * b);  // Python's %: sign of the divisor
  }
  const int64_t a = AsInt(l), b = AsInt(r);
  if (op == "+") return Value::Int(a + b);
  if (op == "-") return Value::Int(a - b);
  if (op == "*") return Value::Int(a * b);
  if (b == 0) return RenderError(e.line, "division by zero");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;  // floor division
  if (op == "//") return Value::Int(q);
  return Value::Int(a - q * b);
}

}  // namespace pocket::tokenizer::jinja
