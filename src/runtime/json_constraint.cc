#include "runtime/json_constraint.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "runtime/sampling.h"
#include "tokenizer/tokenizer.h"

namespace pocket::runtime {
namespace {

bool IsWhitespace(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::string_view kLiterals[] = {"true", "false", "null"};

}  // namespace

bool JsonRecognizer::Fail() {
  mode_ = Mode::kDead;
  return false;
}

bool JsonRecognizer::Whitespace() {
  if (++ws_run_ > kJsonMaxWhitespaceRun) return Fail();
  return true;
}

bool JsonRecognizer::StartValue(uint8_t c) {
  switch (c) {
    case '{':
    case '[':
      if (depth_ >= kJsonMaxDepth) return Fail();
      if (c == '[') stack_ |= uint64_t{1} << depth_;
      else stack_ &= ~(uint64_t{1} << depth_);
      ++depth_;
      mode_ = c == '{' ? Mode::kObjectOpen : Mode::kArrayOpen;
      return true;
    case '"':
      in_key_ = false;
      mode_ = Mode::kString;
      return true;
    case '-':
      mode_ = Mode::kNumMinus;
      return true;
    case '0':
      int_digits_ = 1;
      mode_ = Mode::kNumZero;
      return true;
    case 't':
    case 'f':
    case 'n':
      literal_ = c == 't' ? 0 : c == 'f' ? 1 : 2;
      count_ = 1;
      mode_ = Mode::kLiteral;
      return true;
    default:
      if (c >= '1' && c <= '9') {
        int_digits_ = 1;
        mode_ = Mode::kNumInt;
        return true;
      }
      return Fail();
  }
}

bool JsonRecognizer::Close(uint8_t c) {
  PK_DCHECK(depth_ > 0);
  const bool top_is_array = (stack_ >> (depth_ - 1)) & 1;
  if (top_is_array != (c == ']')) return Fail();
  --depth_;
  mode_ = depth_ == 0 ? Mode::kDone : Mode::kAfterValue;
  return true;
}

bool JsonRecognizer::AfterValue(uint8_t c) {
  if (IsWhitespace(c)) return Whitespace();
  if (c == ',') {
    const bool top_is_array = (stack_ >> (depth_ - 1)) & 1;
    mode_ = top_is_array ? Mode::kValue : Mode::kObjectKey;
    return true;
  }
  if (c == '}' || c == ']') return Close(c);
  return Fail();
}

bool JsonRecognizer::StringByte(uint8_t c) {
  if (c == '"') {
    mode_ = in_key_ ? Mode::kColon : Mode::kAfterValue;
    return true;
  }
  if (c == '\\') {
    mode_ = Mode::kEscape;
    return true;
  }
  if (c < 0x20) return Fail();  // control characters must be escaped
  if (c < 0x80) return true;
  // UTF-8 per RFC 3629 table 4 (no overlongs, no surrogates, nothing past U+10FFFF).
  utf8_lo_ = 0x80;
  utf8_hi_ = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    count_ = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    count_ = 2;
    if (c == 0xE0) utf8_lo_ = 0xA0;
    if (c == 0xED) utf8_hi_ = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    count_ = 3;
    if (c == 0xF0) utf8_lo_ = 0x90;
    if (c == 0xF4) utf8_hi_ = 0x8F;
  } else {
    return Fail();
  }
  mode_ = Mode::kUtf8;
  return true;
}

bool JsonRecognizer::Push(uint8_t c) {
  // Any byte but whitespace ends a whitespace run; a whitespace byte extends it below.
  const uint8_t ws_before = ws_run_;
  ws_run_ = 0;
  switch (mode_) {
    case Mode::kDead:
      return false;
    case Mode::kStart:
      if (IsWhitespace(c)) {
        ws_run_ = ws_before;
        return Whitespace();
      }
      if (c != '{') return Fail();
      return StartValue(c);
    case Mode::kDone:
      if (!IsWhitespace(c)) return Fail();
      ws_run_ = ws_before;
      return Whitespace();
    case Mode::kObjectOpen:
    case Mode::kObjectKey:
      if (IsWhitespace(c)) {
        ws_run_ = ws_before;
        return Whitespace();
      }
      if (c == '"') {
        in_key_ = true;
        mode_ = Mode::kString;
        return true;
      }
      if (c == '}' && mode_ == Mode::kObjectOpen) return Close(c);
      return Fail();
    case Mode::kColon:
      if (IsWhitespace(c)) {
        ws_run_ = ws_before;
        return Whitespace();
      }
      if (c != ':') return Fail();
      mode_ = Mode::kValue;
      return true;
    case Mode::kArrayOpen:
      if (c == ']') return Close(c);
      [[fallthrough]];
    case Mode::kValue:
      if (IsWhitespace(c)) {
        ws_run_ = ws_before;
        return Whitespace();
      }
      return StartValue(c);
    case Mode::kAfterValue:
      if (IsWhitespace(c)) ws_run_ = ws_before;
      return AfterValue(c);
    case Mode::kString:
      return StringByte(c);
    case Mode::kUtf8:
      if (c < utf8_lo_ || c > utf8_hi_) return Fail();
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xBF;
      if (--count_ == 0) mode_ = Mode::kString;
      return true;
    case Mode::kEscape:
      switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          mode_ = Mode::kString;
          return true;
        case 'u':
          mode_ = Mode::kUnicode;
          count_ = 0;
          code_ = 0;
          high_surrogate_ = false;
          return true;
        default:
          return Fail();
      }
    case Mode::kUnicode:
    case Mode::kUnicodeLow: {
      const int h = HexValue(c);
      if (h < 0) return Fail();
      code_ = static_cast<uint16_t>(code_ * 16 + h);
      ++count_;
      if (count_ == 2) {
        // The first two digits decide the surrogate class, so a prefix that cannot be
        // completed is refused here rather than two digits later.
        const bool high = code_ >= 0xD8 && code_ <= 0xDB, low = code_ >= 0xDC && code_ <= 0xDF;
        if (mode_ == Mode::kUnicode) {
          if (low) return Fail();  // a low surrogate without a high one before it
          high_surrogate_ = high;
        } else if (!low) {
          return Fail();  // a high surrogate must be followed by a low one
        }
      }
      if (count_ == 4) {
        mode_ = mode_ == Mode::kUnicode && high_surrogate_ ? Mode::kLowBackslash : Mode::kString;
      }
      return true;
    }
    case Mode::kLowBackslash:
      if (c != '\\') return Fail();
      mode_ = Mode::kLowU;
      return true;
    case Mode::kLowU:
      if (c != 'u') return Fail();
      mode_ = Mode::kUnicodeLow;
      count_ = 0;
      code_ = 0;
      return true;
    case Mode::kLiteral: {
      const std::string_view lit = kLiterals[literal_];
      if (c != static_cast<uint8_t>(lit[count_])) return Fail();
      if (++count_ == lit.size()) return EndValue();
      return true;
    }
    case Mode::kNumMinus:
      if (c == '0') {
        int_digits_ = 1;
        mode_ = Mode::kNumZero;
        return true;
      }
      if (c >= '1' && c <= '9') {
        int_digits_ = 1;
        mode_ = Mode::kNumInt;
        return true;
      }
      return Fail();
    case Mode::kNumZero:
    case Mode::kNumInt:
      if (IsDigit(c)) {
        if (mode_ == Mode::kNumZero) return Fail();  // no leading zeros
        if (++int_digits_ > kJsonMaxDecimalExponent) return Fail();
        return true;
      }
      if (c == '.') {
        mode_ = Mode::kNumDot;
        return true;
      }
      [[fallthrough]];
    case Mode::kNumFrac:
      if (mode_ == Mode::kNumFrac && IsDigit(c)) return true;
      if (c == 'e' || c == 'E') {
        mode_ = Mode::kNumExp;
        exponent_ = 0;
        exp_negative_ = false;
        return true;
      }
      if (IsWhitespace(c)) ws_run_ = ws_before;
      mode_ = Mode::kAfterValue;  // the number ended; this byte follows it
      return AfterValue(c);
    case Mode::kNumDot:
      if (!IsDigit(c)) return Fail();
      mode_ = Mode::kNumFrac;
      return true;
    case Mode::kNumExp:
      if (c == '+' || c == '-') {
        exp_negative_ = c == '-';
        mode_ = Mode::kNumExpSign;
        return true;
      }
      [[fallthrough]];
    case Mode::kNumExpSign:
      if (!IsDigit(c)) return Fail();
      mode_ = Mode::kNumExpDigits;
      [[fallthrough]];
    case Mode::kNumExpDigits:
      if (IsDigit(c)) {
        if (!exp_negative_) {
          exponent_ = static_cast<uint16_t>(
              std::min<int>(exponent_ * 10 + (c - '0'), kJsonMaxDecimalExponent + 1));
          if (int_digits_ + exponent_ > kJsonMaxDecimalExponent) return Fail();
        }
        return true;
      }
      if (IsWhitespace(c)) ws_run_ = ws_before;
      mode_ = Mode::kAfterValue;
      return AfterValue(c);
  }
  return Fail();
}

