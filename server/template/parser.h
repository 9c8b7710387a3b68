// Recursive-descent parser with jinja2's grammar and operator precedence.
#pragma once

#include <string>

#include "server/template/ast.h"
#include "server/template/lexer.h"

namespace kaon::jinja {

// Throws ParseError (with line and column) on malformed templates.
Body ParseTemplate(const std::string& source);

}  // namespace kaon::jinja
