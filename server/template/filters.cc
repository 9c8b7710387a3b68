// jinja2's builtin filters (plus transformers' tojson) with their Python semantics.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include "server/template/interpreter.h"
#include "server/template/json_io.h"
#include "server/template/text.h"

namespace kaon::jinja {
namespace {

std::string SoftStr(Interpreter& in, const Value& v) { return v.is_string() ? v.str() : ToStr(v, in.budget()); }

// Most filters turn Undefined into "" via str(); only a few operate on it directly.
Value Tojson(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = Truthy(b.Or(0, Value(false)));
  Value indent = b.Or(1, Value::None());
  if (indent.is_int() || indent.is_bool()) {
    const size_t width = static_cast<size_t>(std::max<int64_t>(0, indent.int_value()));
    in.budget().CheckString(width);
    o.indent = std::string(width, ' ');
  } else if (indent.is_string()) {
    o.indent = indent.str();
  } else if (!indent.is_none()) {
    ThrowError("indent must be an int or a string");
  }
  if (o.indent) o.item_separator = ",";
  Value seps = b.Or(2, Value::None());
  if (!seps.is_none()) {
    std::vector<Value> p = Iterate(seps, in.budget());
    if (p.size() != 2 || !p[0].is_string() || !p[1].is_string()) ThrowError("separators must be a pair of strings");
    o.item_separator = p[0].str();
    o.key_separator = p[1].str();
  }
  o.sort_keys = Truthy(b.Or(3, Value(false)));
  return Value(DumpJson(v, o, in.budget()));
}

Value Trim(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "trim", {"chars"});
  std::optional<std::string> chars;
  if (b.Get(0) && !b.Get(0)->is_none()) chars = SoftStr(in, *b.Get(0));
  return Value(PyStrip(SoftStr(in, v), chars, true, true));
}

Value LengthF(Interpreter& in, const Value& v, CallArgs&) { return Value(Length(v, in.budget())); }
Value Upper(Interpreter& in, const Value& v, CallArgs&) { return Value(PyUpper(SoftStr(in, v))); }
Value Lower(Interpreter& in, const Value& v, CallArgs&) { return Value(PyLower(SoftStr(in, v))); }
Value Capitalize(Interpreter& in, const Value& v, CallArgs&) { return Value(PyCapitalize(SoftStr(in, v))); }

// jinja2's title: capitalise each run that follows '-', whitespace or an opening bracket.
Value Title(Interpreter& in, const Value& v, CallArgs&) {
  std::u32string u = DecodeUtf8(SoftStr(in, v));
  std::string out;
  bool start = true;
  for (char32_t c : u) {
    in.budget().Charge(1);
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || IsPySpace(c);
    if (sep) {
      AppendUtf8(c, out);
      start = true;
    } else if (start) {
      out += PyUpper(EncodeUtf8(std::u32string(1, c)));
      start = false;
    } else {
      AppendUtf8(ToLower(c), out);
    }
  }
  return Value(out);
}

Value Replace(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "replace", {"old", "new", "count"});
  if (!b.Get(0) || !b.Get(1)) ThrowError("replace() missing required argument");
  Value count = b.Or(2, Value::None());
  return Value(PyReplace(SoftStr(in, v), SoftStr(in, *b.Get(0)), SoftStr(in, *b.Get(1)),
                         count.is_none() ? -1 : count.int_value(), in.budget()));
}

Value Join(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "join", {"d", "attribute"});
  std::string sep = SoftStr(in, b.Or(0, Value("")));
  Value attr = b.Or(1, Value::None());
  std::string out;
  bool first = true;
  Budget& budget = in.budget();
  for (const Value& item : Iterate(v, budget)) {
    const std::string piece = SoftStr(in, attr.is_none() ? item : in.GetAttrPath(item, SoftStr(in, attr)));
    budget.ChargeBytes(sep.size() + piece.size());
    budget.CheckString(out.size() + sep.size() + piece.size());
    if (!first) out += sep;
    first = false;
    out += piece;
  }
  return Value(out);
}

Value First(Interpreter& in, const Value& v, CallArgs&) {
  std::vector<Value> items = Iterate(v, in.budget());
  if (items.empty()) return Value::UndefinedHint("No first item, sequence was empty.");
  return items.front();
}

