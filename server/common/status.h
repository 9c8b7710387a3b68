// Error handling shared by all of kaon outside kernels/.
// Invariants: KAON_CHECK(cond) << msg aborts with file:line. Recoverable
// conditions travel as absl::Status / absl::StatusOr.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace kaon::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* cond) {
    stream_ << file << ":" << line << ": check failed: " << cond << " ";
  }
  [[noreturn]] ~CheckFailure() {
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace kaon::internal

#define KAON_CHECK(cond) \
  if (cond) {            \
  } else                 \
    ::kaon::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define KAON_STATUS_CONCAT_INNER(a, b) a##b
#define KAON_STATUS_CONCAT(a, b) KAON_STATUS_CONCAT_INNER(a, b)

#define KAON_RETURN_IF_ERROR(expr)                \
  do {                                            \
    ::absl::Status kaon_status_ = (expr);         \
    if (!kaon_status_.ok()) return kaon_status_;  \
  } while (0)

#define KAON_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(*tmp)

#define KAON_ASSIGN_OR_RETURN(lhs, expr) \
  KAON_ASSIGN_OR_RETURN_IMPL(KAON_STATUS_CONCAT(kaon_statusor_, __LINE__), lhs, expr)

namespace kaon {

// A fatal error leaves the process unable to serve (a sticky CUDA error: the
// context is lost). The engine stops, fails every request, and the server
// exits non-zero so an orchestrator restarts it. Marked with a payload so the
// code stays the honest one (Internal).
inline constexpr absl::string_view kFatalPayloadUrl = "type.kaon/fatal";

inline absl::Status FatalError(absl::string_view message) {
  absl::Status s = absl::InternalError(message);
  s.SetPayload(kFatalPayloadUrl, absl::Cord("1"));
  return s;
}

inline bool IsFatal(const absl::Status& s) { return s.GetPayload(kFatalPayloadUrl).has_value(); }

}  // namespace kaon
