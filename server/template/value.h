// The value model of the template language: Python's object semantics reduced to
// what chat templates use (None, bool, int, float, str, list/tuple, dict,
// namespace, callables, loop objects) plus jinja2's default Undefined.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace kaon::jinja {

class Value;
class Interpreter;
struct LoopState;

// Errors travel as exceptions inside the interpreter (every expression can fail,
// and threading StatusOr through each one would bury the logic); Render turns
// them into absl::Status at the boundary.
struct TemplateError : std::exception {
  TemplateError(absl::StatusCode c, std::string m, bool raised = false)
      : code(c), message(std::move(m)), from_raise(raised) {}
  const char* what() const noexcept override { return message.c_str(); }
  absl::StatusCode code;
  std::string message;
  bool from_raise;  // raise_exception(): the message is the template's own
};
[[noreturn]] void ThrowError(std::string message);
[[noreturn]] void ThrowLimit(std::string message);

struct UndefinedInfo {
  std::string hint;          // explicit message, wins when set
  std::string name;          // variable, attribute or element (repr'd for non-strings)
  bool name_is_str = true;
  bool has_obj = false;      // attribute/element of an object
  std::string obj_type;      // object_type_repr of that object
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};

struct DictData {
  std::vector<std::pair<Value, Value>> items;
  bool is_namespace = false;
  const Value* Find(const Value& key) const;
  const Value* FindStr(std::string_view key) const;
  void Set(const Value& key, Value v);
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
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
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

  Kind kind() const { return static_cast<Kind>(v_.index()); }
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
  // Int view of bool/int (Python bools are ints).
  int64_t int_value() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  double number_value() const { return is_float() ? as_float() : static_cast<double>(int_value()); }
  const std::string& str() const { return std::get<std::string>(v_); }
  const std::shared_ptr<ListData>& list() const { return std::get<std::shared_ptr<ListData>>(v_); }
  const std::shared_ptr<DictData>& dict() const { return std::get<std::shared_ptr<DictData>>(v_); }
  const std::shared_ptr<Callable>& callable() const { return std::get<std::shared_ptr<Callable>>(v_); }
  const std::shared_ptr<LoopState>& loop() const { return std::get<std::shared_ptr<LoopState>>(v_); }
  const UndefinedInfo* undefined_info() const { return std::get<0>(v_).get(); }

 private:
  std::variant<std::shared_ptr<const UndefinedInfo>, NoneT, bool, int64_t, double, std::string,
               std::shared_ptr<ListData>, std::shared_ptr<DictData>, std::shared_ptr<Callable>,
               std::shared_ptr<LoopState>>
      v_;
};

// Python semantics.
bool Truthy(const Value& v);
std::string ToStr(const Value& v);    // str(v); Undefined -> ""
std::string Repr(const Value& v);     // repr(v)
std::string TypeName(const Value& v); // type(v).__name__
std::string ObjectTypeRepr(const Value& v);  // jinja2's "dict object", "None"
std::string UndefinedMessage(const UndefinedInfo* info);
[[noreturn]] void ThrowUndefined(const Value& v);
bool Equals(const Value& a, const Value& b);
// a < b, raising TypeError-style errors for unorderable types (op names the operator).
bool Less(const Value& a, const Value& b, const char* op = "<", bool swapped = false);
bool LessOrEqual(const Value& a, const Value& b, const char* op = "<=", bool swapped = false);
// Iteration as Python does it: list items, dict keys, string code points, Undefined empty.
std::vector<Value> Iterate(const Value& v);
int64_t Length(const Value& v);
bool Contains(const Value& container, const Value& item);

Value Add(const Value& a, const Value& b);
Value Sub(const Value& a, const Value& b);
Value Mul(const Value& a, const Value& b);
Value Div(const Value& a, const Value& b);
Value FloorDiv(const Value& a, const Value& b);
Value Mod(const Value& a, const Value& b);
Value Pow(const Value& a, const Value& b);
Value Negate(const Value& a);

// Python's obj[key] for lists/strings/dicts; nullopt-like Undefined on failure
// (jinja2 turns lookup failures into Undefined).
Value GetItem(const Value& obj, const Value& key);
Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Largest string any operation may build; set per render by the interpreter.
extern thread_local size_t g_max_string_bytes;
void CheckStringSize(size_t n);

}  // namespace kaon::jinja
