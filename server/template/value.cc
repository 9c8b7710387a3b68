#include "server/template/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "server/template/text.h"

namespace kaon::jinja {

void ThrowError(std::string message) {
  throw TemplateError(absl::StatusCode::kInvalidArgument, std::move(message));
}
void ThrowLimit(std::string message) {
  throw TemplateError(absl::StatusCode::kResourceExhausted, std::move(message));
}
namespace {

inline bool SoleOwnedContainer(const Value& v) {
  return (v.is_list() && v.list().use_count() == 1) || (v.is_dict() && v.dict().use_count() == 1);
}

// Whether freeing `v` would free a container nested inside it.
bool FreesNested(const Value& v) {
  if (!SoleOwnedContainer(v)) return false;
  if (v.is_list()) {
    for (const auto& c : v.list()->items)
      if (SoleOwnedContainer(c)) return true;
    return false;
  }
  for (const auto& [k, c] : v.dict()->items)
    if (SoleOwnedContainer(k) || SoleOwnedContainer(c)) return true;
  return false;
}

// Frees nested containers without recursion: a container whose items would
// free containers of their own is moved onto `pending` and freed from there,
// after the same has been done to its items. Containers of plain values (the
// messages' dicts) are freed in place, one level down. The stack stays flat
// however deeply the values nest, and the common case allocates nothing.
void TakeNested(Value& v, std::vector<Value>& pending) {
  if (FreesNested(v)) pending.push_back(std::move(v));
}

void ReleaseNested(std::vector<Value>& pending) {
  while (!pending.empty()) {
    Value v = std::move(pending.back());
    pending.pop_back();
    if (v.is_list()) {
      for (auto& c : v.list()->items) TakeNested(c, pending);
    } else {
      for (auto& [k, c] : v.dict()->items) {
        TakeNested(k, pending);
        TakeNested(c, pending);
      }
    }
  }
}

bool IsContainer(const Value& v) { return v.is_list() || v.is_dict(); }

}  // namespace

ListData::~ListData() {
  std::vector<Value> pending;
  for (auto& v : items)
    if (IsContainer(v)) TakeNested(v, pending);
  if (!pending.empty()) ReleaseNested(pending);
}

DictData::~DictData() {
  std::vector<Value> pending;
  for (auto& [k, v] : items) {
    if (IsContainer(k)) TakeNested(k, pending);
    if (IsContainer(v)) TakeNested(v, pending);
  }
  if (!pending.empty()) ReleaseNested(pending);
}

const Value* DictData::Find(const Value& key, Budget& budget) const {
  if (key.is_string()) return FindStr(key.str(), budget);
  budget.Charge(items.size());
  for (const auto& [k, v] : items)
    if (Equals(k, key, budget)) return &v;
  return nullptr;
}

const Value* DictData::FindStr(std::string_view key, Budget& budget) const {
  budget.Charge(items.size());
  for (const auto& [k, v] : items)
    if (k.is_string() && k.str() == key) return &v;
  return nullptr;
}

void DictData::Set(const Value& key, Value v, Budget& budget) {
  budget.Charge(items.size());
  for (auto& [k, old] : items) {
    if (Equals(k, key, budget)) {
      old = std::move(v);
      return;
    }
  }
  budget.CheckItems(items.size() + 1);
  items.emplace_back(key, std::move(v));
}

Value Value::UndefinedName(const std::string& name) {
  UndefinedInfo info;
  info.name = name;
  return Undefined(std::move(info));
}
Value Value::UndefinedHint(const std::string& hint) {
  UndefinedInfo info;
  info.hint = hint;
  return Undefined(std::move(info));
}
Value Value::MakeList(std::vector<Value> items, bool tuple) {
  auto l = std::make_shared<ListData>();
  l->items = std::move(items);
  l->is_tuple = tuple;
  return Value(std::move(l));
}
Value Value::MakeDict() { return Value(std::make_shared<DictData>()); }

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::kUndefined: case Value::kNone: return false;
    case Value::kBool: return v.as_bool();
    case Value::kInt: return v.as_int() != 0;
    case Value::kFloat: return v.as_float() != 0;
    case Value::kString: return !v.str().empty();
    case Value::kList: return !v.list()->items.empty();
    case Value::kDict: return v.dict()->is_namespace || !v.dict()->items.empty();
    default: return true;
  }
}

