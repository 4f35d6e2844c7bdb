// The chat-template parser: statements and expressions (precedence as in jinja2/parser.py)
// into the AST of jinja_ast.h. Tokens come from jinja_lexer.cc; what the nodes mean is
// jinja_render.cc's business.
#include <algorithm>

#include "tokenizer/jinja_ast.h"

namespace pocket::tokenizer::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  Result<std::vector<Node>> ParseAll() {
    std::vector<Node> nodes;
    std::string stop;
    PK_RETURN_IF_ERROR(ParseBody(nodes, {}, &stop));
    return nodes;
  }

 private:
  // Parses nodes until a statement whose first word is in `stops` (left in *stop, with its
  // tokens in stmt_toks_) or the end of the template.
  Status ParseBody(std::vector<Node>& out, const std::vector<std::string_view>& stops,
                   std::string* stop) {
    if (++depth_ > kMaxDepth) return ParseError(line_, "blocks nested too deeply");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    while (seg_ < segs_.size()) {
      const Segment& seg = segs_[seg_++];
      line_ = seg.line;
      if (seg.kind == SegKind::kText) {
        out.push_back(Node(Node::Kind::kText, seg.line, seg.text));
        continue;
      }
      PK_ASSIGN_OR_RETURN(toks_, LexExpr(seg.text, seg.line));
      pos_ = 0;
      if (seg.kind == SegKind::kExpr) {
        Node n{Node::Kind::kOutput, seg.line};
        PK_ASSIGN_OR_RETURN(n.expr, ParseExpression());
        PK_RETURN_IF_ERROR(ExpectEnd());
        out.push_back(std::move(n));
        continue;
      }
      if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a tag name");
      const std::string word = Next().text;
      if (std::find(stops.begin(), stops.end(), word) != stops.end()) {
        *stop = word;
        return Status::Ok();
      }
      if (word == "if") {
        PK_RETURN_IF_ERROR(ParseIf(out));
      } else if (word == "for") {
        PK_RETURN_IF_ERROR(ParseFor(out));
      } else if (word == "set") {
        PK_RETURN_IF_ERROR(ParseSet(out));
      } else if (word == "break" || word == "continue") {
        PK_RETURN_IF_ERROR(ExpectEnd());
        out.push_back(Node(word == "break" ? Node::Kind::kBreak : Node::Kind::kContinue, line_));
      } else if (word == "macro") {
        PK_RETURN_IF_ERROR(ParseMacro(out));
      } else if (word == "generation" || word == "endgeneration") {
        // transformers' assistant-mask markers: no output of their own.
        PK_RETURN_IF_ERROR(ExpectEnd());
      } else {
        return ParseError(line_, "unsupported tag '" + word + "'");
      }
    }
    if (!stops.empty()) {
      return ParseError(line_, "missing '{% " + std::string(stops.back()) + " %}'");
    }
    return Status::Ok();
  }

  Status ParseIf(std::vector<Node>& out) {
    Node n{Node::Kind::kIf, line_};
    PK_ASSIGN_OR_RETURN(ExprPtr cond, ParseExpression());
    PK_RETURN_IF_ERROR(ExpectEnd());
    n.conds.push_back(std::move(cond));
    while (true) {
      std::vector<Node> body;
      std::string stop;
      PK_RETURN_IF_ERROR(ParseBody(body, {"elif", "else", "endif"}, &stop));
      n.bodies.push_back(std::move(body));
      if (stop == "elif") {
        PK_ASSIGN_OR_RETURN(ExprPtr c, ParseExpression());
        PK_RETURN_IF_ERROR(ExpectEnd());
        n.conds.push_back(std::move(c));
        continue;
      }
      PK_RETURN_IF_ERROR(ExpectEnd());
      if (stop == "else") {
        std::vector<Node> else_body;
        PK_RETURN_IF_ERROR(ParseBody(else_body, {"endif"}, &stop));
        PK_RETURN_IF_ERROR(ExpectEnd());
        n.bodies.push_back(std::move(else_body));
      }
      break;
    }
    out.push_back(std::move(n));
    return Status::Ok();
  }

  Status ParseFor(std::vector<Node>& out) {
    Node n{Node::Kind::kFor, line_};
    do {
      if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a loop variable");
      n.targets.push_back(Next().text);
    } while (Accept(","));
    if (!AcceptName("in")) return ParseError(line_, "expected 'in' in for loop");
    PK_ASSIGN_OR_RETURN(n.expr, ParseOr());  // no conditional expression: `if` filters
    if (AcceptName("if")) {
      PK_ASSIGN_OR_RETURN(n.filter, ParseOr());
    }
    if (AcceptName("recursive")) return ParseError(line_, "recursive loops are not supported");
    PK_RETURN_IF_ERROR(ExpectEnd());
    std::vector<Node> body;
    std::string stop;
    PK_RETURN_IF_ERROR(ParseBody(body, {"else", "endfor"}, &stop));
    PK_RETURN_IF_ERROR(ExpectEnd());
    n.bodies.push_back(std::move(body));
    if (stop == "else") {
      std::vector<Node> else_body;
      PK_RETURN_IF_ERROR(ParseBody(else_body, {"endfor"}, &stop));
      PK_RETURN_IF_ERROR(ExpectEnd());
      n.bodies.push_back(std::move(else_body));
    }
    out.push_back(std::move(n));
    return Status::Ok();
  }

  // {% macro name(a, b='x') %}...{% endmacro %}: no caller, varargs or kwargs.
  Status ParseMacro(std::vector<Node>& out) {
    Node n(Node::Kind::kMacro, line_);
    if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a macro name");
    n.targets.push_back(Next().text);
    PK_RETURN_IF_ERROR(Expect("("));
    bool first = true;
    while (!Accept(")")) {
      if (!first) PK_RETURN_IF_ERROR(Expect(","));
      first = false;
      if (Accept(")")) break;
      if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a parameter name");
      n.targets.push_back(Next().text);
      ExprPtr def;
      if (Accept("=")) {
        PK_ASSIGN_OR_RETURN(def, ParseExpression());
      }
      n.conds.push_back(std::move(def));
    }
    PK_RETURN_IF_ERROR(ExpectEnd());
    std::vector<Node> body;
    std::string stop;
    PK_RETURN_IF_ERROR(ParseBody(body, {"endmacro"}, &stop));
    PK_RETURN_IF_ERROR(ExpectEnd());
    n.bodies.push_back(std::move(body));
    out.push_back(std::move(n));
    return Status::Ok();
  }

  Status ParseSet(std::vector<Node>& out) {
    if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a name after 'set'");
    Node n{Node::Kind::kSet, line_};
    n.targets.push_back(Next().text);
    if (Accept(".")) {
      if (Peek().kind != TokKind::kName) return ParseError(line_, "expected an attribute name");
      n.attr = Next().text;
    } else {
      while (Accept(",")) {
        if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a name");
        n.targets.push_back(Next().text);
      }
    }
    if (Accept("=")) {
      PK_ASSIGN_OR_RETURN(n.expr, ParseExpression());
      PK_RETURN_IF_ERROR(ExpectEnd());
      out.push_back(std::move(n));
      return Status::Ok();
    }
    if (!n.attr.empty() || n.targets.size() != 1) return ParseError(line_, "expected '=' in set");
    PK_RETURN_IF_ERROR(ExpectEnd());
    n.kind = Node::Kind::kSetBlock;
    std::vector<Node> body;
    std::string stop;
    PK_RETURN_IF_ERROR(ParseBody(body, {"endset"}, &stop));
    PK_RETURN_IF_ERROR(ExpectEnd());
    n.bodies.push_back(std::move(body));
    out.push_back(std::move(n));
    return Status::Ok();
  }

  // --- expressions (precedence as in jinja2/parser.py)
  Result<ExprPtr> ParseExpression() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    while (AcceptName("if")) {
      auto cond = MakeExpr(Expr::Kind::kCond);
      PK_ASSIGN_OR_RETURN(ExprPtr c, ParseOr());
      ExprPtr otherwise;
      if (AcceptName("else")) {
        PK_ASSIGN_OR_RETURN(otherwise, ParseExpression());
      }
      cond->args.push_back(std::move(e));
      cond->args.push_back(std::move(c));
      cond->args.push_back(std::move(otherwise));
      e = std::move(cond);
    }
    return e;
  }

  Result<ExprPtr> ParseOr() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseAnd());
    while (AcceptName("or")) {
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParseAnd());
      e = Binary(Expr::Kind::kOr, "or", std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParseAnd() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseNot());
    while (AcceptName("and")) {
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParseNot());
      e = Binary(Expr::Kind::kAnd, "and", std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParseNot() {
    if (AcceptName("not")) {
      auto n = MakeExpr(Expr::Kind::kNot);
      PK_ASSIGN_OR_RETURN(ExprPtr inner, ParseNot());
      n->args.push_back(std::move(inner));
      return n;
    }
    return ParseCompare();
  }

  Result<ExprPtr> ParseCompare() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseMath1());
    while (true) {
      std::string op;
      const Tok& t = Peek();
      if (t.kind == TokKind::kOp && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                     t.text == ">" || t.text == "<=" || t.text == ">=")) {
        op = Next().text;
      } else if (AcceptName("in")) {
        op = "in";
      } else if (t.kind == TokKind::kName && t.text == "not" && PeekAt(1).kind == TokKind::kName &&
                 PeekAt(1).text == "in") {
        pos_ += 2;
        op = "notin";
      } else {
        break;
      }
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParseMath1());
      e = Binary(Expr::Kind::kCompare, op, std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParseMath1() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseConcat());
    while (Peek().kind == TokKind::kOp && (Peek().text == "+" || Peek().text == "-")) {
      const std::string op = Next().text;
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParseConcat());
      e = Binary(Expr::Kind::kBinary, op, std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParseConcat() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseMath2());
    while (Accept("~")) {
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParseMath2());
      e = Binary(Expr::Kind::kBinary, "~", std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParseMath2() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParsePow());
    while (Peek().kind == TokKind::kOp && (Peek().text == "*" || Peek().text == "/" ||
                                           Peek().text == "//" || Peek().text == "%")) {
      const std::string op = Next().text;
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParsePow());
      e = Binary(Expr::Kind::kBinary, op, std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParsePow() {
    PK_ASSIGN_OR_RETURN(ExprPtr e, ParseUnary(true));
    while (Accept("**")) {
      PK_ASSIGN_OR_RETURN(ExprPtr r, ParseUnary(true));
      e = Binary(Expr::Kind::kBinary, "**", std::move(e), std::move(r));
    }
    return e;
  }

  Result<ExprPtr> ParseUnary(bool with_filter) {
    // Bounded recursion: untrusted templates must not overflow the stack.
    if (++depth_ > kMaxDepth) return ParseError(line_, "expression nested too deeply");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    ExprPtr e;
    if (Accept("-")) {
      e = MakeExpr(Expr::Kind::kNeg);
      PK_ASSIGN_OR_RETURN(ExprPtr inner, ParseUnary(false));
      e->args.push_back(std::move(inner));
    } else if (Accept("+")) {
      PK_ASSIGN_OR_RETURN(e, ParseUnary(false));
    } else {
      PK_ASSIGN_OR_RETURN(e, ParsePrimary());
    }
    PK_ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
    if (with_filter) {
      PK_ASSIGN_OR_RETURN(e, ParseFilterExpr(std::move(e)));
    }
    return e;
  }

  Result<ExprPtr> ParsePrimary() {
    const Tok t = Next();
    switch (t.kind) {
      case TokKind::kName: {
        if (t.text == "true" || t.text == "True") return Literal(Value::Bool(true));
        if (t.text == "false" || t.text == "False") return Literal(Value::Bool(false));
        if (t.text == "none" || t.text == "None") return Literal(Value::None());
        auto e = MakeExpr(Expr::Kind::kName);
        e->name = t.text;
        return e;
      }
      case TokKind::kString:
        return Literal(Value::Str(t.text));
      case TokKind::kInt:
        return Literal(Value::Int(t.i));
      case TokKind::kFloat:
        return Literal(Value::Float(t.f));
      case TokKind::kOp:
        if (t.text == "(") {
          PK_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression());
          if (Accept(")")) return first;
          // A tuple: evaluated as a list.
          auto list = MakeExpr(Expr::Kind::kList);
          list->args.push_back(std::move(first));
          while (Accept(",")) {
            if (Peek().kind == TokKind::kOp && Peek().text == ")") break;
            PK_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
            list->args.push_back(std::move(item));
          }
          PK_RETURN_IF_ERROR(Expect(")"));
          return list;
        }
        if (t.text == "[") {
          auto list = MakeExpr(Expr::Kind::kList);
          while (!Accept("]")) {
            if (!list->args.empty()) PK_RETURN_IF_ERROR(Expect(","));
            if (Accept("]")) break;
            PK_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
            list->args.push_back(std::move(item));
          }
          return list;
        }
        if (t.text == "{") {
          auto dict = MakeExpr(Expr::Kind::kDict);
          while (!Accept("}")) {
            if (!dict->args.empty()) PK_RETURN_IF_ERROR(Expect(","));
            if (Accept("}")) break;
            PK_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression());
            PK_RETURN_IF_ERROR(Expect(":"));
            PK_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
            dict->args.push_back(std::move(key));
            dict->args.push_back(std::move(value));
          }
          return dict;
        }
        break;
      default:
        break;
    }
    return ParseError(line_, "unexpected '" + t.text + "' in expression");
  }

  Result<ExprPtr> ParsePostfix(ExprPtr e) {
    while (true) {
      if (Accept(".")) {
        const Tok t = Next();
        if (t.kind != TokKind::kName && t.kind != TokKind::kInt) {
          return ParseError(line_, "expected an attribute name after '.'");
        }
        auto a = MakeExpr(Expr::Kind::kAttr);
        a->name = t.kind == TokKind::kName ? t.text : std::to_string(t.i);
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (Accept("[")) {
        ExprPtr parts[3];
        bool slice = false;
        for (int part = 0; part < 3; ++part) {
          if (!(Peek().kind == TokKind::kOp && (Peek().text == ":" || Peek().text == "]"))) {
            PK_ASSIGN_OR_RETURN(parts[part], ParseExpression());
          }
          if (!Accept(":")) break;
          slice = true;
        }
        PK_RETURN_IF_ERROR(Expect("]"));
        if (slice) {
          auto s = MakeExpr(Expr::Kind::kSlice);
          s->args.push_back(std::move(e));
          for (auto& p : parts) s->args.push_back(std::move(p));
          e = std::move(s);
        } else {
          if (!parts[0]) return ParseError(line_, "empty subscript");
          auto item = MakeExpr(Expr::Kind::kItem);
          item->args.push_back(std::move(e));
          item->args.push_back(std::move(parts[0]));
          e = std::move(item);
        }
      } else if (Accept("(")) {
        auto call = MakeExpr(Expr::Kind::kCall);
        call->args.push_back(std::move(e));
        PK_RETURN_IF_ERROR(ParseArgs(*call));
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  // After '(': positional and keyword arguments up to ')'.
  Status ParseArgs(Expr& call) {
    bool first = true;
    while (!Accept(")")) {
      if (!first) PK_RETURN_IF_ERROR(Expect(","));
      first = false;
      if (Accept(")")) break;
      if (Peek().kind == TokKind::kName && PeekAt(1).kind == TokKind::kOp &&
          PeekAt(1).text == "=") {
        std::string key = Next().text;
        Next();
        PK_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression());
        call.kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        PK_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression());
        call.args.push_back(std::move(v));
      }
    }
    return Status::Ok();
  }

  Result<ExprPtr> ParseFilterExpr(ExprPtr e) {
    while (true) {
      if (Accept("|")) {
        if (Peek().kind != TokKind::kName) return ParseError(line_, "expected a filter name");
        auto f = MakeExpr(Expr::Kind::kFilter);
        f->name = Next().text;
        const auto& known = KnownFilters();
        if (std::find(known.begin(), known.end(), f->name) == known.end()) {
          return ParseError(line_, "unknown filter '" + f->name + "'");
        }
        f->args.push_back(std::move(e));
        if (Accept("(")) PK_RETURN_IF_ERROR(ParseArgs(*f));
        e = std::move(f);
      } else if (AcceptName("is")) {
        auto t = MakeExpr(Expr::Kind::kTest);
        t->negated = AcceptName("not");
        const Tok name = Next();
        if (name.kind == TokKind::kName) {
          t->name = name.text;
        } else if (name.kind == TokKind::kOp && (name.text == "==" || name.text == "!=")) {
          t->name = name.text;
        } else {
          return ParseError(line_, "expected a test name after 'is'");
        }
        if (t->name == "none" || t->name == "true" || t->name == "false") {
          // Lower-case literals double as test names.
        }
        const auto& known = KnownTests();
        if (std::find(known.begin(), known.end(), t->name) == known.end()) {
          return ParseError(line_, "unknown test '" + t->name + "'");
        }
        t->args.push_back(std::move(e));
        if (Accept("(")) {
          PK_RETURN_IF_ERROR(ParseArgs(*t));
        } else if (StartsPrimary()) {
          // `is divisibleby 3`, `is sameas false`: one argument without parentheses.
          PK_ASSIGN_OR_RETURN(ExprPtr arg, ParseUnary(false));
          t->args.push_back(std::move(arg));
        }
        e = std::move(t);
      } else if (Accept("(")) {
        auto call = MakeExpr(Expr::Kind::kCall);
        call->args.push_back(std::move(e));
        PK_RETURN_IF_ERROR(ParseArgs(*call));
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  bool StartsPrimary() const {
    const Tok& t = Peek();
    if (t.kind == TokKind::kString || t.kind == TokKind::kInt || t.kind == TokKind::kFloat)
      return true;
    if (t.kind == TokKind::kName) {
      static constexpr std::string_view kStop[] = {"and", "or", "if", "else", "in", "not", "is"};
      return std::find(std::begin(kStop), std::end(kStop), t.text) == std::end(kStop);
    }
    return false;
  }

  // --- token helpers
  const Tok& Peek() const { return toks_[std::min(pos_, toks_.size() - 1)]; }
  const Tok& PeekAt(size_t k) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  Tok Next() {
    const Tok t = Peek();
    if (pos_ < toks_.size() - 1) ++pos_;
    return t;
  }
  bool Accept(std::string_view op) {
    if (Peek().kind == TokKind::kOp && Peek().text == op) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool AcceptName(std::string_view name) {
    if (Peek().kind == TokKind::kName && Peek().text == name) {
      ++pos_;
      return true;
    }
    return false;
  }
  Status Expect(std::string_view op) {
    if (Accept(op)) return Status::Ok();
    return ParseError(line_, "expected '" + std::string(op) + "', got '" + Peek().text + "'");
  }
  Status ExpectEnd() {
    if (Peek().kind == TokKind::kEnd) return Status::Ok();
    return ParseError(line_, "unexpected '" + Peek().text + "'");
  }
  ExprPtr MakeExpr(Expr::Kind kind) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line_;
    return e;
  }
  ExprPtr Literal(Value v) {
    auto e = MakeExpr(Expr::Kind::kLiteral);
    e->literal = std::move(v);
    return e;
  }
  ExprPtr Binary(Expr::Kind kind, std::string op, ExprPtr l, ExprPtr r) {
    auto e = MakeExpr(kind);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  static constexpr int kMaxDepth = 200;
  int depth_ = 0;
  std::vector<Segment> segs_;
  size_t seg_ = 0;
  std::vector<Tok> toks_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

Result<std::vector<Node>> ParseSegments(std::vector<Segment> segs) {
  Parser parser(std::move(segs));
  return parser.ParseAll();
}

}  // namespace pocket::tokenizer::jinja
