#include "server/template/interpreter.h"

#include <exception>

#include "server/template/lexer.h"
#include "server/template/text.h"

namespace kaon::jinja {

const Value* Scope::Find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::Set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

Interpreter::~Interpreter() {
  for (auto& s : macro_scopes_) s->vars.clear();
  for (auto& ns : namespaces_) ns->items.clear();
}

std::time_t Interpreter::Now() const { return now_ ? *now_ : std::time(nullptr); }

void Interpreter::Append(std::string& out, std::string_view s) {
  budget_.ChargeBytes(s.size());
  budget_.CheckString(out.size() + s.size());
  out.append(s);
}

Interpreter::CallGuard::CallGuard(Interpreter& interp) : in(interp) {
  if (in.call_depth_ >= in.limits().max_call_depth)
    ThrowLimit("chat template exceeded the maximum recursion depth (" + std::to_string(in.limits().max_call_depth) +
               " nested macro or loop() calls)");
  ++in.call_depth_;
}

std::string Interpreter::Run(const Body& body, std::shared_ptr<Scope> root) {
  std::string out;
  Exec(body, root, out);
  return out;
}

Interpreter::Flow Interpreter::Exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
  for (const auto& s : body) {
    Flow f = ExecStmt(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}


Interpreter::Flow Interpreter::ExecStmt(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  struct LineGuard {
    int& line;
    int saved;
    ~LineGuard() {
      if (std::uncaught_exceptions() == 0) line = saved;
    }
  } guard{line_, line_};
  line_ = s.line;
  budget_.Charge(1);
  switch (s.kind) {
    case StmtKind::kText: Append(out, s.text); return Flow::kNormal;
    case StmtKind::kOutput: {
      Value v = Eval(*s.expr, scope);
      if (v.is_string()) Append(out, v.str());
      else Append(out, ToStr(v, budget_));
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const auto& [test, body] : s.branches)
        if (Truthy(Eval(*test, scope))) return Exec(body, scope, out);
      return Exec(s.else_body, scope, out);
    case StmtKind::kFor: RunFor(s, Eval(*s.expr, scope), scope, 1, out); return Flow::kNormal;
    case StmtKind::kSet: Assign(*s.target, Eval(*s.expr, scope), scope); return Flow::kNormal;
    case StmtKind::kSetBlock: {
      std::string buf;
      Exec(s.body, scope, buf);
      Value v(std::move(buf));
      if (s.expr) v = EvalFilter(*s.expr, scope, &v);
      Assign(*s.target, std::move(v), scope);
      return Flow::kNormal;
    }
    case StmtKind::kMacro:
      scope->Set(s.text, MakeMacro(s, scope, false));
      macro_scopes_.push_back(scope);
      return Flow::kNormal;
    case StmtKind::kCallBlock: {
      Value caller = MakeMacro(s, scope, true);
      Value v = EvalCall(*s.expr, scope, &caller);
      Append(out, ToStr(v, budget_));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      std::string buf;
      Exec(s.body, scope, buf);
      Value v(std::move(buf));
      Append(out, ToStr(EvalFilter(*s.expr, scope, &v), budget_));
      return Flow::kNormal;
    }
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
    case StmtKind::kWith: {
      auto inner = std::make_shared<Scope>(scope);
      for (size_t i = 0; i < s.params.size(); ++i) inner->Set(s.params[i], Eval(*s.defaults[i], scope));
      Exec(s.body, inner, out);
      return Flow::kNormal;
    }
    case StmtKind::kGeneration: return Exec(s.body, scope, out);
  }
  return Flow::kNormal;
}

void Interpreter::RunFor(const Stmt& s, const Value& iterable, const std::shared_ptr<Scope>& scope, int depth,
                         std::string& out) {
  auto loop = std::make_shared<LoopState>();
  loop->depth = depth;
  loop->node = &s;
  loop->scope = scope;
  if (iterable.kind() == Value::kLoop) ThrowError("'LoopContext' object is not iterable");
  std::vector<Value> items = Iterate(iterable, budget_);
  if (s.cond) {
    std::vector<Value> kept;
    for (auto& item : items) {
      budget_.Charge(1);
      auto probe = std::make_shared<Scope>(scope);
      Assign(*s.target, item, probe);
      if (Truthy(Eval(*s.cond, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  loop->items = std::move(items);
  Value loop_value(loop);
  for (size_t i = 0; i < loop->items.size(); ++i) {
    if (++iterations_ > limits().max_loop_iterations)
      ThrowLimit("chat template exceeded " + std::to_string(limits().max_loop_iterations) + " loop iterations");
    budget_.Charge(1);
    loop->index = i;
    auto iter_scope = std::make_shared<Scope>(scope);
    Assign(*s.target, loop->items[i], iter_scope);
    iter_scope->vars.emplace_back("loop", loop_value);
    if (Exec(s.body, iter_scope, out) == Flow::kBreak) break;
  }
  if (loop->items.empty()) Exec(s.else_body, std::make_shared<Scope>(scope), out);
  // A loop object stored into a namespace would otherwise keep its scope alive in a cycle.
  loop->scope.reset();
}

void Interpreter::Assign(const Expr& target, Value v, const std::shared_ptr<Scope>& scope) {
  if (target.kind == ExprKind::kName) {
    scope->Set(target.name, std::move(v));
  } else if (target.kind == ExprKind::kTuple) {
    std::vector<Value> items = Iterate(v, budget_);
    size_t n = target.children.size();
    if (items.size() > n) ThrowError("too many values to unpack (expected " + std::to_string(n) + ")");
    if (items.size() < n)
      ThrowError("not enough values to unpack (expected " + std::to_string(n) + ", got " +
                 std::to_string(items.size()) + ")");
    for (size_t i = 0; i < n; ++i) Assign(*target.children[i], std::move(items[i]), scope);
  } else {  // namespace attribute
    const std::string& ns_name = target.children[0]->name;
    const Value* ns = scope->Find(ns_name);
    if (!ns) ns = FindGlobal(ns_name);
    if (!ns || !ns->is_dict() || !ns->dict()->is_namespace)
      ThrowError("cannot assign attribute on non-namespace object");
    ns->dict()->Set(Value(target.name), std::move(v), budget_);
  }
}

Value Interpreter::MakeMacro(const Stmt& s, const std::shared_ptr<Scope>& scope, bool is_caller) {
  auto c = std::make_shared<Callable>();
  c->name = is_caller ? "caller" : s.text;
  const Stmt* node = &s;
  std::shared_ptr<Scope> closure = scope;
  c->fn = [node, closure](Interpreter& in, CallArgs& args) { return in.InvokeMacro(*node, closure, args); };
  return Value(std::move(c));
}

Value Interpreter::InvokeMacro(const Stmt& s, const std::shared_ptr<Scope>& closure, CallArgs& args) {
  CallGuard guard(*this);
  budget_.Charge(1 + args.args.size() + args.kwargs.size());
  const std::string name = s.kind == StmtKind::kMacro ? s.text : "caller";
  auto scope = std::make_shared<Scope>(closure);
  std::vector<bool> bound(s.params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < s.params.size()) {
      scope->vars.emplace_back(s.params[i], args.args[i]);
      bound[i] = true;
    } else if (s.uses_varargs) {
      varargs.push_back(args.args[i]);
    } else {
      ThrowError("macro '" + name + "' takes not more than " + std::to_string(s.params.size()) + " argument(s)");
    }
  }
  auto kwargs = std::make_shared<DictData>();
  Value caller;
  bool has_caller = false;
  for (auto& [k, v] : args.kwargs) {
    size_t idx = s.params.size();
    for (size_t i = 0; i < s.params.size(); ++i)
      if (s.params[i] == k) idx = i;
    if (idx < s.params.size()) {
      if (bound[idx]) ThrowError("macro '" + name + "' got multiple values for argument '" + k + "'");
      scope->vars.emplace_back(k, v);
      bound[idx] = true;
    } else if (k == "caller" && s.uses_caller) {
      caller = v;
      has_caller = true;
    } else if (s.uses_kwargs) {
      kwargs->items.emplace_back(Value(k), v);
    } else {
      ThrowError("macro '" + name + "' takes no keyword argument '" + k + "'");
    }
  }
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (bound[i]) continue;
    if (s.defaults[i]) scope->Set(s.params[i], Eval(*s.defaults[i], scope));
    else scope->Set(s.params[i], Value::UndefinedHint("parameter '" + s.params[i] + "' was not provided"));
  }
  if (s.uses_varargs) scope->Set("varargs", Value::MakeList(std::move(varargs), true));
  if (s.uses_kwargs) scope->Set("kwargs", Value(kwargs));
  if (s.uses_caller && s.kind == StmtKind::kMacro)
    scope->Set("caller", has_caller ? caller : Value::UndefinedHint("No caller defined"));
  std::string out;
  Exec(s.body, scope, out);
  return Value(std::move(out));
}

void Interpreter::EvalArgs(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope, CallArgs& args) {
  for (size_t i = first; i < e.children.size(); ++i) args.args.push_back(Eval(*e.children[i], scope));
  if (e.dyn_args) {
    Value extra = Eval(*e.dyn_args, scope);
    for (auto& v : Iterate(extra, budget_)) args.args.push_back(std::move(v));
  }
  for (const auto& [k, ex] : e.kwargs) args.kwargs.emplace_back(k, Eval(*ex, scope));
  if (e.dyn_kwargs) {
    Value extra = Eval(*e.dyn_kwargs, scope);
    if (!extra.is_dict()) ThrowError("argument after ** must be a mapping, not " + TypeName(extra));
    budget_.Charge(extra.dict()->items.size());
    for (const auto& [k, v] : extra.dict()->items) args.kwargs.emplace_back(ToStr(k, budget_), v);
  }
}

Value Interpreter::EvalFilter(const Expr& e, const std::shared_ptr<Scope>& scope, const Value* block_subject) {
  Value subject = e.children[0] ? (e.children[0]->kind == ExprKind::kFilter
                                       ? EvalFilter(*e.children[0], scope, block_subject)
                                       : Eval(*e.children[0], scope))
                                : *block_subject;
  CallArgs args;
  EvalArgs(e, 1, scope, args);
  return ApplyFilter(e.name, subject, args);
}

// Builtins cost about the size of their subject, plus whatever they charge
// themselves; what they return is checked against the caps.
Value Interpreter::ApplyFilter(const std::string& name, const Value& subject, CallArgs& args) {
  FilterFn f = FindFilter(name);
  if (!f) ThrowError("No filter named '" + name + "'.");
  ChargeSize(subject, budget_);
  Value result = f(*this, subject, args);
  CheckSize(result, budget_);
  return result;
}

bool Interpreter::ApplyTest(const std::string& name, const Value& subject, CallArgs& args) {
  TestFn t = FindTest(name);
  if (!t) ThrowError("No test named '" + name + "'.");
  ChargeSize(subject, budget_);
  return t(*this, subject, args);
}

Value Interpreter::EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope, Value* caller) {
  const Expr& callee = *e.children[0];
  CallArgs args;
  // Fast path for methods of builtin types: no bound-method object is built.
  if (callee.kind == ExprKind::kGetattr && !caller) {
    Value obj = Eval(*callee.children[0], scope);
    if ((obj.is_string() || obj.is_list() || (obj.is_dict() && !obj.dict()->is_namespace)) &&
        HasMethod(obj, callee.name) && !IsUnsafeMethod(obj, callee.name)) {
      EvalArgs(e, 1, scope, args);
      return CallMethod(*this, obj, callee.name, args);
    }
    Value fn = GetAttr(obj, callee.name);
    EvalArgs(e, 1, scope, args);
    return CallValue(fn, args);
  }
  Value fn = Eval(callee, scope);
  EvalArgs(e, 1, scope, args);
  if (caller) args.kwargs.emplace_back("caller", *caller);
  return CallValue(fn, args);
}

Value Interpreter::CallValue(const Value& callee, CallArgs& args) {
  if (callee.is_callable()) return callee.callable()->fn(*this, args);
  if (callee.is_undefined()) ThrowUndefined(callee);
  if (callee.kind() == Value::kLoop) {
    const auto& loop = callee.loop();
    if (!loop->node->recursive)
      ThrowError("The loop must have the 'recursive' marker to be called recursively.");
    if (!loop->scope) ThrowError("loop() called after its loop ended");
    if (args.args.size() != 1) ThrowError("loop() takes exactly one argument");
    CallGuard guard(*this);
    std::string out;
    RunFor(*loop->node, args.args[0], loop->scope, loop->depth + 1, out);
    return Value(std::move(out));
  }
  ThrowError("'" + TypeName(callee) + "' object is not callable");
}

Value Interpreter::LoopAttr(const std::shared_ptr<LoopState>& loop, const std::string& name) {
  const int64_t i = static_cast<int64_t>(loop->index);
  const int64_t n = static_cast<int64_t>(loop->items.size());
  if (name == "index") return Value(i + 1);
  if (name == "index0") return Value(i);
  if (name == "revindex") return Value(n - i);
  if (name == "revindex0") return Value(n - i - 1);
  if (name == "first") return Value(i == 0);
  if (name == "last") return Value(i == n - 1);
  if (name == "length") return Value(n);
  if (name == "depth") return Value(static_cast<int64_t>(loop->depth));
  if (name == "depth0") return Value(static_cast<int64_t>(loop->depth - 1));
  if (name == "previtem") return i > 0 ? loop->items[i - 1] : Value::UndefinedHint("there is no previous item");
  if (name == "nextitem") return i + 1 < n ? loop->items[i + 1] : Value::UndefinedHint("there is no next item");
  if (name == "cycle" || name == "changed") {
    auto c = std::make_shared<Callable>();
    c->name = "loop." + name;
    std::weak_ptr<LoopState> weak = loop;
    bool cycle = name == "cycle";
    c->fn = [weak, cycle](Interpreter& in, CallArgs& args) -> Value {
      auto l = weak.lock();
      if (!l) ThrowError("loop is no longer active");
      if (cycle) {
        if (args.args.empty()) ThrowError("no items for cycling given");
        return args.args[l->index % args.args.size()];
      }
      Value now = Value::MakeList(args.args, true);
      if (l->last_changed && Equals(*l->last_changed, now, in.budget())) return Value(false);
      l->last_changed = now;
      return Value(true);
    };
    return Value(std::move(c));
  }
  UndefinedInfo info;
  info.has_obj = true;
  info.obj_type = "jinja2.runtime.LoopContext object";
  info.name = name;
  return Value::Undefined(std::move(info));
}

Value Interpreter::GetAttr(const Value& obj, const std::string& name) {
  // Python's special attributes exist on every object and the sandbox refuses them.
  if (name.size() > 4 && name.compare(0, 2, "__") == 0 && name.compare(name.size() - 2, 2, "__") == 0 &&
      !obj.is_undefined())
    return Value::UndefinedHint("access to attribute '" + name + "' of '" + TypeName(obj) + "' object is unsafe.");
  switch (obj.kind()) {
    case Value::kUndefined: ThrowUndefined(obj);
    case Value::kLoop: return LoopAttr(obj.loop(), name);
    case Value::kDict:
      if (obj.dict()->is_namespace) {
        if (const Value* v = obj.dict()->FindStr(name, budget_)) return *v;
        break;
      }
      [[fallthrough]];
    case Value::kString:
    case Value::kList:
      if (HasMethod(obj, name)) {
        if (IsUnsafeMethod(obj, name))
          return Value::UndefinedHint("access to attribute '" + name + "' of '" + TypeName(obj) +
                                      "' object is unsafe.");
        auto c = std::make_shared<Callable>();
        c->name = name;
        Value self = obj;
        c->fn = [self, name](Interpreter& in, CallArgs& args) { return CallMethod(in, self, name, args); };
        return Value(std::move(c));
      }
      if (obj.is_dict())
        if (const Value* v = obj.dict()->FindStr(name, budget_)) return *v;
      break;
    default: break;
  }
  UndefinedInfo info;
  info.has_obj = true;
  info.obj_type = ObjectTypeRepr(obj);
  info.name = name;
  return Value::Undefined(std::move(info));
}

Value Interpreter::GetAttrPath(const Value& obj, const std::string& path) {
  Value cur = obj;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    if (cur.is_undefined()) return cur;
    // jinja2's environment.getitem: item first, then attribute.
    Value key = numeric ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part);
    Value next = GetItem(cur, key, budget_);
    if (next.is_undefined() && !numeric) next = GetAttr(cur, part);
    cur = std::move(next);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value Interpreter::Eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case ExprKind::kConst: return e.constant;
    case ExprKind::kName: {
      if (const Value* v = scope->Find(e.name)) return *v;
      if (const Value* g = FindGlobal(e.name)) return *g;
      return Value::UndefinedName(e.name);
    }
    case ExprKind::kGetattr: return GetAttr(Eval(*e.children[0], scope), e.name);
    case ExprKind::kGetitem: {
      Value obj = Eval(*e.children[0], scope);
      const Expr& k = *e.children[1];
      if (k.kind == ExprKind::kSlice) {
        auto part = [&](size_t i) { return k.children[i] ? Eval(*k.children[i], scope) : Value::None(); };
        Value a = part(0), b = part(1), c = part(2);
        return Slice(obj, a, b, c, budget_);
      }
      Value key = Eval(k, scope);
      if (obj.kind() == Value::kLoop || (obj.is_dict() && obj.dict()->is_namespace)) {
        if (key.is_string()) return GetAttr(obj, key.str());
      }
      Value v = GetItem(obj, key, budget_);
      if (v.is_undefined() && key.is_string() && (obj.is_string() || obj.is_list() || obj.is_dict()) &&
          HasMethod(obj, key.str()))
        return GetAttr(obj, key.str());
      return v;
    }
    case ExprKind::kSlice: ThrowError("slice outside of a subscript");
    case ExprKind::kCall: return EvalCall(e, scope, nullptr);
    case ExprKind::kFilter: return EvalFilter(e, scope, nullptr);
    case ExprKind::kTest: {
      Value subject = Eval(*e.children[0], scope);
      CallArgs args;
      EvalArgs(e, 1, scope, args);
      return Value(ApplyTest(e.name, subject, args) != e.negated);
    }
    case ExprKind::kNeg: return Negate(Eval(*e.children[0], scope));
    case ExprKind::kPos: {
      Value v = Eval(*e.children[0], scope);
      if (!v.is_number()) {
        if (v.is_undefined()) ThrowUndefined(v);
        ThrowError("bad operand type for unary +: '" + TypeName(v) + "'");
      }
      return v.is_bool() ? Value(v.int_value()) : v;
    }
    case ExprKind::kNot: return Value(!Truthy(Eval(*e.children[0], scope)));
    case ExprKind::kAnd: {
      Value l = Eval(*e.children[0], scope);
      return Truthy(l) ? Eval(*e.children[1], scope) : l;
    }
    case ExprKind::kOr: {
      Value l = Eval(*e.children[0], scope);
      return Truthy(l) ? l : Eval(*e.children[1], scope);
    }
    case ExprKind::kBinary: {
      Value l = Eval(*e.children[0], scope);
      Value r = Eval(*e.children[1], scope);
      const std::string& op = e.name;
      if (op == "+") return Add(l, r, budget_);
      if (op == "-") return Sub(l, r);
      if (op == "*") return Mul(l, r, budget_);
      if (op == "/") return Div(l, r);
      if (op == "//") return FloorDiv(l, r);
      if (op == "%") return Mod(l, r, budget_);
      return Pow(l, r);
    }
    case ExprKind::kCompare: {
      Value left = Eval(*e.children[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = Eval(*e.children[i + 1], scope);
        const std::string& op = e.ops[i];
        bool ok;
        if (op == "==") ok = Equals(left, right, budget_);
        else if (op == "!=") ok = !Equals(left, right, budget_);
        else if (op == "<") ok = Less(left, right, budget_, "<");
        else if (op == ">") ok = Less(right, left, budget_, ">", true);
        else if (op == "<=") ok = LessOrEqual(left, right, budget_, "<=");
        else if (op == ">=") ok = LessOrEqual(right, left, budget_, ">=", true);
        else if (op == "in") ok = Contains(right, left, budget_);
        else ok = !Contains(right, left, budget_);
        if (!ok) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& c : e.children) {
        Value v = Eval(*c, scope);
        const std::string piece = v.is_string() ? std::string() : ToStr(v, budget_);
        Append(s, v.is_string() ? v.str() : piece);
      }
      return Value(std::move(s));
    }
    case ExprKind::kCondExpr: {
      if (Truthy(Eval(*e.children[0], scope))) return Eval(*e.children[1], scope);
      if (e.children[2]) return Eval(*e.children[2], scope);
      return Value::UndefinedHint("the inline if-expression on line " + std::to_string(e.line) +
                                  " evaluated to false and no else section was defined.");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(Eval(*c, scope));
      return Value::MakeList(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      auto d = std::make_shared<DictData>();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = Eval(*e.children[i], scope);
        if (k.is_list() && !k.list()->is_tuple) ThrowError("unhashable type: 'list'");
        if (k.is_dict()) ThrowError("unhashable type: 'dict'");
        d->Set(k, Eval(*e.children[i + 1], scope), budget_);
      }
      return Value(std::move(d));
    }
  }
  return Value();
}

namespace {
void ValidateExpr(const Expr* e) {
  if (!e) return;
  if (e->kind == ExprKind::kFilter && !FindFilter(e->name))
    throw ParseError{e->line, 0, "No filter named '" + e->name + "'."};
  if (e->kind == ExprKind::kTest && !FindTest(e->name))
    throw ParseError{e->line, 0, "No test named '" + e->name + "'."};
  for (const auto& c : e->children) ValidateExpr(c.get());
  for (const auto& kv : e->kwargs) ValidateExpr(kv.second.get());
  ValidateExpr(e->dyn_args.get());
  ValidateExpr(e->dyn_kwargs.get());
}
}  // namespace

void ValidateTemplate(const Body& body) {
  for (const auto& s : body) {
    ValidateExpr(s->expr.get());
    ValidateExpr(s->target.get());
    ValidateExpr(s->cond.get());
    for (const auto& d : s->defaults) ValidateExpr(d.get());
    for (const auto& [test, b] : s->branches) {
      ValidateExpr(test.get());
      ValidateTemplate(b);
    }
    ValidateTemplate(s->body);
    ValidateTemplate(s->else_body);
  }
}

}  // namespace kaon::jinja
