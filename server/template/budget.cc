#include "server/template/budget.h"

#include <string>

#include "server/template/value.h"

namespace kaon::jinja {
namespace {

std::string DurationText(std::chrono::nanoseconds d) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  if (d % milliseconds(1) == std::chrono::nanoseconds(0))
    return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
  return std::to_string(duration_cast<microseconds>(d).count()) + " us";
}

}  // namespace

Budget::Budget(const Limits& limits)
    : limits_(limits),
      timed_(limits.max_render_time > std::chrono::nanoseconds(0)),
      deadline_(timed_ ? std::chrono::steady_clock::now() + limits.max_render_time
                       : std::chrono::steady_clock::time_point::max()) {}

void Budget::CheckDeadline() {
  credit_ = kUnitsPerClockRead;
  if (!timed_ || std::chrono::steady_clock::now() < deadline_) return;
  // Where the time ran out says nothing about the template, so no line number.
  throw TemplateError(absl::StatusCode::kResourceExhausted,
                      "chat template: rendering exceeded the " + DurationText(limits_.max_render_time) +
                          " budget (--max-chat-template-render-ms)",
                      /*verbatim=*/true);
}

void Budget::StringTooLarge() const {
  ThrowLimit("rendering built a string of more than " + std::to_string(limits_.max_output_bytes) +
             " bytes (--max-chat-template-output-bytes)");
}

void Budget::TooManyItems() const {
  ThrowLimit("rendering built a list or dict of more than " + std::to_string(limits_.max_container_items) +
             " items");
}

void Budget::CheckRepeatedString(size_t bytes, size_t times) const {
  size_t total;
  if (__builtin_mul_overflow(bytes, times, &total)) StringTooLarge();
  CheckString(total);
}

void Budget::CheckRepeatedItems(size_t items, size_t times) const {
  size_t total;
  if (__builtin_mul_overflow(items, times, &total)) TooManyItems();
  CheckItems(total);
}

Budget::Nesting::Nesting(Budget& b) : budget_(b) {
  if (budget_.depth_ >= kMaxNesting)
    ThrowLimit("a value nests deeper than " + std::to_string(kMaxNesting) + " levels");
  ++budget_.depth_;
}

}  // namespace kaon::jinja