Value Last(Interpreter& in, const Value& v, CallArgs&) {
  std::vector<Value> items = Iterate(v, in.budget());
  if (items.empty()) return Value::UndefinedHint("No last item, sequence was empty.");
  return items.back();
}

Value Default(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "default", {"default_value", "boolean"});
  bool boolean = Truthy(b.Or(1, Value(false)));
  if (v.is_undefined() || (boolean && !Truthy(v))) return b.Or(0, Value(""));
  return v;
}

Value Items(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::MakeList({});
  if (!v.is_dict() || v.dict()->is_namespace) ThrowError("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict()->items) out.push_back(Value::MakeList({k, val}, true));
  return Value::MakeList(std::move(out));
}

Value ListF(Interpreter& in, const Value& v, CallArgs&) { return Value::MakeList(Iterate(v, in.budget())); }

Value MapF(Interpreter& in, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  std::vector<Value> items = Iterate(v, in.budget());
  if (a.args.empty()) {
    const Value* attr = nullptr;
    const Value* def = nullptr;
    for (const auto& [k, val] : a.kwargs) {
      if (k == "attribute") attr = &val;
      else if (k == "default") def = &val;
      else ThrowError("Unexpected keyword argument '" + k + "'");
    }
    if (!attr) ThrowError("map requires a filter argument");
    for (const auto& item : items) {
      Value r = in.GetAttrPath(item, SoftStr(in, *attr));
      out.push_back(r.is_undefined() && def ? *def : r);
    }
    return Value::MakeList(std::move(out));
  }
  std::string name = SoftStr(in, a.args[0]);
  CallArgs rest;
  rest.args.assign(a.args.begin() + 1, a.args.end());
  rest.kwargs = a.kwargs;
  for (const auto& item : items) {
    CallArgs copy = rest;
    out.push_back(in.ApplyFilter(name, item, copy));
  }
  return Value::MakeList(std::move(out));
}

Value SelectReject(Interpreter& in, const Value& v, CallArgs& a, bool select, bool by_attr) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.args.empty()) ThrowError("Missing parameter for attribute name");
    attr = SoftStr(in, a.args[0]);
    first = 1;
  }
  std::string test;
  CallArgs targs;
  if (a.args.size() > first) {
    test = SoftStr(in, a.args[first]);
    targs.args.assign(a.args.begin() + first + 1, a.args.end());
    targs.kwargs = a.kwargs;
  }
  std::vector<Value> out;
  for (const auto& item : Iterate(v, in.budget())) {
    Value subject = by_attr ? in.GetAttrPath(item, attr) : item;
    bool ok;
    if (test.empty()) {
      ok = Truthy(subject);
    } else {
      CallArgs copy = targs;
      ok = in.ApplyTest(test, subject, copy);
    }
    if (ok == select) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}
Value Select(Interpreter& in, const Value& v, CallArgs& a) { return SelectReject(in, v, a, true, false); }
Value Reject(Interpreter& in, const Value& v, CallArgs& a) { return SelectReject(in, v, a, false, false); }
Value SelectAttr(Interpreter& in, const Value& v, CallArgs& a) { return SelectReject(in, v, a, true, true); }
Value RejectAttr(Interpreter& in, const Value& v, CallArgs& a) { return SelectReject(in, v, a, false, true); }

Value IgnoreCase(const Value& v, Budget& budget) {
  if (!v.is_string()) return v;
  budget.ChargeBytes(v.str().size());
  return Value(PyLower(v.str()));
}

Value Unique(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "unique", {"case_sensitive", "attribute"});
  bool cs = Truthy(b.Or(0, Value(false)));
  Value attr = b.Or(1, Value::None());
  std::vector<Value> seen, out;
  for (const auto& item : Iterate(v, in.budget())) {
    Value key = attr.is_none() ? item : in.GetAttrPath(item, SoftStr(in, attr));
    if (!cs) key = IgnoreCase(key, in.budget());
    bool dup = false;
    in.budget().Charge(seen.size());
    for (const auto& s : seen)
      if (Equals(s, key, in.budget())) dup = true;
    if (dup) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

Value StringF(Interpreter& in, const Value& v, CallArgs&) { return Value(SoftStr(in, v)); }

// Python's float() of a string: surrounding whitespace, inf/nan, underscores between digits.
bool ParsePyFloat(const std::string& s, double& out) {
  std::string t = PyStrip(s, std::nullopt, true, true);
  if (t.empty()) return false;
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (i == 0 || i + 1 == t.size() || !std::isdigit(static_cast<unsigned char>(t[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(t[i + 1])))
        return false;
      continue;
    }
    clean.push_back(t[i]);
  }
  std::string low = PyLower(clean);
  std::string_view body = low;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    out = body == "nan" ? NAN : (low[0] == '-' ? -INFINITY : INFINITY);
    return true;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string_view::npos || body.find("0x") != std::string_view::npos)
    return false;
  char* end = nullptr;
  out = std::strtod(clean.c_str(), &end);
  return end && *end == '\0';
}

