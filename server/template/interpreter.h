// Executes a parsed template: scopes as jinja2 has them (loop iterations and macro
// calls get their own; `if` does not), sandbox limits, and the dispatch to
// filters, tests, methods and globals.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/template/ast.h"
#include "server/template/budget.h"
#include "server/template/limits.h"
#include "server/template/value.h"

namespace kaon::jinja {

struct Scope {
  explicit Scope(std::shared_ptr<Scope> p = nullptr) : parent(std::move(p)) {}
  const Value* Find(std::string_view name) const;
  void Set(const std::string& name, Value v);
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;
};

struct LoopState {
  std::vector<Value> items;
  size_t index = 0;
  int depth = 1;
  const Stmt* node = nullptr;          // for `loop(...)` in recursive loops
  std::shared_ptr<Scope> scope;        // scope the loop runs in
  std::optional<Value> last_changed;   // loop.changed()
};

class Interpreter {
 public:
  // The budget is the render's: it has been charged for converting the inputs.
  Interpreter(Budget& budget, std::optional<std::time_t> now) : budget_(budget), now_(now) {}
  ~Interpreter();

  std::string Run(const Body& body, std::shared_ptr<Scope> root);

  Value Eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value CallValue(const Value& callee, CallArgs& args);
  Value ApplyFilter(const std::string& name, const Value& subject, CallArgs& args);
  bool ApplyTest(const std::string& name, const Value& subject, CallArgs& args);
  Value GetAttr(const Value& obj, const std::string& name);
  // Attribute path for map/selectattr/sort(attribute=...): "a.b.0".
  Value GetAttrPath(const Value& obj, const std::string& path);
  std::time_t Now() const;
  bool now_fixed() const { return now_.has_value(); }
  int line() const { return line_; }
  const Limits& limits() const { return budget_.limits(); }
  Budget& budget() { return budget_; }
  // Namespaces are the only mutable values: one can end up holding itself
  // (`{% set ns.me = ns %}`, or through a list). The render empties every one it
  // made when it ends, so such cycles are not leaked.
  void AdoptNamespace(std::shared_ptr<DictData> ns) { namespaces_.push_back(std::move(ns)); }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Flow Exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow ExecStmt(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  void RunFor(const Stmt& s, const Value& iterable, const std::shared_ptr<Scope>& scope, int depth,
              std::string& out);
  void Assign(const Expr& target, Value v, const std::shared_ptr<Scope>& scope);
  void EvalArgs(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope, CallArgs& args);
  Value EvalFilter(const Expr& e, const std::shared_ptr<Scope>& scope, const Value* block_subject);
  Value EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope, Value* caller);
  Value MakeMacro(const Stmt& s, const std::shared_ptr<Scope>& scope, bool is_caller);
  Value InvokeMacro(const Stmt& s, const std::shared_ptr<Scope>& closure, CallArgs& args);
  Value LoopAttr(const std::shared_ptr<LoopState>& loop, const std::string& name);
  void Append(std::string& out, std::string_view s);
  // Macro calls and recursive loop() calls nest the interpreter's own recursion.
  struct CallGuard {
    explicit CallGuard(Interpreter& in);
    ~CallGuard() { --in.call_depth_; }
    Interpreter& in;
  };

  Budget& budget_;
  std::optional<std::time_t> now_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  int line_ = 0;  // line of the statement being run, for error messages
  // Scopes that hold macros; cleared at the end to break macro <-> scope cycles.
  std::vector<std::shared_ptr<Scope>> macro_scopes_;
  std::vector<std::shared_ptr<DictData>> namespaces_;
};

// Builtins (filters.cc, tests.cc, methods.cc, globals.cc).
using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);
FilterFn FindFilter(std::string_view name);
TestFn FindTest(std::string_view name);
const Value* FindGlobal(std::string_view name);
// Python methods of str/list/dict. HasMethod says whether `name` is an attribute.
bool HasMethod(const Value& self, std::string_view name);
bool IsUnsafeMethod(const Value& self, std::string_view name);
Value CallMethod(Interpreter& in, const Value& self, const std::string& name, CallArgs& args);

// Binds builtin arguments by position or keyword, as Python would.
class ArgBinder {
 public:
  ArgBinder(const CallArgs& args, const char* func, std::initializer_list<const char*> names);
  const Value* Get(size_t i) const { return i < bound_.size() ? bound_[i] : nullptr; }
  Value Or(size_t i, Value def) const { return Get(i) ? *Get(i) : std::move(def); }

 private:
  std::vector<const Value*> bound_;
};

// Walks a parsed template and rejects unknown filters and tests, as jinja2 does
// when compiling.
void ValidateTemplate(const Body& body);

}  // namespace kaon::jinja
