#include "server/template/parser.h"

#include <initializer_list>

namespace kaon::jinja {
namespace {

constexpr int kMaxNesting = 200;  // deeper input is rejected rather than risking the stack

const char* Describe(const Token& t) {
  switch (t.type) {
    case Tok::kVarEnd: return "end of print statement";
    case Tok::kBlockEnd: return "end of statement block";
    case Tok::kEof: return "end of template";
    default: return nullptr;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body Template() {
    Body body = Statements({});
    return body;
  }

 private:
  // ---- token helpers
  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  Token Next() {
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool IsOp(const char* op) const { return Cur().type == Tok::kOp && Cur().text == op; }
  bool IsName(const char* n) const { return Cur().type == Tok::kName && Cur().text == n; }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(const char* n) {
    if (!IsName(n)) return false;
    Next();
    return true;
  }
  [[noreturn]] void Fail(const std::string& msg, const Token* at = nullptr) const {
    const Token& t = at ? *at : Cur();
    throw ParseError{t.line, t.column, msg};
  }
  std::string TokenDesc(const Token& t) const {
    if (const char* d = Describe(t)) return d;
    if (t.type == Tok::kString) return "string";
    if (t.type == Tok::kInt) return "integer";
    if (t.type == Tok::kFloat) return "float";
    return t.text;
  }
  void ExpectOp(const char* op) {
    if (!SkipOp(op)) Fail(std::string("expected token '") + op + "', got '" + TokenDesc(Cur()) + "'");
  }
  std::string ExpectNameTok() {
    if (Cur().type != Tok::kName) Fail("expected token 'name', got '" + TokenDesc(Cur()) + "'");
    return Next().text;
  }
  void ExpectBlockEnd() {
    if (Cur().type != Tok::kBlockEnd)
      Fail("expected token 'end of statement block', got '" + TokenDesc(Cur()) + "'");
    Next();
  }

  struct Depth {
    explicit Depth(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxNesting) p_->Fail("template nesting too deep");
    }
    ~Depth() { --p_->depth_; }
    Parser* p_;
  };

  ExprPtr Make(ExprKind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  // ---- statements
  // Parses until `{% name %}` with name in `ends` (leaving Cur() at that name).
  Body Statements(std::initializer_list<const char*> ends, const char* open = nullptr) {
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == Tok::kEof) {
        if (ends.size() == 0) return body;
        std::string want;
        for (const char* e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
        Fail(std::string("Unexpected end of template. Jinja was looking for the following tags: ") + want +
             ". The innermost block that needs to be closed is '" + open + "'.");
      }
      if (t.type == Tok::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        Next();
      } else if (t.type == Tok::kVarBegin) {
        Next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        s->expr = Tuple(false, true, {});
        if (Cur().type != Tok::kVarEnd)
          Fail("expected token 'end of print statement', got '" + TokenDesc(Cur()) + "'");
        Next();
        body.push_back(std::move(s));
      } else if (t.type == Tok::kBlockBegin) {
        Next();
        if (Cur().type != Tok::kName) Fail("tag name expected");
        for (const char* e : ends)
          if (Cur().text == e) return body;
        body.push_back(Statement(ends, open));
      } else {
        Fail("unexpected '" + TokenDesc(t) + "'");
      }
    }
  }

  std::unique_ptr<Stmt> Statement(std::initializer_list<const char*> ends, const char* open) {
    Depth d(this);
    const Token tag = Cur();
    auto s = std::make_unique<Stmt>();
    s->line = tag.line;
    const std::string& n = tag.text;
    if (n == "if") return If();
    if (n == "for") return For();
    if (n == "set") return Set();
    if (n == "macro") return Macro();
    if (n == "call") return CallBlock();
    if (n == "filter") {
      Next();
      s->kind = StmtKind::kFilterBlock;
      s->expr = FilterChain(nullptr);
      ExpectBlockEnd();
      s->body = Statements({"endfilter"}, "filter");
      Next();
      ExpectBlockEnd();
      return s;
    }
    if (n == "generation") {
      Next();
      s->kind = StmtKind::kGeneration;
      ExpectBlockEnd();
      s->body = Statements({"endgeneration"}, "generation");
      Next();
      ExpectBlockEnd();
      return s;
    }
    if (n == "with") {
      Next();
      s->kind = StmtKind::kWith;
      while (Cur().type != Tok::kBlockEnd) {
        if (!s->params.empty()) ExpectOp(",");
        s->params.push_back(ExpectNameTok());
        ExpectOp("=");
        s->defaults.push_back(Expression(true));
      }
      ExpectBlockEnd();
      s->body = Statements({"endwith"}, "with");
      Next();
      ExpectBlockEnd();
      return s;
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) Fail("'" + n + "' tag outside of a loop", &tag);
      Next();
      s->kind = n == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      ExpectBlockEnd();
      return s;
    }
    std::string msg = "Encountered unknown tag '" + n + "'.";
    if (ends.size() > 0) {
      std::string want;
      for (const char* e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
      msg += " Jinja was looking for the following tags: " + want +
             ". The innermost block that needs to be closed is '" + open + "'.";
    }
    Fail(msg, &tag);
  }

  std::unique_ptr<Stmt> If() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kIf;
    s->line = Next().line;
    while (true) {
      ExprPtr test = Tuple(false, false, {});
      ExpectBlockEnd();
      Body body = Statements({"elif", "else", "endif"}, "if");
      s->branches.emplace_back(std::move(test), std::move(body));
      std::string t = Next().text;
      if (t == "elif") continue;
      if (t == "else") {
        ExpectBlockEnd();
        s->else_body = Statements({"endif"}, "if");
        Next();
      }
      ExpectBlockEnd();
      return s;
    }
  }

  std::unique_ptr<Stmt> For() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFor;
    s->line = Next().line;
    s->target = AssignTarget({"in"}, false);
    if (!SkipName("in")) Fail("expected token 'in', got '" + TokenDesc(Cur()) + "'");
    s->expr = Tuple(false, false, {"recursive"});
    if (SkipName("if")) s->cond = Expression(true);
    if (SkipName("recursive")) s->recursive = true;
    ExpectBlockEnd();
    ++loop_depth_;
    s->body = Statements({"endfor", "else"}, "for");
    --loop_depth_;
    if (Next().text == "else") {
      ExpectBlockEnd();
      s->else_body = Statements({"endfor"}, "for");
      Next();
    }
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> Set() {
    auto s = std::make_unique<Stmt>();
    s->line = Next().line;
    s->target = AssignTarget({}, true);
    if (SkipOp("=")) {
      s->kind = StmtKind::kSet;
      s->expr = Tuple(false, true, {});
      ExpectBlockEnd();
      return s;
    }
    s->kind = StmtKind::kSetBlock;
    if (IsOp("|")) s->expr = FilterChain(nullptr);
    ExpectBlockEnd();
    s->body = Statements({"endset"}, "set");
    Next();
    ExpectBlockEnd();
    return s;
  }

  void Signature(Stmt& s) {
    ExpectOp("(");
    bool seen_default = false;
    while (!IsOp(")")) {
      if (!s.params.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      s.params.push_back(ExpectNameTok());
      if (SkipOp("=")) {
        s.defaults.push_back(Expression(true));
        seen_default = true;
      } else {
        if (seen_default) Fail("non-default argument follows default argument");
        s.defaults.push_back(nullptr);
      }
    }
    ExpectOp(")");
  }

  std::unique_ptr<Stmt> Macro() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kMacro;
    s->line = Next().line;
    s->text = ExpectNameTok();
    Signature(*s);
    ExpectBlockEnd();
    macros_.push_back(s.get());
    int saved_loop = loop_depth_;
    loop_depth_ = 0;
    s->body = Statements({"endmacro"}, "macro");
    loop_depth_ = saved_loop;
    macros_.pop_back();
    Next();
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> CallBlock() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kCallBlock;
    s->line = Next().line;
    if (IsOp("(")) Signature(*s);
    s->expr = Expression(true);
    if (s->expr->kind != ExprKind::kCall) Fail("expected call", &Cur());
    ExpectBlockEnd();
    macros_.push_back(s.get());
    s->body = Statements({"endcall"}, "call");
    macros_.pop_back();
    Next();
    ExpectBlockEnd();
    return s;
  }

  ExprPtr AssignTarget(std::initializer_list<const char*> extra_end, bool with_namespace) {
    const Token& t = Cur();
    if (with_namespace && t.type == Tok::kName && Peek().type == Tok::kOp && Peek().text == ".") {
      auto obj = Make(ExprKind::kName, t.line);
      obj->name = Next().text;
      Next();
      auto e = Make(ExprKind::kGetattr, t.line);
      e->name = ExpectNameTok();
      e->children.push_back(std::move(obj));
      return e;
    }
    ExprPtr target = Tuple(true, true, extra_end);
    auto assignable = [](const Expr& e) { return e.kind == ExprKind::kName; };
    bool ok = assignable(*target);
    if (target->kind == ExprKind::kTuple) {
      ok = true;
      for (const auto& c : target->children) ok = ok && assignable(*c);
    }
    if (ok && target->kind == ExprKind::kName &&
        (target->name == "true" || target->name == "false" || target->name == "none"))
      ok = false;
    if (!ok) Fail("can't assign to '" + std::string(target->kind == ExprKind::kConst ? "const" : "expression") + "'", &t);
    return target;
  }

  // ---- expressions
  bool TupleEnd(std::initializer_list<const char*> extra_end) const {
    const Token& t = Cur();
    if (t.type == Tok::kVarEnd || t.type == Tok::kBlockEnd || t.type == Tok::kEof) return true;
    if (t.type == Tok::kOp && t.text == ")") return true;
    for (const char* e : extra_end)
      if (t.type == Tok::kName && t.text == e) return true;
    return false;
  }

  ExprPtr Tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
                bool explicit_parens = false) {
    int line = Cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) ExpectOp(",");
      if (TupleEnd(extra_end)) break;
      if (simplified) items.push_back(Primary());
      else items.push_back(Expression(with_condexpr));
      if (IsOp(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) Fail("Expected an expression, got '" + TokenDesc(Cur()) + "'");
    }
    auto e = Make(ExprKind::kTuple, line);
    e->children = std::move(items);
    return e;
  }