bool ParsePyInt(const std::string& s, int base, int64_t& out) {
  std::string t = PyStrip(s, std::nullopt, true, true);
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] != '_' || (i > 0 && i + 1 < t.size())) clean.push_back(t[i]);
    else return false;
  if (clean.empty()) return false;
  size_t start = (clean[0] == '+' || clean[0] == '-') ? 1 : 0;
  // Python accepts the base's own prefix: int('0x1A', 16).
  if (clean.size() > start + 2 && clean[start] == '0') {
    char p = static_cast<char>(std::tolower(clean[start + 1]));
    if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) clean.erase(start, 2);
  }
  if (start >= clean.size()) return false;
  for (size_t i = start; i < clean.size(); ++i) {
    char c = static_cast<char>(std::tolower(clean[i]));
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99;
    if (d >= base) return false;
  }
  errno = 0;
  out = std::strtoll(clean.c_str(), nullptr, base);
  return errno != ERANGE;
}

Value IntF(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "int", {"default", "base"});
  Value def = b.Or(0, Value(int64_t{0}));
  int base = static_cast<int>(b.Or(1, Value(int64_t{10})).int_value());
  if (v.is_undefined()) ThrowUndefined(v);  // int(Undefined) raises in jinja2
  if (v.is_int() || v.is_bool()) return Value(v.int_value());
  if (v.is_float()) {
    if (!std::isfinite(v.as_float())) ThrowError("cannot convert float infinity or NaN to integer");
    return Value(static_cast<int64_t>(v.as_float()));
  }
  if (v.is_string()) {
    int64_t i;
    if (ParsePyInt(v.str(), base, i)) return Value(i);
    double d;
    if (ParsePyFloat(v.str(), d)) {
      if (!std::isfinite(d)) ThrowError("cannot convert float infinity or NaN to integer");
      return Value(static_cast<int64_t>(d));
    }
  }
  return def;
}

Value FloatF(Interpreter&, const Value& v, CallArgs& a) {
  ArgBinder b(a, "float", {"default"});
  if (v.is_undefined()) ThrowUndefined(v);
  if (v.is_number()) return Value(v.number_value());
  double d;
  if (v.is_string() && ParsePyFloat(v.str(), d)) return Value(d);
  return b.Or(0, Value(0.0));
}

Value Abs(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) return Value(v.int_value() < 0 ? -v.int_value() : v.int_value());
  if (v.is_undefined()) ThrowUndefined(v);
  ThrowError("bad operand type for abs(): '" + TypeName(v) + "'");
}

