// Syntax tree of a parsed template. One node type for expressions and one for
// statements keeps the tree compact; `kind` says which fields are used.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/template/value.h"

namespace kaon::jinja {

enum class ExprKind {
  kConst, kName, kGetattr, kGetitem, kSlice, kCall, kFilter, kTest, kNeg, kPos, kNot, kAnd, kOr,
  kBinary, kCompare, kConcat, kCondExpr, kList, kTuple, kDict
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  int line = 0;
  Value constant;                // kConst
  std::string name;              // kName, kGetattr attribute, kFilter/kTest name, kBinary operator
  // Operands: kGetattr {obj}; kGetitem {obj, key}; kSlice {start, stop, step} (null = omitted);
  // kCall {callee, args...}; kFilter/kTest {subject (null in filter blocks), args...};
  // unary ops {operand}; kAnd/kOr/kBinary {lhs, rhs}; kCompare {first, operands...};
  // kConcat/kList/kTuple items; kDict {key, value, key, value...}; kCondExpr {test, then, else|null}.
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall/kFilter/kTest keyword arguments
  std::vector<std::string> ops;  // kCompare operators: == != < <= > >= in notin
  ExprPtr dyn_args;              // *args
  ExprPtr dyn_kwargs;            // **kwargs
  bool negated = false;          // kTest: `is not`
};

enum class StmtKind {
  kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kCallBlock, kFilterBlock, kBreak, kContinue, kWith,
  kGeneration
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;  // kText data; kMacro name
  ExprPtr expr;      // kOutput value; kSet value; kFor iterable; kCallBlock call; kFilterBlock/kSetBlock filter
  ExprPtr target;    // kSet/kSetBlock/kFor target: kName, kTuple of names, or kGetattr (namespace attribute)
  ExprPtr cond;      // kFor inline `if`
  Body body;         // kFor/kMacro/kCallBlock/kFilterBlock/kSetBlock/kWith/kGeneration body
  Body else_body;    // kFor/kIf else
  bool recursive = false;                             // kFor
  std::vector<std::pair<ExprPtr, Body>> branches;     // kIf: if and elif arms
  std::vector<std::string> params;                    // kMacro/kCallBlock parameters; kWith names
  std::vector<ExprPtr> defaults;                      // parallel to params; null = required; kWith values
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;  // kMacro/kCallBlock
};

}  // namespace kaon::jinja
