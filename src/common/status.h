#pragma once
// Errors are values. A Status is either ok or carries a code and a human-readable message;
// Result<T> is a T or a non-ok Status. Neither throws across an interface.

#include <string>
#include <utility>
#include <variant>

#include "common/assert.h"

namespace cairn {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong; the message says how
  kNotFound,
  kIoError,          // the disk or the network failed
  kCorruption,       // stored bytes do not decode; never silently ignored
  kBusy,             // a limit was reached; retry later
  kUnavailable,      // not enough replicas or machines answered
  kTimedOut,
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status timed_out(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    CAIRN_ASSERT(!std::get<Status>(v_).is_ok(), "a Result built from a Status must be an error");
  }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: is_ok().
  T& value() & { CAIRN_ASSERT(is_ok(), status().to_string()); return std::get<T>(v_); }
  const T& value() const& { CAIRN_ASSERT(is_ok(), status().to_string()); return std::get<T>(v_); }
  T&& value() && { CAIRN_ASSERT(is_ok(), status().to_string()); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cairn