Value Round(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "round", {"precision", "method"});
  int64_t prec = b.Or(0, Value(int64_t{0})).int_value();
  std::string method = SoftStr(in, b.Or(1, Value("common")));
  if (method != "common" && method != "ceil" && method != "floor")
    ThrowError("method must be 'common', 'ceil' or 'floor'");
  if (!v.is_number()) {
    if (v.is_undefined()) ThrowUndefined(v);
    ThrowError("type " + TypeName(v) + " doesn't define __round__ method");
  }
  if (method == "common") {
    if (!v.is_float()) return Value(v.int_value());  // round(int, n) stays an int for n >= 0
    double x = v.as_float();
    if (!std::isfinite(x)) return Value(x);
    // Correctly rounded decimal formatting rounds half to even on the exact binary
    // value, which is what Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::clamp<int64_t>(prec, 0, 300)), x);
    double r = std::strtod(buf, nullptr);
    if (prec < 0) {
      double p = std::pow(10.0, static_cast<double>(-prec));
      r = std::nearbyint(x / p) * p;
    }
    return Value(r);
  }
  double p = std::pow(10.0, static_cast<double>(prec));
  double x = v.number_value() * p;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value Indent(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "indent", {"width", "first", "blank"});
  Value width = b.Or(0, Value(int64_t{4}));
  Budget& budget = in.budget();
  if (!width.is_string()) budget.CheckString(static_cast<size_t>(std::max<int64_t>(0, width.int_value())));
  std::string ind = width.is_string() ? width.str() : std::string(static_cast<size_t>(std::max<int64_t>(0, width.int_value())), ' ');
  bool first = Truthy(b.Or(1, Value(false)));
  bool blank = Truthy(b.Or(2, Value(false)));
  // jinja2 appends "\n" to the value before splitting, which only strings survive.
  if (v.is_undefined()) ThrowUndefined(v);
  if (v.is_list()) ThrowError("'" + TypeName(v) + "' object has no attribute 'splitlines'");
  if (!v.is_string()) ThrowError("unsupported operand type(s) for +=: '" + TypeName(v) + "' and 'str'");
  std::string s = v.str() + "\n";
  std::vector<std::string> lines = PySplitlines(s, false, budget);
  std::string rv;
  // Every line gets the indent: check as the text grows.
  auto add = [&](const std::string& piece) {
    budget.ChargeBytes(piece.size());
    budget.CheckString(rv.size() + piece.size());
    rv += piece;
  };
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) add((i ? "\n" + ind : "") + lines[i]);
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) add("\n" + (lines[i].empty() ? "" : ind) + lines[i]);
  }
  budget.CheckString(rv.size() + (first ? ind.size() : 0));
  if (first) rv = ind + rv;
  return Value(rv);
}

Value Safe(Interpreter& in, const Value& v, CallArgs&) { return Value(SoftStr(in, v)); }

Value Escape(Interpreter& in, const Value& v, CallArgs&) {
  std::string out;
  for (char c : SoftStr(in, v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return Value(out);
}

void StableSort(std::vector<Value>& items, const std::vector<Value>& keys, bool reverse, Budget& budget) {
  std::vector<size_t> idx(items.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
    budget.Charge(1);
    return reverse ? Less(keys[y], keys[x], budget) : Less(keys[x], keys[y], budget);
  });
  std::vector<Value> sorted;
  sorted.reserve(items.size());
  for (size_t i : idx) sorted.push_back(items[i]);
  items = std::move(sorted);
}

Value DictSort(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "dictsort", {"case_sensitive", "by", "reverse"});
  bool cs = Truthy(b.Or(0, Value(false)));
  std::string by = SoftStr(in, b.Or(1, Value("key")));
  if (by != "key" && by != "value") ThrowError("You can only sort by either \"key\" or \"value\"");
  bool reverse = Truthy(b.Or(2, Value(false)));
  if (!v.is_dict() || v.dict()->is_namespace) ThrowError("dictsort expects a mapping");
  std::vector<Value> items, keys;
  for (const auto& [k, val] : v.dict()->items) {
    items.push_back(Value::MakeList({k, val}, true));
    Value key = by == "key" ? k : val;
    keys.push_back(cs ? key : IgnoreCase(key, in.budget()));
  }
  StableSort(items, keys, reverse, in.budget());
  return Value::MakeList(std::move(items));
}

Value Sort(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = Truthy(b.Or(0, Value(false)));
  bool cs = Truthy(b.Or(1, Value(false)));
  Value attr = b.Or(2, Value::None());
  std::vector<Value> items = Iterate(v, in.budget()), keys;
  for (const auto& item : items) {
    Value key = attr.is_none() ? item : in.GetAttrPath(item, SoftStr(in, attr));
    keys.push_back(cs ? key : IgnoreCase(key, in.budget()));
  }
  StableSort(items, keys, reverse, in.budget());
  return Value::MakeList(std::move(items));
}

Value Batch(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "batch", {"linecount", "fill_with"});
  if (!b.Get(0)) ThrowError("batch() missing required argument 'linecount'");
  int64_t n = b.Get(0)->int_value();
  if (n <= 0) ThrowError("batch size must be positive");
  const Value* fill = b.Get(1);
  std::vector<Value> out, cur;
  for (const auto& item : Iterate(v, in.budget())) {
    cur.push_back(item);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::MakeList(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none()) {
      in.budget().CheckItems(static_cast<size_t>(n));
      in.budget().Charge(static_cast<size_t>(n));
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
    }
    out.push_back(Value::MakeList(std::move(cur)));
  }
  return Value::MakeList(std::move(out));
}