std::string TypeName(const Value& v) {
  switch (v.kind()) {
    case Value::kUndefined: return "Undefined";
    case Value::kNone: return "NoneType";
    case Value::kBool: return "bool";
    case Value::kInt: return "int";
    case Value::kFloat: return "float";
    case Value::kString: return "str";
    case Value::kList: return v.list()->is_tuple ? "tuple" : "list";
    case Value::kDict: return v.dict()->is_namespace ? "Namespace" : "dict";
    case Value::kCallable: return "function";
    case Value::kLoop: return "LoopContext";
  }
  return "object";
}

void ThrowNotAnInteger(const Value& v) { ThrowError("'" + TypeName(v) + "' object cannot be interpreted as an integer"); }

std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_dict() && v.dict()->is_namespace) return "jinja2.utils.Namespace object";
  if (v.is_undefined()) return "jinja2.runtime.Undefined object";
  if (v.kind() == Value::kLoop) return "jinja2.runtime.LoopContext object";
  if (v.is_callable()) return "jinja2.runtime.Macro object";
  return TypeName(v) + " object";
}

std::string UndefinedMessage(const UndefinedInfo* info) {
  if (!info) return "undefined value";
  if (!info->hint.empty()) return info->hint;
  if (!info->has_obj) return PyReprString(info->name) + " is undefined";
  if (!info->name_is_str) return info->obj_type + " has no element " + info->name;
  return PyReprString(info->obj_type) + " has no attribute " + PyReprString(info->name);
}

void ThrowUndefined(const Value& v) { ThrowError(UndefinedMessage(v.undefined_info())); }

namespace {
void ReprInto(const Value& v, std::string& out, Budget& budget);

void AppendText(std::string_view s, std::string& out, Budget& budget) {
  budget.ChargeBytes(s.size());
  budget.CheckString(out.size() + s.size());
  out.append(s);
}

// Checked after every item: a list can hold the same long string many times.
void SeqRepr(const Value& v, std::string& out, Budget& budget) {
  Budget::Nesting level(budget);
  const auto& l = *v.list();
  out += l.is_tuple ? '(' : '[';
  for (size_t i = 0; i < l.items.size(); ++i) {
    if (i) out += ", ";
    ReprInto(l.items[i], out, budget);
    budget.Charge(1);
    budget.CheckString(out.size());
  }
  if (l.is_tuple && l.items.size() == 1) out += ',';
  out += l.is_tuple ? ')' : ']';
}

void DictRepr(const Value& v, std::string& out, Budget& budget) {
  Budget::Nesting level(budget);
  out += '{';
  bool first = true;
  for (const auto& [k, val] : v.dict()->items) {
    if (!first) out += ", ";
    first = false;
    ReprInto(k, out, budget);
    out += ": ";
    ReprInto(val, out, budget);
    budget.Charge(1);
    budget.CheckString(out.size());
  }
  out += '}';
}

// Appends str(v).
void StrInto(const Value& v, std::string& out, Budget& budget) {
  switch (v.kind()) {
    case Value::kUndefined: return;
    case Value::kNone: out += "None"; return;
    case Value::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Value::kInt: out += std::to_string(v.as_int()); return;
    case Value::kFloat: out += PyFloatRepr(v.as_float()); return;
    case Value::kString: AppendText(v.str(), out, budget); return;
    case Value::kList: SeqRepr(v, out, budget); return;
    case Value::kDict:
      if (v.dict()->is_namespace) out += "<Namespace ";
      DictRepr(v, out, budget);
      if (v.dict()->is_namespace) out += ">";
      return;
    case Value::kCallable: out += "<function " + v.callable()->name + ">"; return;
    case Value::kLoop: out += "<LoopContext>"; return;
  }
}

void ReprInto(const Value& v, std::string& out, Budget& budget) {
  switch (v.kind()) {
    case Value::kString:
      budget.ChargeBytes(v.str().size());
      AppendText(PyReprString(v.str()), out, budget);
      return;
    case Value::kUndefined: out += "Undefined"; return;
    default: StrInto(v, out, budget);
  }
}
}  // namespace

std::string ToStr(const Value& v, Budget& budget) {
  if (v.is_string()) return v.str();
  std::string out;
  StrInto(v, out, budget);
  return out;
}

std::string Repr(const Value& v, Budget& budget) {
  std::string out;
  ReprInto(v, out, budget);
  return out;
}

