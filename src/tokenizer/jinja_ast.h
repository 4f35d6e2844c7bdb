// Internal to the chat-template interpreter (chat_template.cc and the jinja_*.cc files):
// the lexer's segments and tokens, the AST the parser builds and the renderer walks, the
// error helpers every phase uses, and the entry points of the lexer and the parser.
// Pipeline: LexTemplate (jinja_lexer.cc) -> ParseSegments, which calls LexExpr per tag
// (jinja_parser.cc) -> Renderer (jinja_render.h; filters, tests and methods in
// jinja_filters.cc). Thread safety: a parsed AST is immutable and shared by renders.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "tokenizer/jinja_value.h"

namespace pocket::tokenizer::jinja {

inline constexpr std::string_view kFallbackHint =
    " (pick a built-in template with --chat-template chatml|llama3|llama2|mistral|zephyr)";

// A syntax error: names the line and the fallback flag.
inline Status ParseError(int line, const std::string& what) {
  return Status::InvalidArgument("chat template: line " + std::to_string(line) + ": " + what +
                                 std::string(kFallbackHint));
}

// A runtime error in a template: names the line.
inline Status RenderError(int line, const std::string& what) {
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

// Splits a template into text and tags, with Jinja's whitespace control (trim_blocks,
// lstrip_blocks, {%- -%}, {%+) applied and comments dropped. InvalidArgument (ParseError)
// for an unclosed tag. jinja_lexer.cc.
Result<std::vector<Segment>> LexTemplate(std::string_view raw);
// Tokens of one tag's inside; `line` is for errors. jinja_lexer.cc.
Result<std::vector<Tok>> LexExpr(std::string_view s, int line);
// The template's nodes from its segments. InvalidArgument (ParseError) naming the line and
// --chat-template for syntax this interpreter does not support. jinja_parser.cc.
Result<std::vector<Node>> ParseSegments(std::vector<Segment> segs);

// Names of jinja2's built-in filters and tests, implemented or not: the parser accepts
// them, the renderer says "not supported" for the ones jinja_filters.cc lacks.
const std::vector<std::string_view>& KnownFilters();
const std::vector<std::string_view>& KnownTests();

}  // namespace pocket::tokenizer::jinja
