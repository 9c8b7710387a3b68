// Global functions transformers exposes to chat templates, and argument binding
// for builtins.
#include <ctime>
#include <string_view>
#include <unordered_map>

#include "server/template/interpreter.h"

namespace kaon::jinja {

ArgBinder::ArgBinder(const CallArgs& args, const char* func, std::initializer_list<const char*> names) {
  std::vector<const char*> n(names);
  bound_.assign(n.size(), nullptr);
  if (args.args.size() > n.size())
    ThrowError(std::string(func) + "() takes at most " + std::to_string(n.size()) + " argument(s) (" +
               std::to_string(args.args.size()) + " given)");
  for (size_t i = 0; i < args.args.size(); ++i) bound_[i] = &args.args[i];
  for (const auto& [k, v] : args.kwargs) {
    size_t i = 0;
    while (i < n.size() && k != n[i]) ++i;
    if (i == n.size()) ThrowError(std::string(func) + "() got an unexpected keyword argument '" + k + "'");
    if (bound_[i]) ThrowError(std::string(func) + "() got multiple values for argument '" + k + "'");
    bound_[i] = &v;
  }
}

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2's sandbox MAX_RANGE

Value Range(Interpreter&, CallArgs& a) {
  if (!a.kwargs.empty()) ThrowError("range() takes no keyword arguments");
  if (a.args.empty() || a.args.size() > 3)
    ThrowError("range expected at least 1 argument, got " + std::to_string(a.args.size()));
  for (const auto& v : a.args)
    if (!v.is_int() && !v.is_bool())
      ThrowError("'" + TypeName(v) + "' object cannot be interpreted as an integer");
  int64_t start = 0, stop, step = 1;
  if (a.args.size() == 1) {
    stop = a.args[0].int_value();
  } else {
    start = a.args[0].int_value();
    stop = a.args[1].int_value();
    if (a.args.size() == 3) step = a.args[2].int_value();
  }
  if (step == 0) ThrowError("range() arg 3 must not be zero");
  int64_t n = 0;
  if (step > 0 && stop > start) n = (stop - start + step - 1) / step;
  if (step < 0 && stop < start) n = (start - stop - step - 1) / -step;
  if (n > kMaxRange)
    ThrowError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + std::to_string(kMaxRange) + ").");
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) items.emplace_back(start + i * step);
  return Value::MakeList(std::move(items));
}

void FillDict(DictData& d, CallArgs& a, const char* func, Budget& budget) {
  if (a.args.size() > 1) ThrowError(std::string(func) + " expected at most 1 argument, got " + std::to_string(a.args.size()));
  if (!a.args.empty()) {
    const Value& src = a.args[0];
    if (src.is_dict() && !src.dict()->is_namespace) {
      for (const auto& [k, v] : src.dict()->items) d.Set(k, v, budget);
    } else {
      for (const auto& pair : Iterate(src, budget)) {
        std::vector<Value> kv = Iterate(pair, budget);
        if (kv.size() != 2) ThrowError("dictionary update sequence element has wrong length");
        d.Set(kv[0], kv[1], budget);
      }
    }
  }
  for (const auto& [k, v] : a.kwargs) d.Set(Value(k), v, budget);
}

Value Dict(Interpreter& in, CallArgs& a) {
  auto d = std::make_shared<DictData>();
  FillDict(*d, a, "dict", in.budget());
  return Value(std::move(d));
}

Value Namespace(Interpreter& in, CallArgs& a) {
  auto d = std::make_shared<DictData>();
  d->is_namespace = true;
  in.AdoptNamespace(d);
  FillDict(*d, a, "namespace", in.budget());
  return Value(std::move(d));
}

Value RaiseException(Interpreter& in, CallArgs& a) {
  std::string msg = a.args.empty() ? "" : ToStr(a.args[0], in.budget());
  throw TemplateError(absl::StatusCode::kInvalidArgument, msg, /*verbatim=*/true);
}

Value StrftimeNow(Interpreter& in, CallArgs& a) {
  if (a.args.size() != 1 || !a.args[0].is_string()) ThrowError("strftime_now() takes one format string");
  std::time_t t = in.Now();
  std::tm tm{};
  // A fixed clock (tests, reproducible renders) is read as UTC; the real clock
  // as local time, like Python's datetime.now().
  if (in.now_fixed()) gmtime_r(&t, &tm);
  else localtime_r(&t, &tm);
  char buf[512];
  size_t n = std::strftime(buf, sizeof(buf), a.args[0].str().c_str(), &tm);
  return Value(std::string(buf, n));
}

const std::unordered_map<std::string_view, Value>& Globals() {
  static const auto* m = [] {
    auto* g = new std::unordered_map<std::string_view, Value>;
    auto add = [&](const char* name, Value (*fn)(Interpreter&, CallArgs&)) {
      auto c = std::make_shared<Callable>();
      c->name = name;
      c->fn = fn;
      g->emplace(name, Value(std::move(c)));
    };
    add("range", Range);
    add("dict", Dict);
    add("namespace", Namespace);
    add("raise_exception", RaiseException);
    add("strftime_now", StrftimeNow);
    return g;
  }();
  return *m;
}

}  // namespace

const Value* FindGlobal(std::string_view name) {
  auto it = Globals().find(name);
  return it == Globals().end() ? nullptr : &it->second;
}

}  // namespace kaon::jinja