bool Equals(const Value& a, const Value& b, Budget& budget) {
  if (a.is_string() && b.is_string()) {
    const std::string& x = a.str();
    const std::string& y = b.str();
    if (&x == &y) return true;  // one shared string
    if (x.size() != y.size()) return false;
    budget.ChargeBytes(x.size());
    return x == y;
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.number_value() == b.number_value();
    return a.int_value() == b.int_value();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::kUndefined: case Value::kNone: return true;
    case Value::kList: {
      const auto& x = *a.list();
      const auto& y = *b.list();
      if (&x == &y) return true;  // Python compares a container's items by identity first, too
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      Budget::Nesting level(budget);
      budget.Charge(x.items.size());
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!Equals(x.items[i], y.items[i], budget)) return false;
      return true;
    }
    case Value::kDict: {
      const auto& x = *a.dict();
      const auto& y = *b.dict();
      if (x.is_namespace || y.is_namespace || &x == &y) return &x == &y;
      if (x.items.size() != y.items.size()) return false;
      Budget::Nesting level(budget);
      for (const auto& [k, v] : x.items) {
        const Value* o = y.Find(k, budget);
        if (!o || !Equals(v, *o, budget)) return false;
      }
      return true;
    }
    case Value::kCallable: return a.callable() == b.callable();
    case Value::kLoop: return a.loop() == b.loop();
    default: return false;
  }
}

bool Less(const Value& a, const Value& b, Budget& budget, const char* op, bool swapped) {
  if (a.is_undefined()) ThrowUndefined(a);
  if (b.is_undefined()) ThrowUndefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.number_value() < b.number_value();
    return a.int_value() < b.int_value();
  }
  if (a.is_string() && b.is_string()) {
    budget.ChargeBytes(std::min(a.str().size(), b.str().size()));
    return a.str() < b.str();  // UTF-8 order == code point order
  }
  if (a.is_list() && b.is_list() && a.list()->is_tuple == b.list()->is_tuple) {
    Budget::Nesting level(budget);
    const auto& x = a.list()->items;
    const auto& y = b.list()->items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      budget.Charge(1);
      if (Equals(x[i], y[i], budget)) continue;
      return Less(x[i], y[i], budget, op, swapped);
    }
    return x.size() < y.size();
  }
  const Value& l = swapped ? b : a;
  const Value& r = swapped ? a : b;
  ThrowError(std::string("'") + op + "' not supported between instances of '" + TypeName(l) + "' and '" +
             TypeName(r) + "'");
}

bool LessOrEqual(const Value& a, const Value& b, Budget& budget, const char* op, bool swapped) {
  if (a.is_undefined()) ThrowUndefined(a);
  if (b.is_undefined()) ThrowUndefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.number_value() <= b.number_value();
    return a.int_value() <= b.int_value();
  }
  if (a.is_string() && b.is_string()) {
    budget.ChargeBytes(std::min(a.str().size(), b.str().size()));
    return a.str() <= b.str();
  }
  if (a.is_list() && b.is_list() && a.list()->is_tuple == b.list()->is_tuple)
    return Equals(a, b, budget) || Less(a, b, budget, op, swapped);
  Less(a, b, budget, op, swapped);  // raises the TypeError
  return false;
}

std::vector<Value> Iterate(const Value& v, Budget& budget) {
  switch (v.kind()) {
    case Value::kUndefined: return {};
    case Value::kList: budget.Charge(v.list()->items.size()); return v.list()->items;
    case Value::kDict: {
      if (v.dict()->is_namespace) break;
      budget.Charge(v.dict()->items.size());
      std::vector<Value> keys;
      keys.reserve(v.dict()->items.size());
      for (const auto& kv : v.dict()->items) keys.push_back(kv.first);
      return keys;
    }
    case Value::kString: {
      const std::string& s = v.str();
      budget.ChargeBytes(s.size());
      const size_t n = CodePointCount(s);
      budget.CheckItems(n);
      budget.Charge(n);
      std::vector<Value> chars;
      chars.reserve(n);
      for (size_t i = 0; i < s.size();) {
        size_t j = i + 1;
        while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
        chars.emplace_back(s.substr(i, j - i));
        i = j;
      }
      return chars;
    }
    default: break;
  }
  ThrowError("'" + TypeName(v) + "' object is not iterable");
}

int64_t Length(const Value& v, Budget& budget) {
  switch (v.kind()) {
    case Value::kUndefined: return 0;
    case Value::kString: budget.ChargeBytes(v.str().size()); return static_cast<int64_t>(CodePointCount(v.str()));
    case Value::kList: return static_cast<int64_t>(v.list()->items.size());
    case Value::kDict:
      if (!v.dict()->is_namespace) return static_cast<int64_t>(v.dict()->items.size());
      break;
    default: break;
  }
  ThrowError("object of type '" + TypeName(v) + "' has no len()");
}

