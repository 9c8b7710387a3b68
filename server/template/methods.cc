// Python methods of str, list and dict that templates call (`s.strip()`,
// `d.items()`, ...). Mutating methods exist but are refused, as in jinja2's
// ImmutableSandboxedEnvironment.
#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "server/template/interpreter.h"
#include "server/template/text.h"

namespace kaon::jinja {
namespace {

const std::unordered_set<std::string_view> kStrMethods = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
    "replace", "title", "capitalize", "find", "rfind", "index", "rindex", "count", "join", "isdigit", "isalpha",
    "isalnum", "isspace", "islower", "isupper", "isnumeric", "isdecimal", "ljust", "rjust", "center", "zfill",
    "partition", "rpartition", "swapcase", "casefold", "removeprefix", "removesuffix", "format", "encode",
    "expandtabs", "istitle", "isidentifier", "isprintable", "isascii", "format_map", "translate", "maketrans"};
const std::unordered_set<std::string_view> kListMethods = {"append", "clear", "copy", "count", "extend", "index",
                                                           "insert", "pop", "remove", "reverse", "sort"};
const std::unordered_set<std::string_view> kDictMethods = {"clear", "copy", "fromkeys", "get", "items", "keys",
                                                           "pop", "popitem", "setdefault", "update", "values"};
const std::unordered_set<std::string_view> kUnsafe = {"append", "clear", "extend", "insert", "pop", "remove",
                                                      "reverse", "sort", "popitem", "setdefault", "update"};

const std::string& StrArg(const Value& v, const char* method) {
  if (!v.is_string())
    ThrowError(std::string(method) + "() argument must be str, not " + TypeName(v));
  return v.str();
}

std::optional<std::string> OptChars(const CallArgs& a, const char* method) {
  if (a.args.empty() || a.args[0].is_none()) return std::nullopt;
  return StrArg(a.args[0], method);
}

bool PrefixMatch(const Value& s, const Value& arg, bool suffix, const char* method) {
  auto one = [&](const Value& p) {
    const std::string& x = StrArg(p, method);
    const std::string& str = s.str();
    if (x.size() > str.size()) return false;
    return suffix ? str.compare(str.size() - x.size(), x.size(), x) == 0 : str.compare(0, x.size(), x) == 0;
  };
  if (arg.is_list() && arg.list()->is_tuple) {
    for (const auto& p : arg.list()->items)
      if (one(p)) return true;
    return false;
  }
  if (!arg.is_string())
    ThrowError(std::string(method) + " first arg must be str or a tuple of str, not " + TypeName(arg));
  return one(arg);
}

bool AllChars(const std::string& s, bool (*pred)(char32_t)) {
  if (s.empty()) return false;
  for (char32_t c : DecodeUtf8(s))
    if (!pred(c)) return false;
  return true;
}

Value StrMethod(const Value& self, const std::string& name, CallArgs& a, Budget& budget) {
  const std::string& s = self.str();
  auto arg = [&](size_t i) -> const Value* { return i < a.args.size() ? &a.args[i] : nullptr; };
  auto kw = [&](const char* k) -> const Value* {
    for (const auto& [key, v] : a.kwargs)
      if (key == k) return &v;
    return nullptr;
  };
  if (name == "strip") return Value(PyStrip(s, OptChars(a, "strip"), true, true));
  if (name == "lstrip") return Value(PyStrip(s, OptChars(a, "lstrip"), true, false));
  if (name == "rstrip") return Value(PyStrip(s, OptChars(a, "rstrip"), false, true));
  if (name == "split" || name == "rsplit") {
    const Value* sep = arg(0) ? arg(0) : kw("sep");
    const Value* maxsplit = arg(1) ? arg(1) : kw("maxsplit");
    std::optional<std::string> sp;
    if (sep && !sep->is_none()) {
      sp = StrArg(*sep, name.c_str());
      if (sp->empty()) ThrowError("empty separator");
    }
    long m = maxsplit ? static_cast<long>(maxsplit->int_value()) : -1;
    std::vector<std::string> parts = name == "split" ? PySplit(s, sp, m, budget) : PyRSplit(s, sp, m, budget);
    std::vector<Value> out(parts.begin(), parts.end());
    return Value::MakeList(std::move(out));
  }
  if (name == "splitlines") {
    const Value* keep = arg(0) ? arg(0) : kw("keepends");
    std::vector<std::string> parts = PySplitlines(s, keep && Truthy(*keep), budget);
    return Value::MakeList(std::vector<Value>(parts.begin(), parts.end()));
  }
  if (name == "startswith" || name == "endswith") {
    if (!arg(0)) ThrowError(name + "() takes at least 1 argument (0 given)");
    return Value(PrefixMatch(self, *arg(0), name == "endswith", name.c_str()));
  }
  if (name == "upper") return Value(PyUpper(s));
  if (name == "lower" || name == "casefold") return Value(PyLower(s));
  if (name == "title") return Value(PyTitle(s));
  if (name == "capitalize") return Value(PyCapitalize(s));
  if (name == "swapcase") {
    std::string out;
    for (char32_t c : DecodeUtf8(s)) AppendUtf8(ToUpper(c) != c ? ToUpper(c) : ToLower(c), out);
    return Value(out);
  }
  if (name == "replace") {
    if (!arg(0) || !arg(1)) ThrowError("replace() takes at least 2 arguments");
    long count = arg(2) ? static_cast<long>(arg(2)->int_value()) : -1;
    return Value(PyReplace(s, StrArg(*arg(0), "replace"), StrArg(*arg(1), "replace"), count, budget));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    if (!arg(0)) ThrowError(name + "() takes at least 1 argument (0 given)");
    long r = PyFind(s, StrArg(*arg(0), name.c_str()), name[0] == 'r');
    if (r < 0 && (name == "index" || name == "rindex")) ThrowError("substring not found");
    return Value(static_cast<int64_t>(r));
  }
  if (name == "count") {
    if (!arg(0)) ThrowError("count() takes at least 1 argument (0 given)");
    return Value(static_cast<int64_t>(PyCount(s, StrArg(*arg(0), "count"))));
  }
  if (name == "join") {
    if (!arg(0)) ThrowError("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    size_t index = 0;
    for (const auto& item : Iterate(*arg(0), budget)) {
      if (!item.is_string())
        ThrowError("sequence item " + std::to_string(index) + ": expected str instance, " + TypeName(item) +
                   " found");
      ++index;
      const size_t sep = first ? 0 : s.size();
      budget.ChargeBytes(sep + item.str().size());
      budget.CheckString(out.size() + sep + item.str().size());
      if (!first) out += s;
      first = false;
      out += item.str();
    }
    return Value(out);
  }
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") return Value(AllChars(s, IsDigit));
  if (name == "isalpha") return Value(AllChars(s, IsAlpha));
  if (name == "isalnum") return Value(AllChars(s, IsAlnum));
  if (name == "isspace") return Value(AllChars(s, IsPySpace));
  if (name == "isascii") return Value(IsAscii(s));
  if (name == "islower") return Value(PyLower(s) == s && PyUpper(s) != s);
  if (name == "isupper") return Value(PyUpper(s) == s && PyLower(s) != s);
  if (name == "ljust" || name == "rjust" || name == "center" || name == "zfill") {
    if (!arg(0)) ThrowError(name + "() takes at least 1 argument (0 given)");
    int64_t width = arg(0)->int_value();
    std::string fill = arg(1) ? StrArg(*arg(1), name.c_str()) : " ";
    if (name == "zfill") fill = "0";
    int64_t len = static_cast<int64_t>(CodePointCount(s));
    if (width <= len) return Value(s);
    budget.CheckRepeatedString(fill.size(), static_cast<size_t>(width));
    int64_t pad = width - len;
    auto rep = [&](int64_t n) {
      std::string r;
      for (int64_t i = 0; i < n; ++i) r += fill;
      return r;
    };
    if (name == "ljust") return Value(s + rep(pad));
    if (name == "rjust") return Value(rep(pad) + s);
    if (name == "zfill") {
      if (!s.empty() && (s[0] == '-' || s[0] == '+')) return Value(s.substr(0, 1) + rep(pad) + s.substr(1));
      return Value(rep(pad) + s);
    }
    int64_t left = pad / 2 + (pad & width & 1);
    return Value(rep(left) + s + rep(pad - left));
  }
  if (name == "partition" || name == "rpartition") {
    if (!arg(0)) ThrowError(name + "() takes exactly one argument (0 given)");
    const std::string& sep = StrArg(*arg(0), name.c_str());
    if (sep.empty()) ThrowError("empty separator");
    size_t f = name == "partition" ? FindSubstring(s, sep) : RFindSubstring(s, sep);
    if (f == std::string::npos)
      return name == "partition" ? Value::MakeList({Value(s), Value(""), Value("")}, true)
                                 : Value::MakeList({Value(""), Value(""), Value(s)}, true);
    return Value::MakeList({Value(s.substr(0, f)), Value(sep), Value(s.substr(f + sep.size()))}, true);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    if (!arg(0)) ThrowError(name + "() takes exactly one argument (0 given)");
    const std::string& p = StrArg(*arg(0), name.c_str());
    if (name == "removeprefix") return Value(s.compare(0, p.size(), p) == 0 ? s.substr(p.size()) : s);
    if (p.size() <= s.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)
      return Value(s.substr(0, s.size() - p.size()));
    return Value(s);
  }
  ThrowError("str." + name + "() is not supported by kaon's template engine");
}

Value ListMethod(const Value& self, const std::string& name, CallArgs& a, Budget& budget) {
  const auto& items = self.list()->items;
  if (name == "count") {
    if (a.args.empty()) ThrowError("count() takes exactly one argument (0 given)");
    int64_t n = 0;
    for (const auto& x : items) n += Equals(x, a.args[0], budget);
    return Value(n);
  }
  if (name == "index") {
    if (a.args.empty()) ThrowError("index expected at least 1 argument, got 0");
    for (size_t i = 0; i < items.size(); ++i)
      if (Equals(items[i], a.args[0], budget)) return Value(static_cast<int64_t>(i));
    ThrowError(Repr(a.args[0], budget) + " is not in list");
  }
  if (name == "copy") return Value::MakeList(items);
  ThrowError("list." + name + "() is not supported by kaon's template engine");
}

Value DictMethod(const Value& self, const std::string& name, CallArgs& a, Budget& budget) {
  const auto& d = *self.dict();
  if (name == "items") {
    std::vector<Value> out;
    out.reserve(d.items.size());
    for (const auto& [k, v] : d.items) out.push_back(Value::MakeList({k, v}, true));
    return Value::MakeList(std::move(out));
  }
  if (name == "keys" || name == "values") {
    std::vector<Value> out;
    out.reserve(d.items.size());
    for (const auto& [k, v] : d.items) out.push_back(name == "keys" ? k : v);
    return Value::MakeList(std::move(out));
  }
  if (name == "get") {
    if (a.args.empty()) ThrowError("get expected at least 1 argument, got 0");
    if (const Value* v = d.Find(a.args[0], budget)) return *v;
    return a.args.size() > 1 ? a.args[1] : Value::None();
  }
  if (name == "copy") {
    auto c = std::make_shared<DictData>(d);
    return Value(std::move(c));
  }
  ThrowError("dict." + name + "() is not supported by kaon's template engine");
}

}  // namespace

bool HasMethod(const Value& self, std::string_view name) {
  if (self.is_string()) return kStrMethods.count(name) > 0;
  if (self.is_list()) return kListMethods.count(name) > 0 && !(self.list()->is_tuple && name != "count" && name != "index");
  if (self.is_dict() && !self.dict()->is_namespace) return kDictMethods.count(name) > 0;
  return false;
}

bool IsUnsafeMethod(const Value& self, std::string_view name) {
  return (self.is_list() || self.is_dict()) && kUnsafe.count(name) > 0;
}

// Like filters: charged for the size of `self`, the result checked against the caps.
Value CallMethod(Interpreter& in, const Value& self, const std::string& name, CallArgs& args) {
  if (IsUnsafeMethod(self, name))
    throw TemplateError(absl::StatusCode::kInvalidArgument,
                        "access to attribute '" + name + "' of '" + TypeName(self) + "' object is unsafe.");
  Budget& budget = in.budget();
  ChargeSize(self, budget);
  Value result = self.is_string() ? StrMethod(self, name, args, budget)
                 : self.is_list() ? ListMethod(self, name, args, budget)
                                  : DictMethod(self, name, args, budget);
  CheckSize(result, budget);
  return result;
}

}  // namespace kaon::jinja