  ExprPtr Expression(bool with_condexpr) {
    Depth d(this);
    return with_condexpr ? CondExpr() : Or();
  }

  ExprPtr CondExpr() {
    ExprPtr e = Or();
    while (IsName("if")) {
      int line = Next().line;
      auto c = Make(ExprKind::kCondExpr, line);
      ExprPtr test = Or();
      ExprPtr other = SkipName("else") ? CondExpr() : nullptr;
      c->children.push_back(std::move(test));
      c->children.push_back(std::move(e));
      c->children.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr Binary(ExprKind k, ExprPtr l, ExprPtr r, int line, const std::string& op = "") {
    auto e = Make(k, line);
    e->name = op;
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  ExprPtr Or() {
    ExprPtr e = And();
    while (IsName("or")) {
      int line = Next().line;
      e = Binary(ExprKind::kOr, std::move(e), And(), line);
    }
    return e;
  }

  ExprPtr And() {
    ExprPtr e = Not();
    while (IsName("and")) {
      int line = Next().line;
      e = Binary(ExprKind::kAnd, std::move(e), Not(), line);
    }
    return e;
  }

  ExprPtr Not() {
    if (IsName("not")) {
      Depth d(this);
      auto e = Make(ExprKind::kNot, Next().line);
      e->children.push_back(Not());
      return e;
    }
    return Compare();
  }

  ExprPtr Compare() {
    int line = Cur().line;
    ExprPtr first = Math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == Tok::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == "<=" ||
           Cur().text == ">" || Cur().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && Peek().type == Tok::kName && Peek().text == "in") {
        Next();
        Next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(ExprKind::kCompare, line);
        cmp->children.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(Math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr Math1() {
    ExprPtr e = Concat();
    while (IsOp("+") || IsOp("-")) {
      Token t = Next();
      e = Binary(ExprKind::kBinary, std::move(e), Concat(), t.line, t.text);
    }
    return e;
  }

  ExprPtr Concat() {
    int line = Cur().line;
    ExprPtr e = Math2();
    if (!IsOp("~")) return e;
    auto c = Make(ExprKind::kConcat, line);
    c->children.push_back(std::move(e));
    while (SkipOp("~")) c->children.push_back(Math2());
    return c;
  }

  ExprPtr Math2() {
    ExprPtr e = PowExpr();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      Token t = Next();
      e = Binary(ExprKind::kBinary, std::move(e), PowExpr(), t.line, t.text);
    }
    return e;
  }

  ExprPtr PowExpr() {
    ExprPtr e = Unary(true);
    while (IsOp("**")) {
      Token t = Next();
      e = Binary(ExprKind::kBinary, std::move(e), Unary(true), t.line, t.text);
    }
    return e;
  }

  ExprPtr Unary(bool with_filter) {
    Depth d(this);
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      Token t = Next();
      e = Make(t.text == "-" ? ExprKind::kNeg : ExprKind::kPos, t.line);
      e->children.push_back(Unary(false));
    } else {
      e = Primary();
    }
    e = Postfix(std::move(e));
    if (with_filter) e = FilterExpr(std::move(e));
    return e;
  }

  ExprPtr Primary() {
    Depth d(this);
    const Token t = Cur();
    if (t.type == Tok::kName) {
      Next();
      if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
        auto e = Make(ExprKind::kConst, t.line);
        e->constant = Value(t.text == "true" || t.text == "True");
        return e;
      }
      if (t.text == "none" || t.text == "None") {
        auto e = Make(ExprKind::kConst, t.line);
        e->constant = Value::None();
        return e;
      }
      auto e = Make(ExprKind::kName, t.line);
      e->name = t.text;
      if (!macros_.empty()) {
        if (t.text == "varargs") macros_.back()->uses_varargs = true;
        if (t.text == "kwargs") macros_.back()->uses_kwargs = true;
        if (t.text == "caller") macros_.back()->uses_caller = true;
      }
      return e;
    }
    if (t.type == Tok::kString) {
      std::string s;
      while (Cur().type == Tok::kString) s += Next().text;  // adjacent literals concatenate
      auto e = Make(ExprKind::kConst, t.line);
      e->constant = Value(std::move(s));
      return e;
    }
    if (t.type == Tok::kInt || t.type == Tok::kFloat) {
      Next();
      auto e = Make(ExprKind::kConst, t.line);
      e->constant = t.type == Tok::kInt ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    if (t.type == Tok::kOp && t.text == "(") {
      Next();
      ExprPtr e = Tuple(false, true, {}, true);
      ExpectOp(")");
      return e;
    }
    if (t.type == Tok::kOp && t.text == "[") {
      Next();
      auto e = Make(ExprKind::kList, t.line);
      while (!IsOp("]")) {
        if (!e->children.empty()) ExpectOp(",");
        if (IsOp("]")) break;
        e->children.push_back(Expression(true));
      }
      ExpectOp("]");
      return e;
    }
    if (t.type == Tok::kOp && t.text == "{") {
      Next();
      auto e = Make(ExprKind::kDict, t.line);
      while (!IsOp("}")) {
        if (!e->children.empty()) ExpectOp(",");
        if (IsOp("}")) break;
        e->children.push_back(Expression(true));
        ExpectOp(":");
        e->children.push_back(Expression(true));
      }
      ExpectOp("}");
      return e;
    }
    Fail("unexpected '" + TokenDesc(t) + "'");
  }

  ExprPtr Postfix(ExprPtr e) {
    while (true) {
      if (IsOp(".") || IsOp("[")) {
        e = Subscript(std::move(e));
      } else if (IsOp("(")) {
        e = Call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr FilterExpr(ExprPtr e) {
    while (true) {
      if (IsOp("|")) {
        e = FilterChain(std::move(e), true);
      } else if (IsName("is")) {
        e = Test(std::move(e));
      } else if (IsOp("(")) {
        e = Call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr Subscript(ExprPtr obj) {
    Token t = Next();
    if (t.text == ".") {
      const Token a = Cur();
      if (a.type == Tok::kName) {
        Next();
        auto e = Make(ExprKind::kGetattr, t.line);
        e->name = a.text;
        e->children.push_back(std::move(obj));
        return e;
      }
      if (a.type != Tok::kInt) Fail("expected name or number");
      Next();
      auto e = Make(ExprKind::kGetitem, t.line);
      auto key = Make(ExprKind::kConst, a.line);
      key->constant = Value(a.int_value);
      e->children.push_back(std::move(obj));
      e->children.push_back(std::move(key));
      return e;
    }
    std::vector<ExprPtr> args;
    while (!IsOp("]")) {
      if (!args.empty()) ExpectOp(",");
      args.push_back(Subscribed());
    }
    ExpectOp("]");
    auto e = Make(ExprKind::kGetitem, t.line);
    e->children.push_back(std::move(obj));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      auto tup = Make(ExprKind::kTuple, t.line);
      tup->children = std::move(args);
      e->children.push_back(std::move(tup));
    }
    return e;
  }

  ExprPtr Subscribed() {
    int line = Cur().line;
    std::vector<ExprPtr> parts;
    if (IsOp(":")) {
      Next();
      parts.push_back(nullptr);
    } else {
      ExprPtr e = Expression(true);
      if (!IsOp(":")) return e;
      Next();
      parts.push_back(std::move(e));
    }
    if (IsOp(":") || IsOp("]") || IsOp(",")) parts.push_back(nullptr);
    else parts.push_back(Expression(true));
    if (SkipOp(":")) {
      if (IsOp("]") || IsOp(",")) parts.push_back(nullptr);
      else parts.push_back(Expression(true));
    } else {
      parts.push_back(nullptr);
    }
    auto s = Make(ExprKind::kSlice, line);
    s->children = std::move(parts);
    return s;
  }

  void CallArgs(Expr& e) {
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) {
        ExpectOp(",");
        if (IsOp(")")) break;
      }
      first = false;
      if (SkipOp("*")) {
        e.dyn_args = Expression(true);
      } else if (SkipOp("**")) {
        e.dyn_kwargs = Expression(true);
      } else if (Cur().type == Tok::kName && Peek().type == Tok::kOp && Peek().text == "=") {
        std::string key = Next().text;
        Next();
        e.kwargs.emplace_back(key, Expression(true));
      } else {
        if (!e.kwargs.empty() || e.dyn_args || e.dyn_kwargs) Fail("Invalid argument syntax");
        e.children.push_back(Expression(true));
      }
    }
    ExpectOp(")");
  }

  ExprPtr Call(ExprPtr callee) {
    auto e = Make(ExprKind::kCall, Cur().line);
    e->children.push_back(std::move(callee));
    CallArgs(*e);
    return e;
  }

  // `|name(args)|name...`; subject is null for filter blocks and `set` blocks.
  ExprPtr FilterChain(ExprPtr subject, bool single = false) {
    bool started = false;
    while (IsOp("|") || (!started && !single)) {
      if (IsOp("|")) Next();
      started = true;
      auto e = Make(ExprKind::kFilter, Cur().line);
      e->name = ExpectNameTok();
      while (IsOp(".")) {
        Next();
        e->name += "." + ExpectNameTok();
      }
      e->children.push_back(std::move(subject));
      if (IsOp("(")) CallArgs(*e);
      subject = std::move(e);
      if (single) break;
    }
    return subject;
  }

  ExprPtr Test(ExprPtr subject) {
    int line = Next().line;
    auto e = Make(ExprKind::kTest, line);
    if (SkipName("not")) e->negated = true;
    e->name = ExpectNameTok();
    while (IsOp(".")) {
      Next();
      e->name += "." + ExpectNameTok();
    }
    e->children.push_back(std::move(subject));
    const Token& t = Cur();
    if (IsOp("(")) {
      CallArgs(*e);
    } else if ((t.type == Tok::kName || t.type == Tok::kString || t.type == Tok::kInt || t.type == Tok::kFloat ||
                (t.type == Tok::kOp && (t.text == "(" || t.text == "[" || t.text == "{"))) &&
               !(t.type == Tok::kName && (t.text == "else" || t.text == "or" || t.text == "and"))) {
      if (IsName("is")) Fail("You cannot chain multiple tests with is");
      e->children.push_back(Postfix(Primary()));
    }
    return e;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<Stmt*> macros_;
};

}  // namespace

Body ParseTemplate(const std::string& source) { return Parser(Tokenize(source)).Template(); }

}  // namespace kaon::jinja