Value WordCount(Interpreter& in, const Value& v, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : DecodeUtf8(SoftStr(in, v))) {
    in.budget().Charge(1);
    bool w = IsAlnum(c) || c == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value Reverse(Interpreter& in, const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::u32string u = DecodeUtf8(v.str());
    std::reverse(u.begin(), u.end());
    return Value(EncodeUtf8(u));
  }
  std::vector<Value> items = Iterate(v, in.budget());
  std::reverse(items.begin(), items.end());
  return Value::MakeList(std::move(items));
}

Value Sum(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "sum", {"attribute", "start"});
  Value attr = b.Or(0, Value::None());
  Value total = b.Or(1, Value(int64_t{0}));
  for (const auto& item : Iterate(v, in.budget()))
    total = Add(total, attr.is_none() ? item : in.GetAttrPath(item, SoftStr(in, attr)), in.budget());
  return total;
}

Value MinMax(Interpreter& in, const Value& v, CallArgs& a, bool max) {
  ArgBinder b(a, max ? "max" : "min", {"case_sensitive", "attribute"});
  bool cs = Truthy(b.Or(0, Value(false)));
  Value attr = b.Or(1, Value::None());
  std::vector<Value> items = Iterate(v, in.budget());
  if (items.empty()) return Value::UndefinedHint(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  auto key = [&](size_t i) {
    Value k = attr.is_none() ? items[i] : in.GetAttrPath(items[i], SoftStr(in, attr));
    return cs ? k : IgnoreCase(k, in.budget());
  };
  for (size_t i = 1; i < items.size(); ++i)
    if (max ? Less(key(best), key(i), in.budget()) : Less(key(i), key(best), in.budget())) best = i;
  return items[best];
}
Value Min(Interpreter& in, const Value& v, CallArgs& a) { return MinMax(in, v, a, false); }
Value Max(Interpreter& in, const Value& v, CallArgs& a) { return MinMax(in, v, a, true); }

Value Attr(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "attr", {"name"});
  if (!b.Get(0)) ThrowError("attr() missing required argument 'name'");
  return in.GetAttr(v, SoftStr(in, *b.Get(0)));
}

Value Center(Interpreter& in, const Value& v, CallArgs& a) {
  ArgBinder b(a, "center", {"width"});
  std::string s = SoftStr(in, v);
  int64_t width = b.Or(0, Value(int64_t{80})).int_value();
  int64_t len = static_cast<int64_t>(CodePointCount(s));
  if (width <= len) return Value(s);
  int64_t pad = width - len;
  in.budget().CheckString(s.size() + static_cast<size_t>(pad));
  int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(left, ' ') + s + std::string(pad - left, ' '));
}

Value Format(Interpreter& in, const Value& v, CallArgs& a) {
  Value args = Value::MakeList(a.args, true);
  return Mod(Value(SoftStr(in, v)), args, in.budget());
}

const std::unordered_map<std::string_view, FilterFn>& Filters() {
  static const auto* m = new std::unordered_map<std::string_view, FilterFn>{
      {"tojson", Tojson}, {"trim", Trim}, {"length", LengthF}, {"count", LengthF}, {"upper", Upper},
      {"lower", Lower}, {"title", Title}, {"capitalize", Capitalize}, {"replace", Replace}, {"join", Join},
      {"first", First}, {"last", Last}, {"default", Default}, {"d", Default}, {"items", Items},
      {"list", ListF}, {"map", MapF}, {"select", Select}, {"reject", Reject}, {"selectattr", SelectAttr},
      {"rejectattr", RejectAttr}, {"unique", Unique}, {"string", StringF}, {"int", IntF}, {"float", FloatF},
      {"abs", Abs}, {"round", Round}, {"indent", Indent}, {"safe", Safe}, {"e", Escape}, {"escape", Escape},
      {"dictsort", DictSort}, {"sort", Sort}, {"batch", Batch}, {"wordcount", WordCount},
      {"reverse", Reverse}, {"sum", Sum}, {"min", Min}, {"max", Max}, {"attr", Attr}, {"center", Center},
      {"format", Format},
  };
  return *m;
}

}  // namespace

FilterFn FindFilter(std::string_view name) {
  auto it = Filters().find(name);
  return it == Filters().end() ? nullptr : it->second;
}

}  // namespace kaon::jinja
