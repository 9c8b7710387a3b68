// The value model of the template language: Python's object semantics reduced to
// what chat templates use (None, bool, int, float, str, list/tuple, dict,
// namespace, callables, loop objects) plus jinja2's default Undefined.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "server/template/budget.h"

namespace kaon::jinja {

class Value;
class Interpreter;
struct LoopState;

// Errors travel as exceptions inside the interpreter (every expression can fail,
// and threading StatusOr through each one would bury the logic); Render turns
// them into absl::Status at the boundary.
struct TemplateError : std::exception {
  TemplateError(absl::StatusCode c, std::string m, bool verbatim_message = false)
      : code(c), message(std::move(m)), verbatim(verbatim_message) {}
  const char* what() const noexcept override { return message.c_str(); }
  absl::StatusCode code;
  std::string message;
  // Render returns the message as it is, without "chat template: line N: ":
  // raise_exception()'s text is the template's own, and the time budget can run
  // out anywhere.
  bool verbatim;
};
[[noreturn]] void ThrowError(std::string message);
[[noreturn]] void ThrowLimit(std::string message);
// Python's "'str' object cannot be interpreted as an integer".
[[noreturn]] void ThrowNotAnInteger(const Value& v);

struct UndefinedInfo {
  std::string hint;          // explicit message, wins when set
  std::string name;          // variable, attribute or element (repr'd for non-strings)
  bool name_is_str = true;
  bool has_obj = false;      // attribute/element of an object
  std::string obj_type;      // object_type_repr of that object
};

// Lists and dicts free their nested containers iteratively (value.cc): a value a
// template nested thousands of levels deep must not overflow the stack when it dies.
struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  ListData() = default;
  ListData(const ListData&) = default;
  ListData(ListData&&) = default;
  ListData& operator=(const ListData&) = default;
  ListData& operator=(ListData&&) = default;
  ~ListData();
};

// Lookups scan the keys (dicts in templates are small and ordered), charging
// the scan to the budget.
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  bool is_namespace = false;
  DictData() = default;
  DictData(const DictData&) = default;
  DictData(DictData&&) = default;
  DictData& operator=(const DictData&) = default;
  DictData& operator=(DictData&&) = default;
  ~DictData();
  const Value* Find(const Value& key, Budget& budget) const;
  const Value* FindStr(std::string_view key, Budget& budget) const;
  void Set(const Value& key, Value v, Budget& budget);
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

struct NoneT {};