bool JsonRecognizer::Push(std::string_view bytes) {
  for (char c : bytes) {
    if (!Push(static_cast<uint8_t>(c))) return false;
  }
  return !dead();
}

JsonTokenTable::JsonTokenTable(const tokenizer::Tokenizer& tok, size_t vocab_size)
    : pieces_(vocab_size), kind_(vocab_size, Kind::kNever) {
  const size_t known = std::min(vocab_size, tok.vocab_size());
  for (size_t i = 0; i < known; ++i) {
    const auto id = static_cast<int32_t>(i);
    if (tok.IsEndOfGeneration(id)) {
      kind_[i] = Kind::kEndOfGeneration;
    } else if (!tok.IsControl(id)) {
      pieces_[i] = tok.TokenToPiece(id);
      // An empty piece would let the model stall without moving the recognizer.
      if (!pieces_[i].empty()) kind_[i] = Kind::kText;
    }
  }
  for (size_t i = 0; i < vocab_size; ++i) {
    if (kind_[i] != Kind::kText) continue;
    order_.push_back(static_cast<int32_t>(i));
    max_piece_bytes_ = std::max(max_piece_bytes_, pieces_[i].size());
  }
  std::sort(order_.begin(), order_.end(), [&](int32_t a, int32_t b) {
    return pieces_[static_cast<size_t>(a)] < pieces_[static_cast<size_t>(b)];
  });
  common_.assign(order_.size(), 0);
  for (size_t i = 1; i < order_.size(); ++i) {
    const std::string& a = pieces_[static_cast<size_t>(order_[i - 1])];
    const std::string& b = pieces_[static_cast<size_t>(order_[i])];
    const size_t n = std::min(a.size(), b.size());
    uint32_t k = 0;
    while (k < n && a[k] == b[k]) ++k;
    common_[i] = k;
  }
}

