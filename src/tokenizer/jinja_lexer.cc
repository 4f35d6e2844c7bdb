// Lexing of chat templates: the template-level split into text and tags (with Jinja's
// whitespace control) and the tokens of an expression or statement inside a tag. The
// parser (jinja_parser.cc) consumes both; the types are in jinja_ast.h.
#include <cerrno>
#include <cstdlib>

#include "base/utf8.h"
#include "tokenizer/jinja_ast.h"

namespace pocket::tokenizer::jinja {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

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

}  // namespace pocket::tokenizer::jinja