class Value {
 public:
  enum Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kCallable, kLoop };

  Value() : v_(std::shared_ptr<const UndefinedInfo>()) {}
  Value(NoneT) : v_(NoneT{}) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(StringStorage(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(std::shared_ptr<ListData> l) : v_(std::move(l)) {}
  Value(std::shared_ptr<DictData> d) : v_(std::move(d)) {}
  Value(std::shared_ptr<Callable> c) : v_(std::move(c)) {}
  Value(std::shared_ptr<LoopState> l) : v_(std::move(l)) {}

  static Value None() { return Value(NoneT{}); }
  static Value Undefined(UndefinedInfo info) {
    Value v;
    v.v_ = std::make_shared<const UndefinedInfo>(std::move(info));
    return v;
  }
  static Value UndefinedName(const std::string& name);
  static Value UndefinedHint(const std::string& hint);
  static Value MakeList(std::vector<Value> items, bool tuple = false);
  static Value MakeDict();

  Kind kind() const {
    const size_t i = v_.index();
    return static_cast<Kind>(i == kSharedStringIndex ? size_t{kString} : i);
  }
  bool is_undefined() const { return kind() == kUndefined; }
  bool is_none() const { return kind() == kNone; }
  bool is_bool() const { return kind() == kBool; }
  bool is_int() const { return kind() == kInt; }
  bool is_float() const { return kind() == kFloat; }
  bool is_number() const { return kind() == kInt || kind() == kFloat || kind() == kBool; }
  bool is_string() const { return kind() == kString; }
  bool is_list() const { return kind() == kList; }
  bool is_dict() const { return kind() == kDict; }
  bool is_callable() const { return kind() == kCallable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  // Int view of bool/int (Python bools are ints). Builtins call it on their
  // arguments (`batch(n)`, `center(width)`, ...), so anything else is the
  // template's TypeError, not an escaped bad_variant_access (an Internal error).
  int64_t int_value() const {
    if (is_bool()) return as_bool() ? 1 : 0;
    if (!is_int()) ThrowNotAnInteger(*this);
    return as_int();
  }
  double number_value() const { return is_float() ? as_float() : static_cast<double>(int_value()); }
  const std::string& str() const {
    if (const auto* s = std::get_if<OwnedString>(&v_)) return *s;
    return *std::get<SharedString>(v_);  // throws bad_variant_access for a non-string, as before
  }
  const std::shared_ptr<ListData>& list() const { return std::get<std::shared_ptr<ListData>>(v_); }
  const std::shared_ptr<DictData>& dict() const { return std::get<std::shared_ptr<DictData>>(v_); }
  const std::shared_ptr<Callable>& callable() const { return std::get<std::shared_ptr<Callable>>(v_); }
  const std::shared_ptr<LoopState>& loop() const { return std::get<std::shared_ptr<LoopState>>(v_); }
  const UndefinedInfo* undefined_info() const { return std::get<0>(v_).get(); }

 private:
  // Long strings are immutable and shared, like Python's: copying a value never
  // copies a long text, so a list of a thousand references to one long message
  // costs a thousand pointers, not a thousand copies, and copies take no time
  // worth budgeting. Short ones are plain std::strings: a copy costs at most an
  // allocation, as sharing would, and creating one needs no separate reference
  // count, which matters for the many short strings of a normal render. (A list
  // of one short string repeated to the item cap stays under 300 MB.)
  using SharedString = std::shared_ptr<const std::string>;
  using OwnedString = std::string;
  static constexpr size_t kShareFrom = 256;
  // Alternatives in Kind's order, then the shared string (also kString).
  using Storage = std::variant<std::shared_ptr<const UndefinedInfo>, NoneT, bool, int64_t, double, OwnedString,
                               std::shared_ptr<ListData>, std::shared_ptr<DictData>, std::shared_ptr<Callable>,
                               std::shared_ptr<LoopState>, SharedString>;
  static constexpr size_t kSharedStringIndex = 10;
  static_assert(std::is_same_v<std::variant_alternative_t<kString, Storage>, OwnedString>);
  static_assert(std::is_same_v<std::variant_alternative_t<kSharedStringIndex, Storage>, SharedString>);
  static Storage StringStorage(std::string&& s) {
    if (s.size() < kShareFrom) return Storage(std::in_place_type<OwnedString>, std::move(s));
    return Storage(std::in_place_type<SharedString>, std::make_shared<const std::string>(std::move(s)));
  }
  Storage v_;
};

// Python semantics. Operations whose cost grows with their operands take the
// render's Budget, charge that cost to it and check the size of what they build.
bool Truthy(const Value& v);
std::string ToStr(const Value& v, Budget& budget);  // str(v); Undefined -> ""
std::string Repr(const Value& v, Budget& budget);   // repr(v)
std::string TypeName(const Value& v);  // type(v).__name__
std::string ObjectTypeRepr(const Value& v);  // jinja2's "dict object", "None"
std::string UndefinedMessage(const UndefinedInfo* info);
[[noreturn]] void ThrowUndefined(const Value& v);
bool Equals(const Value& a, const Value& b, Budget& budget);
// a < b, raising TypeError-style errors for unorderable types (op names the operator).
bool Less(const Value& a, const Value& b, Budget& budget, const char* op = "<", bool swapped = false);
bool LessOrEqual(const Value& a, const Value& b, Budget& budget, const char* op = "<=", bool swapped = false);
// Iteration as Python does it: list items, dict keys, string code points, Undefined empty.
std::vector<Value> Iterate(const Value& v, Budget& budget);
int64_t Length(const Value& v, Budget& budget);
bool Contains(const Value& container, const Value& item, Budget& budget);

Value Add(const Value& a, const Value& b, Budget& budget);
Value Sub(const Value& a, const Value& b);
Value Mul(const Value& a, const Value& b, Budget& budget);
Value Div(const Value& a, const Value& b);
Value FloorDiv(const Value& a, const Value& b);
Value Mod(const Value& a, const Value& b, Budget& budget);
Value Pow(const Value& a, const Value& b);
Value Negate(const Value& a);

// Python's obj[key] for lists/strings/dicts; nullopt-like Undefined on failure
// (jinja2 turns lookup failures into Undefined).
Value GetItem(const Value& obj, const Value& key, Budget& budget);
Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step, Budget& budget);

// Charges the size of a value (its bytes or items): what the interpreter does with
// every builtin's operands, whose cost grows with them.
void ChargeSize(const Value& v, Budget& budget);
// The same, and checks that size against the caps: for values a builtin built.
void CheckSize(const Value& v, Budget& budget);

}  // namespace kaon::jinja