bool Contains(const Value& c, const Value& item, Budget& budget) {
  switch (c.kind()) {
    case Value::kUndefined: return false;
    case Value::kString:
      if (!item.is_string())
        ThrowError("'in <string>' requires string as left operand, not " + TypeName(item));
      budget.ChargeBytes(c.str().size());
      return FindSubstring(c.str(), item.str()) != std::string_view::npos;
    case Value::kList:
      budget.Charge(c.list()->items.size());
      for (const auto& x : c.list()->items)
        if (Equals(x, item, budget)) return true;
      return false;
    case Value::kDict:
      if (c.dict()->is_namespace) break;
      if ((item.is_list() && !item.list()->is_tuple) || item.is_dict())
        ThrowError("unhashable type: '" + TypeName(item) + "'");
      return c.dict()->Find(item, budget) != nullptr;
    default: break;
  }
  ThrowError("argument of type '" + TypeName(c) + "' is not iterable");
}

namespace {
[[noreturn]] void BadOperands(const char* op, const Value& a, const Value& b) {
  if (a.is_undefined()) ThrowUndefined(a);
  if (b.is_undefined()) ThrowUndefined(b);
  ThrowError(std::string("unsupported operand type(s) for ") + op + ": '" + TypeName(a) + "' and '" +
             TypeName(b) + "'");
}
[[noreturn]] void Overflow() { ThrowError("integer overflow (kaon templates use 64-bit integers)"); }

// Sizes are checked before anything is built, so `'x' * 10**15` allocates nothing.
Value Repeat(const Value& seq, int64_t n, Budget& budget) {
  if (seq.is_string()) {
    if (n <= 0 || seq.str().empty()) return Value(std::string());
    const size_t times = static_cast<size_t>(n);
    budget.CheckRepeatedString(seq.str().size(), times);
    const size_t total = seq.str().size() * times;
    budget.ChargeBytes(total);
    std::string out;
    out.reserve(total);
    for (size_t i = 0; i < times; ++i) out += seq.str();
    return Value(std::move(out));
  }
  std::vector<Value> items;
  if (n > 0 && !seq.list()->items.empty()) {
    const size_t times = static_cast<size_t>(n);
    budget.CheckRepeatedItems(seq.list()->items.size(), times);
    budget.Charge(seq.list()->items.size() * times);
    items.reserve(seq.list()->items.size() * times);
    for (size_t i = 0; i < times; ++i)
      items.insert(items.end(), seq.list()->items.begin(), seq.list()->items.end());
  }
  return Value::MakeList(std::move(items), seq.list()->is_tuple);
}

double ToDouble(const Value& v) { return v.number_value(); }

std::string FormatPercent(const std::string& fmt, const Value& args, Budget& budget);
}  // namespace

void ChargeSize(const Value& v, Budget& budget) {
  switch (v.kind()) {
    case Value::kString: budget.ChargeBytes(v.str().size()); return;
    case Value::kList: budget.Charge(1 + v.list()->items.size()); return;
    case Value::kDict: budget.Charge(1 + v.dict()->items.size()); return;
    default: budget.Charge(1);
  }
}

void CheckSize(const Value& v, Budget& budget) {
  ChargeSize(v, budget);
  switch (v.kind()) {
    case Value::kString: budget.CheckString(v.str().size()); return;
    case Value::kList: budget.CheckItems(v.list()->items.size()); return;
    case Value::kDict: budget.CheckItems(v.dict()->items.size()); return;
    default: return;
  }
}

Value Add(const Value& a, const Value& b, Budget& budget) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value(ToDouble(a) + ToDouble(b));
    int64_t r;
    if (__builtin_add_overflow(a.int_value(), b.int_value(), &r)) Overflow();
    return Value(r);
  }
  if (a.is_string() && b.is_string()) {
    const size_t total = a.str().size() + b.str().size();
    budget.CheckString(total);
    budget.ChargeBytes(total);
    std::string out;
    out.reserve(total);
    out.append(a.str()).append(b.str());
    return Value(std::move(out));
  }
  if (a.is_list() && b.is_list() && a.list()->is_tuple == b.list()->is_tuple) {
    const size_t total = a.list()->items.size() + b.list()->items.size();
    budget.CheckItems(total);
    budget.Charge(total);
    std::vector<Value> items;
    items.reserve(total);
    items.insert(items.end(), a.list()->items.begin(), a.list()->items.end());
    items.insert(items.end(), b.list()->items.begin(), b.list()->items.end());
    return Value::MakeList(std::move(items), a.list()->is_tuple);
  }
  if ((a.is_string() || a.is_list()) && !b.is_undefined())
    ThrowError("can only concatenate " + TypeName(a) + " (not \"" + TypeName(b) + "\") to " + TypeName(a));
  BadOperands("+", a, b);
}