bool JsonTokenTable::Allows(const JsonRecognizer& state, int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= kind_.size()) return false;
  switch (kind_[static_cast<size_t>(token)]) {
    case Kind::kNever:
      return false;
    case Kind::kEndOfGeneration:
      return state.complete();
    case Kind::kText:
      break;
  }
  JsonRecognizer s = state;
  return s.Push(pieces_[static_cast<size_t>(token)]);
}

size_t JsonTokenTable::Mask(const JsonRecognizer& state, std::span<float> logits) const {
  PK_CHECK(logits.size() == kind_.size());
  std::vector<bool> allowed(kind_.size(), false);
  size_t n_allowed = 0;
  // Pieces in sorted order walk a trie of the vocabulary: states[k] is the recognizer after
  // the first k bytes of the previous piece, so a piece resumes at the prefix it shares with
  // the previous one, and a piece that shares a refused prefix is refused without a look.
  // With a 128k vocabulary most pieces are settled by their first byte or two.
  std::vector<JsonRecognizer> states(max_piece_bytes_ + 1);
  states[0] = state;
  size_t failed_at = SIZE_MAX;  // byte of the previous piece that was refused; MAX: none
  for (size_t i = 0; i < order_.size(); ++i) {
    const std::string& piece = pieces_[static_cast<size_t>(order_[i])];
    const size_t shared = i == 0 ? 0 : common_[i];
    if (failed_at != SIZE_MAX && shared > failed_at) continue;  // same refused prefix
    failed_at = SIZE_MAX;
    for (size_t k = shared; k < piece.size(); ++k) {
      states[k + 1] = states[k];
      if (!states[k + 1].Push(static_cast<uint8_t>(piece[k]))) {
        failed_at = k;
        break;
      }
    }
    if (failed_at == SIZE_MAX) {
      allowed[static_cast<size_t>(order_[i])] = true;
      ++n_allowed;
    }
  }
  for (size_t i = 0; i < kind_.size(); ++i) {
    if (kind_[i] == Kind::kEndOfGeneration && state.complete()) {
      allowed[i] = true;
      ++n_allowed;
    }
    if (!allowed[i]) logits[i] = -INFINITY;
  }
  return n_allowed;
}

Result<int32_t> SampleJsonToken(Sampler& sampler, const JsonTokenTable& table,
                                const JsonRecognizer& state, std::span<const float> logits,
                                std::span<const int32_t> history, std::vector<float>* scratch) {
  PK_CHECK(logits.size() == table.vocab_size());
  const int32_t first = sampler.Sample(logits, history);
  if (table.Allows(state, first)) return first;
  scratch->assign(logits.begin(), logits.end());
  if (table.Mask(state, *scratch) == 0) {
    return Status::Internal(
        "json: no token of the vocabulary can continue the JSON object generated so far");
  }
  const int32_t second = sampler.Sample(*scratch, history);
  if (table.Allows(state, second)) return second;
  // Only when every allowed token's logit is itself -inf (or NaN) can the draw land on a
  // masked one; take the best allowed token then, the lowest id among ties.
  int32_t best = -1;
  for (size_t i = 0; i < scratch->size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (!table.Allows(state, id)) continue;
    if (best < 0 || (*scratch)[i] > (*scratch)[static_cast<size_t>(best)]) best = id;
  }
  PK_CHECK(best >= 0);
  return best;
}

}  // namespace pocket::runtime
