// jinja2's builtin tests (`x is defined`, `x is divisibleby 3`, ...).
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "server/template/interpreter.h"
#include "server/template/text.h"

namespace kaon::jinja {
namespace {

const Value& Arg(CallArgs& a, const char* test) {
  if (a.args.empty()) {
    if (!a.kwargs.empty()) return a.kwargs[0].second;
    ThrowError(std::string(test) + "() missing required argument");
  }
  return a.args[0];
}

bool Defined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool UndefinedT(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool NoneT_(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool StringT(Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }
bool NumberT(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool IntegerT(Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }
bool FloatT(Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }
bool MappingT(Interpreter&, const Value& v, CallArgs&) { return v.is_dict() && !v.dict()->is_namespace; }
bool IterableT(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.dict()->is_namespace);
}
// Undefined has __len__, __getitem__ and __call__, so it passes `sequence` and `callable`.
bool SequenceT(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.dict()->is_namespace);
}
bool BooleanT(Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }
bool TrueT(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool FalseT(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool CallableT(Interpreter&, const Value& v, CallArgs&) {
  return v.is_callable() || v.is_undefined() || v.kind() == Value::kLoop;
}
bool Eq(Interpreter& in, const Value& v, CallArgs& a) { return Equals(v, Arg(a, "eq"), in.budget()); }
bool Ne(Interpreter& in, const Value& v, CallArgs& a) { return !Equals(v, Arg(a, "ne"), in.budget()); }
bool Lt(Interpreter& in, const Value& v, CallArgs& a) { return Less(v, Arg(a, "lt"), in.budget()); }
bool Gt(Interpreter& in, const Value& v, CallArgs& a) { return Less(Arg(a, "gt"), v, in.budget(), ">", true); }
bool Le(Interpreter& in, const Value& v, CallArgs& a) { return LessOrEqual(v, Arg(a, "le"), in.budget(), "<="); }
bool Ge(Interpreter& in, const Value& v, CallArgs& a) { return LessOrEqual(Arg(a, "ge"), v, in.budget(), ">=", true); }
bool In(Interpreter& in, const Value& v, CallArgs& a) { return Contains(Arg(a, "in"), v, in.budget()); }
bool SameAs(Interpreter& in, const Value& v, CallArgs& a) {
  const Value& o = Arg(a, "sameas");
  if (v.kind() != o.kind()) return false;
  if (v.is_none() || v.is_bool() || v.is_undefined()) return Equals(v, o, in.budget());
  if (v.is_list()) return v.list() == o.list();
  if (v.is_dict()) return v.dict() == o.dict();
  return Equals(v, o, in.budget());
}
bool DivisibleBy(Interpreter& in, const Value& v, CallArgs& a) {
  Value r = Mod(v, Arg(a, "divisibleby"), in.budget());
  return r.number_value() == 0;
}
bool Odd(Interpreter& in, const Value& v, CallArgs&) {
  return Mod(v, Value(int64_t{2}), in.budget()).number_value() == 1;
}
bool Even(Interpreter& in, const Value& v, CallArgs&) {
  return Mod(v, Value(int64_t{2}), in.budget()).number_value() == 0;
}
bool LowerT(Interpreter& in, const Value& v, CallArgs&) {
  std::string s = ToStr(v, in.budget());
  return PyLower(s) == s && PyUpper(s) != s;
}
bool UpperT(Interpreter& in, const Value& v, CallArgs&) {
  std::string s = ToStr(v, in.budget());
  return PyUpper(s) == s && PyLower(s) != s;
}
bool EscapedT(Interpreter&, const Value&, CallArgs&) { return false; }
bool FilterT(Interpreter&, const Value& v, CallArgs&) { return v.is_string() && FindFilter(v.str()) != nullptr; }
bool TestT(Interpreter&, const Value& v, CallArgs&) { return v.is_string() && FindTest(v.str()) != nullptr; }

const std::unordered_map<std::string_view, TestFn>& Tests() {
  static const auto* m = new std::unordered_map<std::string_view, TestFn>{
      {"defined", Defined}, {"undefined", UndefinedT}, {"none", NoneT_}, {"string", StringT},
      {"number", NumberT}, {"integer", IntegerT}, {"float", FloatT}, {"mapping", MappingT},
      {"iterable", IterableT}, {"sequence", SequenceT}, {"boolean", BooleanT}, {"true", TrueT},
      {"false", FalseT}, {"callable", CallableT}, {"equalto", Eq}, {"eq", Eq}, {"==", Eq}, {"ne", Ne},
      {"!=", Ne}, {"lt", Lt}, {"lessthan", Lt}, {"<", Lt}, {"gt", Gt}, {"greaterthan", Gt}, {">", Gt},
      {"le", Le}, {"<=", Le}, {"ge", Ge}, {">=", Ge}, {"in", In}, {"sameas", SameAs},
      {"divisibleby", DivisibleBy}, {"odd", Odd}, {"even", Even}, {"lower", LowerT}, {"upper", UpperT},
      {"escaped", EscapedT}, {"filter", FilterT}, {"test", TestT},
  };
  return *m;
}

}  // namespace

TestFn FindTest(std::string_view name) {
  auto it = Tests().find(name);
  return it == Tests().end() ? nullptr : it->second;
}

}  // namespace kaon::jinja