Value Sub(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value(ToDouble(a) - ToDouble(b));
    int64_t r;
    if (__builtin_sub_overflow(a.int_value(), b.int_value(), &r)) Overflow();
    return Value(r);
  }
  BadOperands("-", a, b);
}

Value Mul(const Value& a, const Value& b, Budget& budget) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value(ToDouble(a) * ToDouble(b));
    int64_t r;
    if (__builtin_mul_overflow(a.int_value(), b.int_value(), &r)) Overflow();
    return Value(r);
  }
  if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return Repeat(a, b.int_value(), budget);
  if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return Repeat(b, a.int_value(), budget);
  BadOperands("*", a, b);
}

Value Div(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (ToDouble(b) == 0) ThrowError(a.is_float() || b.is_float() ? "float division by zero" : "division by zero");
    return Value(ToDouble(a) / ToDouble(b));
  }
  BadOperands("/", a, b);
}

Value FloorDiv(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      if (ToDouble(b) == 0) ThrowError("float floor division by zero");
      double x = ToDouble(a), y = ToDouble(b);
      double m = std::fmod(x, y);
      double div = (x - m) / y;
      if (m != 0 && ((y < 0) != (m < 0))) div -= 1.0;
      double f = std::floor(div);
      if (div - f > 0.5) f += 1.0;
      return Value(div == 0 ? std::copysign(0.0, x / y) : f);
    }
    int64_t x = a.int_value(), y = b.int_value();
    if (y == 0) ThrowError("integer division or modulo by zero");
    if (x == std::numeric_limits<int64_t>::min() && y == -1) Overflow();
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
    return Value(q);
  }
  BadOperands("//", a, b);
}

Value Mod(const Value& a, const Value& b, Budget& budget) {
  if (a.is_string()) return Value(FormatPercent(a.str(), b, budget));
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = ToDouble(a), y = ToDouble(b);
      if (y == 0) ThrowError("float modulo");
      double m = std::fmod(x, y);
      if (m != 0) {
        if ((y < 0) != (m < 0)) m += y;
      } else {
        m = std::copysign(0.0, y);
      }
      return Value(m);
    }
    int64_t x = a.int_value(), y = b.int_value();
    if (y == 0) ThrowError("integer modulo by zero");
    if (y == -1) return Value(int64_t{0});
    int64_t m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value(m);
  }
  BadOperands("%", a, b);
}

Value Pow(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float() || b.int_value() < 0) {
      if (ToDouble(a) == 0 && ToDouble(b) < 0) ThrowError("0.0 cannot be raised to a negative power");
      return Value(std::pow(ToDouble(a), ToDouble(b)));
    }
    int64_t base = a.int_value(), e = b.int_value(), r = 1;
    while (e > 0) {
      if (e & 1)
        if (__builtin_mul_overflow(r, base, &r)) Overflow();
      e >>= 1;
      if (e > 0 && __builtin_mul_overflow(base, base, &base)) Overflow();
    }
    return Value(r);
  }
  BadOperands("** or pow()", a, b);
}

Value Negate(const Value& a) {
  if (a.is_float()) return Value(-a.as_float());
  if (a.is_int() || a.is_bool()) {
    if (a.int_value() == std::numeric_limits<int64_t>::min()) Overflow();
    return Value(-a.int_value());
  }
  if (a.is_undefined()) ThrowUndefined(a);
  ThrowError("bad operand type for unary -: '" + TypeName(a) + "'");
}

