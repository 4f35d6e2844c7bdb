// The Jinja-subset interpreter behind ChatTemplate. Semantics follow jinja2 3.x as
// transformers configures it for apply_chat_template (ImmutableSandboxedEnvironment with
// trim_blocks=True, lstrip_blocks=True, the loopcontrols extension, tojson with
// ensure_ascii=False, raise_exception and strftime_now globals); the goldens in
// testdata/tokenizer/chat_golden.json were rendered by that configuration.
#include "tokenizer/chat_template.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <unordered_map>

#include "base/utf8.h"
#include "tokenizer/jinja_value.h"

namespace pocket::tokenizer {

using jinja::Array;
using jinja::KwArgs;
using jinja::Value;

namespace {

constexpr std::string_view kFallbackHint =
    " (pick a built-in template with --chat-template chatml|llama3|llama2|mistral|zephyr)";

Status ParseError(int line, const std::string& what) {
  return Status::InvalidArgument("chat template: line " + std::to_string(line) + ": " + what +
                                 std::string(kFallbackHint));
}

Status RenderError(int line, const std::string& what) {
  return Status::InvalidArgument("chat template: line " + std::to_string(line) + ": " + what);
}

// ---------------------------------------------------------------------------------------
// Template-level lexing: text and tags, with Jinja's whitespace control applied.

enum class SegKind : uint8_t { kText, kExpr, kStmt };

struct Segment {
  SegKind kind;
  std::string text;  // text, or the tag's inside without delimiters and +/- markers
  int line;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

Result<std::vector<Segment>> LexTemplate(std::string_view raw) {
  // Jinja normalizes newlines to \n and drops one trailing newline (keep_trailing_newline
  // is off in transformers).
  std::string src;
  src.reserve(raw.size());
  for (size_t k = 0; k < raw.size(); ++k) {
    if (raw[k] == '\r') {
      src.push_back('\n');
      if (k + 1 < raw.size() && raw[k + 1] == '\n') ++k;
    } else {
      src.push_back(raw[k]);
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();

  std::vector<Segment> segs;
  size_t pos = 0;
  int line = 1;
  auto count_lines = [&](size_t from, size_t to) {
    line += static_cast<int>(std::count(src.begin() + static_cast<ptrdiff_t>(from),
                                        src.begin() + static_cast<ptrdiff_t>(to), '\n'));
  };
  while (pos <= src.size()) {
    size_t open = std::string::npos;
    for (size_t k = src.find('{', pos); k != std::string::npos && k + 1 < src.size();
         k = src.find('{', k + 1)) {
      const char c = src[k + 1];
      if (c == '{' || c == '%' || c == '#') {
        open = k;
        break;
      }
    }
    std::string text = src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    const bool line_starting = pos == 0 || src[pos - 1] == '\n';
    if (open != std::string::npos) {
      const char kind = src[open + 1];
      const char sign = open + 2 < src.size() ? src[open + 2] : '\0';
      if (sign == '-') {
        size_t end = text.size();
        while (end > 0 && IsSpace(text[end - 1])) --end;
        text.resize(end);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: whitespace between the line start and a block/comment tag goes.
        const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_start > 0 || line_starting) {
          bool blank = true;
          for (size_t k = line_start; k < text.size(); ++k) {
            if (text[k] != ' ' && text[k] != '\t') blank = false;
          }
          if (blank) text.resize(line_start);
        }
      }
    }
    const int text_line = line;
    if (!text.empty()) segs.push_back({SegKind::kText, text, text_line});
    if (open == std::string::npos) break;
    count_lines(pos, open);
    const char kind = src[open + 1];
    const int tag_line = line;
    size_t body = open + 2;
    if (body < src.size() && (src[body] == '-' || src[body] == '+')) ++body;
    size_t close = std::string::npos;
    const char close_char = kind == '{' ? '}' : kind;
    if (kind == '#') {
      close = src.find("#}", body);
    } else {
      // Find the closing delimiter outside string literals.
      char quote = 0;
      for (size_t k = body; k + 1 < src.size(); ++k) {
        const char c = src[k];
        if (quote != 0) {
          if (c == '\\') {
            ++k;
          } else if (c == quote) {
            quote = 0;
          }
        } else if (c == '\'' || c == '"') {
          quote = c;
        } else if (c == close_char && src[k + 1] == '}') {
          close = k;
          break;
        }
      }
    }
    if (close == std::string::npos) {
      return ParseError(tag_line, std::string("unclosed '{") + kind + "'");
    }
    size_t inner_end = close;
    bool strip_after = false;
    if (inner_end > body && src[inner_end - 1] == '-') {
      strip_after = true;
      --inner_end;
    }
    if (kind != '#') {
      segs.push_back({kind == '{' ? SegKind::kExpr : SegKind::kStmt,
                      src.substr(body, inner_end - body), tag_line});
    }
    count_lines(open, close + 2);
    pos = close + 2;
    if (strip_after) {
      const size_t start = pos;
      while (pos < src.size() && IsSpace(src[pos])) ++pos;
      count_lines(start, pos);
    } else if (kind != '{' && pos < src.size() && src[pos] == '\n') {
      ++pos;  // trim_blocks
      ++line;
    }
    if (pos == src.size()) break;
  }
  return segs;
}

// ---------------------------------------------------------------------------------------
// Expression tokens.

enum class TokKind : uint8_t { kName, kString, kInt, kFloat, kOp, kEnd };

struct Tok {
  TokKind kind;
  std::string text;  // name, op, or the unescaped string
  int64_t i = 0;
  double f = 0;

  Tok(TokKind k, std::string t) : kind(k), text(std::move(t)) {}
};

// Python/Jinja string escapes: \n \t \r \\ \' \" \xNN \uNNNN \UNNNNNNNN; others stay.
Result<std::vector<Tok>> LexExpr(std::string_view s, int line) {
  std::vector<Tok> toks;
  size_t k = 0;
  while (k < s.size()) {
    const char c = s[k];
    if (IsSpace(c)) {
      ++k;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = k;
      while (e < s.size() && (std::isalnum(static_cast<unsigned char>(s[e])) || s[e] == '_')) ++e;
      toks.push_back({TokKind::kName, std::string(s.substr(k, e - k))});
      k = e;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t e = k;
      while (e < s.size() && (std::isdigit(static_cast<unsigned char>(s[e])) || s[e] == '_')) ++e;
      bool is_float = false;
      if (e + 1 < s.size() && s[e] == '.' && std::isdigit(static_cast<unsigned char>(s[e + 1]))) {
        is_float = true;
        ++e;
        while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
      }
      std::string digits;
      for (size_t d = k; d < e; ++d) {
        if (s[d] != '_') digits.push_back(s[d]);
      }
      Tok t(is_float ? TokKind::kFloat : TokKind::kInt, digits);
      if (is_float) {
        t.f = std::strtod(digits.c_str(), nullptr);
      } else {
        errno = 0;
        t.i = std::strtoll(digits.c_str(), nullptr, 10);
        if (errno == ERANGE) return ParseError(line, "integer literal out of range: " + digits);
      }
      toks.push_back(std::move(t));
      k = e;
      continue;
    }
    if (c == '\'' || c == '"') {
      std::string out;
      size_t e = k + 1;
      bool closed = false;
      while (e < s.size()) {
        const char d = s[e];
        if (d == c) {
          closed = true;
          ++e;
          break;
        }
        if (d == '\\' && e + 1 < s.size()) {
          const char x = s[e + 1];
          auto hex = [&](size_t n) -> Result<uint32_t> {
            if (e + 2 + n > s.size()) return ParseError(line, "bad escape in string literal");
            uint32_t v = 0;
            for (size_t h = 0; h < n; ++h) {
              const char hc = s[e + 2 + h];
              if (!std::isxdigit(static_cast<unsigned char>(hc))) {
                return ParseError(line, "bad escape in string literal");
              }
              v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(hc))
                                                     ? hc - '0'
                                                     : (std::tolower(hc) - 'a' + 10));
            }
            return v;
          };
          switch (x) {
            case 'n':
              out.push_back('\n');
              e += 2;
              break;
            case 't':
              out.push_back('\t');
              e += 2;
              break;
            case 'r':
              out.push_back('\r');
              e += 2;
              break;
            case '\\':
              out.push_back('\\');
              e += 2;
              break;
            case '\'':
              out.push_back('\'');
              e += 2;
              break;
            case '"':
              out.push_back('"');
              e += 2;
              break;
            case 'a':
              out.push_back('\a');
              e += 2;
              break;
            case 'b':
              out.push_back('\b');
              e += 2;
              break;
            case 'f':
              out.push_back('\f');
              e += 2;
              break;
            case 'v':
              out.push_back('\v');
              e += 2;
              break;
            case '\n':
              e += 2;
              break;  // line continuation
            case 'x': {
              PK_ASSIGN_OR_RETURN(uint32_t v, hex(2));
              AppendUtf8(v, out);
              e += 4;
              break;
            }
            case 'u': {
              PK_ASSIGN_OR_RETURN(uint32_t v, hex(4));
              AppendUtf8(v, out);
              e += 6;
              break;
            }
            case 'U': {
              PK_ASSIGN_OR_RETURN(uint32_t v, hex(8));
              if (v > 0x10FFFF) return ParseError(line, "bad \\U escape in string literal");
              AppendUtf8(v, out);
              e += 10;
              break;
            }
            default:
              out.push_back('\\');
              out.push_back(x);
              e += 2;
          }
          continue;
        }
        out.push_back(d);
        ++e;
      }
      if (!closed) return ParseError(line, "unterminated string literal");
      // Adjacent literals concatenate, as in Python.
      if (!toks.empty() && toks.back().kind == TokKind::kString) {
        toks.back().text += out;
      } else {
        toks.push_back({TokKind::kString, std::move(out)});
      }
      k = e;
      continue;
    }
    static constexpr std::string_view kOps2[] = {"**", "//", "==", "!=", "<=", ">="};
    bool matched = false;
    for (std::string_view op : kOps2) {
      if (s.substr(k, 2) == op) {
        toks.push_back({TokKind::kOp, std::string(op)});
        k += 2;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (std::string_view("+-*/%~|.,:()[]{}<>=").find(c) != std::string_view::npos) {
      toks.push_back({TokKind::kOp, std::string(1, c)});
      ++k;
      continue;
    }
    return ParseError(line, std::string("unexpected character '") + c + "'");
  }
  toks.push_back({TokKind::kEnd, ""});
  return toks;
}

// ---------------------------------------------------------------------------------------
// AST.

struct Expr {
  enum class Kind : uint8_t {
    kLiteral,
    kName,
    kAttr,
    kItem,
    kSlice,
    kCall,
    kFilter,
    kTest,
    kNeg,
    kNot,
    kAnd,
    kOr,
    kBinary,
    kCompare,
    kCond,
    kList,
    kDict
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;  // name, attribute, filter, test, operator
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> args;  // children; nullptr for absent slice parts
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Node {
  enum class Kind : uint8_t {
    kText,
    kOutput,
    kIf,
    kFor,
    kSet,
    kSetBlock,
    kBreak,
    kContinue,
    kMacro
  };
  Kind kind;
  int line = 0;
  std::string text;                       // kText
  ExprPtr expr;                           // output, for-iterable, set value
  std::vector<ExprPtr> conds;             // if/elif conditions; macro defaults (or null)
  std::vector<std::vector<Node>> bodies;  // one per cond, then the else body (maybe empty)
  std::vector<std::string> targets;       // for loop variables, set name, macro name + params
  std::string attr;                       // set ns.attr
  ExprPtr filter;                         // for ... if filter

  Node(Kind k, int l, std::string t = {}) : kind(k), line(l), text(std::move(t)) {}
};

const std::vector<std::string_view>& KnownFilters() {
  static const std::vector<std::string_view> names = {
      "trim",     "length",      "count",          "upper",
      "lower",    "capitalize",  "title",          "tojson",
      "string",   "int",         "float",          "default",
      "d",        "first",       "last",           "join",
      "list",     "replace",     "items",          "reverse",
      "safe",     "abs",         "selectattr",     "rejectattr",
      "map",      "unique",      "round",          "wordcount",
      "e",        "escape",      "indent",         "sum",
      "min",      "max",         "sort",           "batch",
      "dictsort", "center",      "truncate",       "striptags",
      "xmlattr",  "urlencode",   "filesizeformat", "format",
      "pprint",   "random",      "slice",          "attr",
      "groupby",  "forceescape", "wordwrap",       "urlize",
      "select",   "reject",      "tojson"};
  return names;
}

const std::vector<std::string_view>& KnownTests() {
  static const std::vector<std::string_view> names = {
      "defined", "undefined",   "none",     "string",   "number", "integer", "float",
      "mapping", "iterable",    "sequence", "boolean",  "true",   "false",   "even",
      "odd",     "divisibleby", "eq",       "equalto",  "==",     "ne",      "!=",
      "in",      "lower",       "upper",    "callable", "sameas"};
  return names;
}

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

// ---------------------------------------------------------------------------------------
// Evaluation.

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

// Python's str.isspace() code points: what str.strip(), str.split() and Jinja's trim remove.
bool IsPyWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Decodes the code point starting at s[k] (an invalid byte decodes as itself, length 1).
uint32_t CodePointAt(std::string_view s, size_t k, size_t* len) {
  const auto c = static_cast<unsigned char>(s[k]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (k + n > s.size()) n = 1;
  for (size_t j = 1; j < n; ++j) {
    if ((static_cast<unsigned char>(s[k + j]) & 0xC0) != 0x80) n = 1;
  }
  *len = n;
  if (n == 1) return c;
  uint32_t cp = c & (0xFF >> (n + 1));
  for (size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3F);
  return cp;
}

// Length of the whitespace character ending at s[e-1], or 0.
size_t TrailingWhitespace(std::string_view s, size_t b, size_t e) {
  for (size_t n = 1; n <= 4 && n <= e - b; ++n) {
    if (n < 4 && (static_cast<unsigned char>(s[e - n]) & 0xC0) == 0x80) continue;
    size_t len = 0;
    const uint32_t cp = CodePointAt(s, e - n, &len);
    if (len == n) return IsPyWhitespace(cp) ? n : 0;
  }
  return 0;
}

std::string Strip(std::string_view s, std::string_view chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (!chars.empty()) {
    auto strip_char = [&](char c) { return chars.find(c) != std::string_view::npos; };
    while (left && b < e && strip_char(s[b])) ++b;
    while (right && e > b && strip_char(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
  }
  while (left && b < e) {
    size_t len = 0;
    if (!IsPyWhitespace(CodePointAt(s, b, &len))) break;
    b += len;
  }
  while (right && e > b) {
    const size_t n = TrailingWhitespace(s, b, e);
    if (n == 0) break;
    e -= n;
  }
  return std::string(s.substr(b, e - b));
}

// Splits on runs of whitespace (Python's str.split() without arguments).
std::vector<std::string> SplitWhitespace(std::string_view s) {
  std::vector<std::string> parts;
  size_t k = 0, start = std::string::npos;
  while (k < s.size()) {
    size_t len = 0;
    const bool ws = IsPyWhitespace(CodePointAt(s, k, &len));
    if (ws && start != std::string::npos) {
      parts.emplace_back(s.substr(start, k - start));
      start = std::string::npos;
    } else if (!ws && start == std::string::npos) {
      start = k;
    }
    k += len;
  }
  if (start != std::string::npos) parts.emplace_back(s.substr(start));
  return parts;
}

// UTF-8 characters of a string (iteration and length count code points, as Python does).
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
  Result<Flow> ExecOne(const Node& n) {
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
  Value MakeMacro(const Node& n) {
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

  Result<Flow> ExecFor(const Node& n) {
    PK_ASSIGN_OR_RETURN(Value iterable, Eval(*n.expr));
    PK_ASSIGN_OR_RETURN(std::vector<Value> all, Iterate(iterable, n.line));
    auto bind = [&](const Value& item) -> Status {
      if (n.targets.size() == 1) {
        scopes_.back()[n.targets[0]] = item;
        return Status::Ok();
      }
      PK_ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(item, n.line));
      if (parts.size() != n.targets.size()) {
        return RenderError(n.line, "cannot unpack " + std::to_string(parts.size()) +
                                       " values into " + std::to_string(n.targets.size()));
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

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value::Undefined(name);
  }

  Result<Value> Eval(const Expr& e) {
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

  Result<Value> GetAttr(const Value& obj, const std::string& name, int line) {
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

  Result<Value> GetItem(const Value& obj, const Value& key, int line) {
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

  Result<Value> EvalSlice(const Expr& e) {
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

  Result<Value> EvalCall(const Expr& e) {
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

  // Python str/dict methods, bound to `self`.
  Value Method(const Value& self, const std::string& name) {
    if (self.is_string()) {
      const std::string s = self.s;
      auto strip = [s](bool l, bool r) {
        return Value::Fn([s, l, r](std::vector<Value>& a, KwArgs&) -> Result<Value> {
          return Value::Str(
              Strip(s, a.empty() || a[0].is_none() ? "" : jinja::ToString(a[0]), l, r));
        });
      };
      if (name == "strip") return strip(true, true);
      if (name == "lstrip") return strip(true, false);
      if (name == "rstrip") return strip(false, true);
      if (name == "upper" || name == "lower") {
        const bool up = name == "upper";
        return Value::Fn([s, up](std::vector<Value>&, KwArgs&) -> Result<Value> {
          std::string r = s;
          for (char& c : r)
            c = static_cast<char>(up ? std::toupper(static_cast<unsigned char>(c))
                                     : std::tolower(static_cast<unsigned char>(c)));
          return Value::Str(r);
        });
      }
      if (name == "startswith" || name == "endswith") {
        const bool start = name == "startswith";
        return Value::Fn([s, start](std::vector<Value>& a, KwArgs&) -> Result<Value> {
          if (a.empty()) return Status::InvalidArgument("startswith/endswith needs an argument");
          std::vector<Value> options = a[0].is_array() ? *a[0].arr : std::vector<Value>{a[0]};
          for (const Value& o : options) {
            const std::string p = jinja::ToString(o);
            if (start ? s.starts_with(p) : s.ends_with(p)) return Value::Bool(true);
          }
          return Value::Bool(false);
        });
      }
      if (name == "split") {
        return Value::Fn([s](std::vector<Value>& a, KwArgs&) -> Result<Value> {
          Array parts;
          if (a.empty() || a[0].is_none()) {
            for (auto& p : SplitWhitespace(s)) parts.push_back(Value::Str(std::move(p)));
            return Value::List(std::move(parts));
          }
          const std::string sep = jinja::ToString(a[0]);
          if (sep.empty()) return Status::InvalidArgument("split: empty separator");
          int64_t max_split = a.size() > 1 ? AsInt(a[1]) : -1;
          size_t k = 0;
          while (true) {
            const size_t f = max_split == 0 ? std::string::npos : s.find(sep, k);
            if (f == std::string::npos) {
              parts.push_back(Value::Str(s.substr(k)));
              break;
            }
            parts.push_back(Value::Str(s.substr(k, f - k)));
            k = f + sep.size();
            if (max_split > 0) --max_split;
          }
          return Value::List(std::move(parts));
        });
      }
      if (name == "replace") {
        return Value::Fn([s](std::vector<Value>& a, KwArgs&) -> Result<Value> {
          if (a.size() < 2) return Status::InvalidArgument("replace needs two arguments");
          return Value::Str(ReplaceAll(s, jinja::ToString(a[0]), jinja::ToString(a[1])));
        });
      }
      if (name == "title" || name == "capitalize") {
        const bool title = name == "title";
        return Value::Fn([s, title](std::vector<Value>&, KwArgs&) -> Result<Value> {
          return Value::Str(title ? Title(s) : Capitalize(s));
        });
      }
      if (name == "join") {
        return Value::Fn([s](std::vector<Value>& a, KwArgs&) -> Result<Value> {
          if (a.empty() || !a[0].is_array()) return Status::InvalidArgument("join needs a list");
          std::string r;
          for (size_t k = 0; k < a[0].arr->size(); ++k) {
            if (k > 0) r += s;
            r += jinja::ToString((*a[0].arr)[k]);
          }
          return Value::Str(r);
        });
      }
    }
    if (self.is_object()) {
      const auto obj = self.obj;
      if (name == "items" || name == "keys" || name == "values") {
        const int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
        return Value::Fn([obj, which](std::vector<Value>&, KwArgs&) -> Result<Value> {
          Array out;
          for (const auto& [k, v] : obj->items) {
            if (which == 0) {
              out.push_back(Value::List({Value::Str(k), v}));
            } else {
              out.push_back(which == 1 ? Value::Str(k) : v);
            }
          }
          return Value::List(std::move(out));
        });
      }
      if (name == "get") {
        return Value::Fn([obj](std::vector<Value>& a, KwArgs&) -> Result<Value> {
          if (a.empty()) return Status::InvalidArgument("get needs a key");
          if (const Value* v = obj->Find(jinja::ToString(a[0]))) return *v;
          return a.size() > 1 ? a[1] : Value::None();
        });
      }
    }
    return Value::Undefined(name);
  }

  static std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    std::string out;
    size_t k = 0;
    while (true) {
      const size_t f = s.find(from, k);
      if (f == std::string::npos) break;
      out.append(s, k, f - k);
      out += to;
      k = f + from.size();
    }
    out.append(s, k);
    return out;
  }
  static std::string Capitalize(const std::string& s) {
    std::string r = s;
    for (size_t k = 0; k < r.size(); ++k) {
      r[k] = static_cast<char>(k == 0 ? std::toupper(static_cast<unsigned char>(r[k]))
                                      : std::tolower(static_cast<unsigned char>(r[k])));
    }
    return r;
  }
  static std::string Title(const std::string& s) {
    std::string r = s;
    bool prev_alpha = false;
    for (char& c : r) {
      const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
      if (alpha) {
        c = static_cast<char>(prev_alpha ? std::tolower(static_cast<unsigned char>(c))
                                         : std::toupper(static_cast<unsigned char>(c)));
      }
      prev_alpha = alpha;
    }
    return r;
  }

  static const Value* Kwarg(const KwArgs& kwargs, std::string_view name) {
    for (const auto& [k, v] : kwargs) {
      if (k == name) return &v;
    }
    return nullptr;
  }

  Result<Value> EvalFilter(const Expr& e) {
    PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
    std::vector<Value> args;
    for (size_t k = 1; k < e.args.size(); ++k) {
      PK_ASSIGN_OR_RETURN(Value a, Eval(*e.args[k]));
      args.push_back(std::move(a));
    }
    KwArgs kwargs;
    for (const auto& [k, x] : e.kwargs) {
      PK_ASSIGN_OR_RETURN(Value a, Eval(*x));
      kwargs.emplace_back(k, std::move(a));
    }
    const std::string& f = e.name;
    auto arg = [&](size_t k, std::string_view kw) -> const Value* {
      if (k < args.size()) return &args[k];
      return Kwarg(kwargs, kw);
    };
    if (f == "default" || f == "d") {
      const Value* def = arg(0, "default_value");
      const Value* boolean = arg(1, "boolean");
      const bool use_default =
          v.is_undefined() || (boolean && jinja::Truthy(*boolean) && !jinja::Truthy(v));
      if (use_default) return def ? *def : Value::Str("");
      return v;
    }
    if (f == "safe" || f == "e" || f == "escape" || f == "forceescape") {
      // transformers' environment does not autoescape; |e on plain strings is HTML escape.
      if (f == "safe") return v;
      std::string s = jinja::ToString(v), out;
      for (char c : s) {
        switch (c) {
          case '&':
            out += "&amp;";
            break;
          case '<':
            out += "&lt;";
            break;
          case '>':
            out += "&gt;";
            break;
          case '"':
            out += "&#34;";
            break;
          case '\'':
            out += "&#39;";
            break;
          default:
            out += c;
        }
      }
      return Value::Str(out);
    }
    if (f == "tojson") {
      const Value* indent = arg(0, "indent");
      PK_ASSIGN_OR_RETURN(
          std::string json,
          jinja::ToJson(v, indent && indent->is_number() ? static_cast<int>(AsInt(*indent)) : -1));
      return Value::Str(std::move(json));
    }
    if (v.is_undefined() && f != "length" && f != "count" && f != "list" && f != "string") {
      return RenderError(e.line, "'" + v.s + "' is undefined (filter " + f + ")");
    }
    if (f == "trim") {
      const Value* chars = arg(0, "chars");
      return Value::Str(
          Strip(jinja::ToString(v), chars ? jinja::ToString(*chars) : "", true, true));
    }
    if (f == "length" || f == "count") {
      if (v.is_string()) return Value::Int(static_cast<int64_t>(Utf8Chars(v.s).size()));
      if (v.is_array()) return Value::Int(static_cast<int64_t>(v.arr->size()));
      if (v.is_object()) return Value::Int(static_cast<int64_t>(v.obj->items.size()));
      if (v.is_undefined()) return Value::Int(0);
      return RenderError(e.line, "object of type '" + TypeName(v) + "' has no len()");
    }
    if (f == "upper" || f == "lower") {
      std::string s = jinja::ToString(v);
      for (char& c : s)
        c = static_cast<char>(f == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                           : std::tolower(static_cast<unsigned char>(c)));
      return Value::Str(s);
    }
    if (f == "capitalize") return Value::Str(Capitalize(jinja::ToString(v)));
    if (f == "title") return Value::Str(Title(jinja::ToString(v)));
    if (f == "string") return Value::Str(jinja::ToString(v));
    if (f == "int") {
      if (v.is_string()) {
        char* end = nullptr;
        const long long x = std::strtoll(Strip(v.s, "", true, true).c_str(), &end, 10);
        return Value::Int(end && *end == '\0' ? x : (args.empty() ? 0 : AsInt(args[0])));
      }
      if (v.is_number()) return Value::Int(AsInt(v));
      return Value::Int(args.empty() ? 0 : AsInt(args[0]));
    }
    if (f == "float") {
      if (v.is_string()) return Value::Float(std::strtod(v.s.c_str(), nullptr));
      if (v.is_number()) return Value::Float(AsDouble(v));
      return Value::Float(0);
    }
    if (f == "abs") {
      if (v.kind == Value::Kind::kFloat) return Value::Float(std::fabs(v.f));
      return Value::Int(std::llabs(AsInt(v)));
    }
    if (f == "first" || f == "last") {
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      if (items.empty()) return Value::Undefined(f);
      return f == "first" ? items.front() : items.back();
    }
    if (f == "list") {
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      return Value::List(std::move(items));
    }
    if (f == "reverse") {
      if (v.is_string()) {
        auto chars = Utf8Chars(v.s);
        std::string r;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) r += *it;
        return Value::Str(r);
      }
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      std::reverse(items.begin(), items.end());
      return Value::List(std::move(items));
    }
    if (f == "join") {
      const Value* sep = arg(0, "d");
      const Value* attribute = arg(1, "attribute");
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      std::string r;
      for (size_t k = 0; k < items.size(); ++k) {
        if (k > 0 && sep) r += jinja::ToString(*sep);
        Value item = items[k];
        if (attribute) {
          PK_ASSIGN_OR_RETURN(item, GetAttr(item, jinja::ToString(*attribute), e.line));
        }
        r += jinja::ToString(item);
      }
      return Value::Str(r);
    }
    if (f == "replace") {
      if (args.size() < 2) return RenderError(e.line, "replace needs two arguments");
      return Value::Str(
          ReplaceAll(jinja::ToString(v), jinja::ToString(args[0]), jinja::ToString(args[1])));
    }
    if (f == "items") {
      if (!v.is_object()) return RenderError(e.line, "items needs a mapping");
      Array out;
      for (const auto& [k, x] : v.obj->items) out.push_back(Value::List({Value::Str(k), x}));
      return Value::List(std::move(out));
    }
    if (f == "unique") {
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      Array out;
      for (const Value& x : items) {
        if (std::none_of(out.begin(), out.end(),
                         [&](const Value& y) { return jinja::Equals(x, y); })) {
          out.push_back(x);
        }
      }
      return Value::List(std::move(out));
    }
    if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") {
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      const bool by_attr = f == "selectattr" || f == "rejectattr";
      const bool select = f == "selectattr" || f == "select";
      const size_t first_test_arg = by_attr ? 1 : 0;
      if (by_attr && args.empty()) return RenderError(e.line, f + " needs an attribute name");
      Array out;
      for (const Value& item : items) {
        Value subject = item;
        if (by_attr) {
          PK_ASSIGN_OR_RETURN(subject, GetAttrOrUndefined(item, jinja::ToString(args[0]), e.line));
        }
        bool pass;
        if (args.size() > first_test_arg) {
          std::vector<Value> test_args(args.begin() + static_cast<ptrdiff_t>(first_test_arg) + 1,
                                       args.end());
          PK_ASSIGN_OR_RETURN(
              pass, RunTest(jinja::ToString(args[first_test_arg]), subject, test_args, e.line));
        } else {
          pass = jinja::Truthy(subject);
        }
        if (pass == select) out.push_back(item);
      }
      return Value::List(std::move(out));
    }
    if (f == "map") {
      PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
      const Value* attribute = Kwarg(kwargs, "attribute");
      Array out;
      for (const Value& item : items) {
        if (attribute) {
          PK_ASSIGN_OR_RETURN(Value x,
                              GetAttrOrUndefined(item, jinja::ToString(*attribute), e.line));
          if (x.is_undefined()) {
            if (const Value* def = Kwarg(kwargs, "default")) x = *def;
          }
          out.push_back(std::move(x));
        } else if (!args.empty()) {
          Expr fake;
          fake.kind = Expr::Kind::kFilter;
          fake.line = e.line;
          fake.name = jinja::ToString(args[0]);
          const auto& known = KnownFilters();
          if (std::find(known.begin(), known.end(), fake.name) == known.end()) {
            return RenderError(e.line, "unknown filter '" + fake.name + "' in map");
          }
          auto lit = std::make_unique<Expr>();
          lit->kind = Expr::Kind::kLiteral;
          lit->literal = item;
          fake.args.push_back(std::move(lit));
          PK_ASSIGN_OR_RETURN(Value x, EvalFilter(fake));
          out.push_back(std::move(x));
        } else {
          out.push_back(item);
        }
      }
      return Value::List(std::move(out));
    }
    if (f == "indent") {
      const Value* width = arg(0, "width");
      const Value* first = arg(1, "first");
      const Value* blank = arg(2, "blank");
      const std::string pad =
          width && width->is_string()
              ? width->s
              : std::string(static_cast<size_t>(width ? std::max<int64_t>(0, AsInt(*width)) : 4),
                            ' ');
      const std::string s = jinja::ToString(v);
      std::string out;
      size_t k = 0;
      bool first_line = true;
      while (k <= s.size()) {
        size_t nl = s.find('\n', k);
        const std::string line = s.substr(k, nl == std::string::npos ? std::string::npos : nl - k);
        const bool do_pad = (!first_line || (first && jinja::Truthy(*first))) &&
                            (!line.empty() || (blank && jinja::Truthy(*blank)));
        if (do_pad) out += pad;
        out += line;
        if (nl == std::string::npos) break;
        out += '\n';
        k = nl + 1;
        first_line = false;
      }
      return Value::Str(out);
    }
    return RenderError(e.line, "filter '" + f + "' is not supported");
  }

  Result<Value> GetAttrOrUndefined(const Value& item, const std::string& path, int line) {
    Value cur = item;
    size_t k = 0;
    while (k <= path.size()) {
      const size_t dot = path.find('.', k);
      const std::string part =
          path.substr(k, dot == std::string::npos ? std::string::npos : dot - k);
      if (cur.is_undefined()) return cur;
      PK_ASSIGN_OR_RETURN(cur, GetItem(cur, Value::Str(part), line));
      if (dot == std::string::npos) break;
      k = dot + 1;
    }
    return cur;
  }

  Result<bool> EvalTest(const Expr& e) {
    PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
    std::vector<Value> args;
    for (size_t k = 1; k < e.args.size(); ++k) {
      PK_ASSIGN_OR_RETURN(Value a, Eval(*e.args[k]));
      args.push_back(std::move(a));
    }
    return RunTest(e.name, v, args, e.line);
  }

  Result<bool> RunTest(const std::string& t, const Value& v, const std::vector<Value>& args,
                       int line) {
    using K = Value::Kind;
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (t == "none") return v.is_none();
    if (t == "string") return v.is_string();
    if (t == "number") return v.kind == K::kInt || v.kind == K::kFloat;
    if (t == "integer") return v.kind == K::kInt;
    if (t == "float") return v.kind == K::kFloat;
    if (t == "boolean") return v.kind == K::kBool;
    if (t == "true") return v.kind == K::kBool && v.b;
    if (t == "false") return v.kind == K::kBool && !v.b;
    if (t == "mapping") return v.is_object();
    if (t == "iterable") return v.is_array() || v.is_object() || v.is_string() || v.is_undefined();
    if (t == "sequence") return v.is_array() || v.is_object() || v.is_string();
    if (t == "callable") return v.kind == K::kFunction;
    if (t == "even" || t == "odd") {
      if (!v.is_number()) return RenderError(line, "even/odd needs a number");
      return (AsInt(v) % 2 == 0) == (t == "even");
    }
    if (t == "divisibleby") {
      if (args.empty() || AsInt(args[0]) == 0)
        return RenderError(line, "divisibleby needs a nonzero number");
      return AsInt(v) % AsInt(args[0]) == 0;
    }
    if (t == "lower" || t == "upper") {
      const std::string s = jinja::ToString(v);
      for (char c : s) {
        if (t == "lower" && std::isupper(static_cast<unsigned char>(c))) return false;
        if (t == "upper" && std::islower(static_cast<unsigned char>(c))) return false;
      }
      return true;
    }
    if (args.empty()) return RenderError(line, "test '" + t + "' needs an argument");
    if (t == "eq" || t == "equalto" || t == "==") return jinja::Equals(v, args[0]);
    if (t == "ne" || t == "!=") return !jinja::Equals(v, args[0]);
    if (t == "sameas") {
      return v.kind == args[0].kind &&
             (v.is_none() || v.is_undefined() || (v.kind == K::kBool && v.b == args[0].b) ||
              (v.obj && v.obj == args[0].obj) || (v.arr && v.arr == args[0].arr));
    }
    if (t == "in") return Contains(args[0], v, line);
    return RenderError(line, "test '" + t + "' is not supported");
  }

  Result<bool> Contains(const Value& container, const Value& item, int line) {
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

  Result<Value> EvalCompare(const Expr& e) {
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

  Result<Value> EvalBinary(const Expr& e) {
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
      return RenderError(e.line,
                         "'" + (u.s.empty() ? std::string("value") : u.s) + "' is undefined");
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

  static constexpr uint64_t kMaxSteps = 500'000;
  static constexpr int kMaxMacroDepth = 50;
  int macro_depth_ = 0;
  static constexpr size_t kMaxStringBytes = 16u << 20;
  uint64_t steps_ = 0;
  std::string* out_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
};

}  // namespace

struct ChatTemplate::Program {
  std::string source;
  std::vector<Node> nodes;
};

ChatTemplate::ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}

const std::string& ChatTemplate::source() const { return program_->source; }

Result<ChatTemplate> ChatTemplate::Parse(std::string_view jinja_source) {
  PK_ASSIGN_OR_RETURN(std::vector<Segment> segs, LexTemplate(jinja_source));
  Parser parser(std::move(segs));
  PK_ASSIGN_OR_RETURN(std::vector<Node> nodes, parser.ParseAll());
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
  Renderer r(&out);
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
                  stop = AsInt(a[0]);
                } else {
                  start = AsInt(a[0]);
                  stop = AsInt(a[1]);
                  if (a.size() == 3) step = AsInt(a[2]);
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
