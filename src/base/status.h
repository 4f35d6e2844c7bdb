// Status and Result<T>: how every fallible call in Pocket reports failure. Anything that
// touches files, the network, user or peer input, or a memory budget returns one of these;
// our code does not throw. Thread safety: values, freely copyable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/check.h"

namespace pocket {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kCorruption,
  kNotSupported,
  kIOError,
  kResourceExhausted,
  kCancelled,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status NotSupported(std::string m) { return {StatusCode::kNotSupported, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: gguf: ..." ; "OK" for success.
  std::string ToString() const;
  // A copy with `prefix + ": "` in front of the message (adds context on the way up).
  Status WithContext(std::string_view prefix) const;

  bool operator==(const Status& o) const { return code_ == o.code_ && message_ == o.message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none. REQUIRES: constructed from a
// non-OK Status when it carries no value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    PK_CHECK(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { PK_CHECK(ok()); return *value_; }
  const T& value() const& { PK_CHECK(ok()); return *value_; }
  T&& value() && { PK_CHECK(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

namespace internal {
inline Status AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) { return r.status(); }
}  // namespace internal

}  // namespace pocket

#define PK_CONCAT_INNER_(a, b) a##b
#define PK_CONCAT_(a, b) PK_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define PK_RETURN_IF_ERROR(expr)                                         \
  do {                                                                   \
    ::pocket::Status pk_status_ = ::pocket::internal::AsStatus((expr));  \
    if (!pk_status_.ok()) return pk_status_;                             \
  } while (0)

// `PK_ASSIGN_OR_RETURN(auto x, F())` declares x from F()'s value or returns its Status.
#define PK_ASSIGN_OR_RETURN(lhs, expr) \
  PK_ASSIGN_OR_RETURN_IMPL_(PK_CONCAT_(pk_result_, __LINE__), lhs, expr)
#define PK_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