namespace {
bool NormalizeIndex(int64_t& i, int64_t n) {
  if (i < 0) i += n;
  return i >= 0 && i < n;
}

Value MissingItem(const Value& obj, const Value& key, Budget& budget) {
  UndefinedInfo info;
  info.has_obj = true;
  info.obj_type = ObjectTypeRepr(obj);
  info.name_is_str = key.is_string();
  info.name = key.is_string() ? key.str() : Repr(key, budget);
  return Value::Undefined(std::move(info));
}

std::string FormatPercent(const std::string& fmt, const Value& args, Budget& budget) {
  budget.ChargeBytes(fmt.size());
  std::vector<Value> list;
  if (args.is_list() && args.list()->is_tuple) list = args.list()->items;
  else list.push_back(args);
  // Python treats a lone non-tuple argument with __getitem__ as a mapping and does
  // not complain when the format never uses it.
  bool mapping_like = !(args.is_list() && args.list()->is_tuple) &&
                      (args.is_list() || args.is_dict() || args.is_undefined());
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) ThrowError("incomplete format");
    char c = fmt[i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (next >= list.size()) ThrowError("not enough arguments for format string");
    const Value& v = list[next++];
    if (c == 's') AppendText(ToStr(v, budget), out, budget);
    else if (c == 'r') AppendText(Repr(v, budget), out, budget);
    else if ((c == 'd' || c == 'i') && v.is_number()) out += std::to_string(v.is_float() ? static_cast<int64_t>(v.as_float()) : v.int_value());
    else if (c == 'f' && v.is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%f", v.number_value());
      out += buf;
    } else ThrowError(std::string("unsupported format character '") + c + "'");
  }
  if (next < list.size() && !mapping_like) ThrowError("not all arguments converted during string formatting");
  return out;
}
}  // namespace

Value GetItem(const Value& obj, const Value& key, Budget& budget) {
  if (obj.is_undefined()) ThrowUndefined(obj);
  if (obj.is_dict() && !obj.dict()->is_namespace) {
    if (const Value* v = obj.dict()->Find(key, budget)) return *v;
    return MissingItem(obj, key, budget);
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.int_value();
    if (obj.is_list()) {
      const auto& items = obj.list()->items;
      if (NormalizeIndex(i, static_cast<int64_t>(items.size()))) return items[i];
      return MissingItem(obj, key, budget);
    }
    budget.ChargeBytes(obj.str().size());  // finding the i-th code point reads the string
    if (IsAscii(obj.str())) {
      if (NormalizeIndex(i, static_cast<int64_t>(obj.str().size()))) return Value(obj.str().substr(i, 1));
    } else {
      std::u32string u = DecodeUtf8(obj.str());
      if (NormalizeIndex(i, static_cast<int64_t>(u.size()))) return Value(EncodeUtf8(u.substr(i, 1)));
    }
  }
  return MissingItem(obj, key, budget);
}

Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step, Budget& budget) {
  if (obj.is_undefined()) ThrowUndefined(obj);
  auto as_opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.is_int() || v.is_bool()) return v.int_value();
    ThrowError(std::string("slice ") + what + " must be integers or None");
  };
  std::optional<int64_t> b = as_opt(start, "indices"), e = as_opt(stop, "indices"), s = as_opt(step, "indices");
  int64_t st = s.value_or(1);
  if (st == 0) ThrowError("slice step cannot be zero");
  bool is_str = obj.is_string();
  // jinja2 compiles slices to a plain Python subscript, so failures raise.
  if (obj.is_dict() && !obj.dict()->is_namespace) ThrowError("unhashable type: 'slice'");
  if (!is_str && !obj.is_list()) ThrowError("'" + TypeName(obj) + "' object is not subscriptable");
  std::u32string u;
  if (is_str) {
    budget.ChargeBytes(obj.str().size());
    u = DecodeUtf8(obj.str());
  } else {
    budget.Charge(obj.list()->items.size());
  }
  int64_t n = is_str ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.list()->items.size());
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= n) {
      x = st < 0 ? n - 1 : n;
    }
    return x;
  };
  int64_t lo = clamp(b, st < 0 ? n - 1 : 0);
  int64_t hi = clamp(e, st < 0 ? -1 : n);
  // Charged per element: reversing a long string is one of the slowest things
  // a single expression can do.
  auto each = [&](auto take) {
    if (st > 0) {
      for (int64_t i = lo; i < hi; i += st) {
        budget.Charge(1);
        take(i);
      }
    } else {
      for (int64_t i = lo; i > hi; i += st) {
        budget.Charge(1);
        take(i);
      }
    }
  };
  if (is_str) {
    std::u32string r;
    each([&](int64_t i) { r.push_back(u[i]); });
    return Value(EncodeUtf8(r));
  }
  std::vector<Value> items;
  each([&](int64_t i) { items.push_back(obj.list()->items[i]); });
  return Value::MakeList(std::move(items), obj.list()->is_tuple);
}

}  // namespace kaon::jinja
