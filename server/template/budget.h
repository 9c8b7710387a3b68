// Accounting of one render against its Limits: the wall-time deadline, the
// size caps on strings and containers, and the nesting depth of recursive walks
// over values. Every operation whose cost grows with the data charges it here,
// so no single primitive runs far past the deadline. One Budget per render,
// passed explicitly (Interpreter::budget() in builtins): nothing global.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "server/template/limits.h"

namespace kaon::jinja {

class Budget {
 public:
  // Starts the clock: the deadline is now + limits.max_render_time.
  explicit Budget(const Limits& limits);
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;

  const Limits& limits() const { return limits_; }

  // Accounts for `units` of work. A unit is at most about a microsecond: one
  // statement, loop iteration or macro call, one value visited or copied, or
  // kBytesPerUnit bytes scanned or copied. Reading the clock (~20 ns) once per
  // kUnitsPerClockRead units costs well under 1% of the work in between and
  // notices a passed deadline within about a millisecond. Overcharging only
  // makes clock reads more frequent; it never ends a render early.
  void Charge(size_t units) {
    if (units < credit_) [[likely]] {
      credit_ -= units;
      return;
    }
    CheckDeadline();
  }
  void ChargeBytes(size_t bytes) { Charge(1 + bytes / kBytesPerUnit); }

  // ResourceExhausted when a string of `bytes` or a list/dict of `items` would
  // pass its cap. Callers check before building where they can, so that no
  // oversized value is ever allocated.
  void CheckString(size_t bytes) const {
    if (bytes > limits_.max_output_bytes) [[unlikely]] StringTooLarge();
  }
  void CheckItems(size_t items) const {
    if (items > limits_.max_container_items) [[unlikely]] TooManyItems();
  }
  // The same for a repetition (`'ab' * n`, `[x] * n`), without overflowing.
  void CheckRepeatedString(size_t bytes, size_t times) const;
  void CheckRepeatedItems(size_t items, size_t times) const;

  // Held once per level by recursive walks over values (repr, ==, <, tojson): a
  // template can build values nested arbitrarily deep (`{% set ns.x = [ns.x] %}`
  // in a loop) or a namespace that contains itself, and walking those must end in
  // an error, not a stack overflow. 512 levels take well under a megabyte of
  // stack, and client JSON is refused beyond kMaxInputNesting (json_io.h).
  static constexpr int kMaxNesting = 512;
  class Nesting {
   public:
    explicit Nesting(Budget& b);
    ~Nesting() { --budget_.depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Budget& budget_;
  };

  static constexpr size_t kBytesPerUnit = 64;
  static constexpr size_t kUnitsPerClockRead = 1024;

 private:
  void CheckDeadline();
  [[noreturn]] void StringTooLarge() const;
  [[noreturn]] void TooManyItems() const;

  const Limits limits_;
  const bool timed_;
  const std::chrono::steady_clock::time_point deadline_;
  size_t credit_ = kUnitsPerClockRead;
  int depth_ = 0;
};

}  // namespace kaon::jinja
