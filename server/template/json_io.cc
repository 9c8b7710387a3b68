#include "server/template/json_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "server/template/text.h"

namespace kaon::jinja {

namespace {

Value FromJsonAt(const nlohmann::ordered_json& j, Budget& budget, int depth) {
  using T = nlohmann::ordered_json::value_t;
  budget.Charge(1);
  if ((j.is_array() || j.is_object()) && depth >= kMaxInputNesting)
    ThrowLimit("the input nests deeper than " + std::to_string(kMaxInputNesting) + " levels");
  switch (j.type()) {
    case T::null: return Value::None();
    case T::boolean: return Value(j.get<bool>());
    case T::number_integer: return Value(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case T::number_float: return Value(j.get<double>());
    case T::string: {
      const auto& s = j.get_ref<const std::string&>();
      budget.ChargeBytes(s.size());
      return Value(s);
    }
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(FromJsonAt(e, budget, depth + 1));
      return Value::MakeList(std::move(items));
    }
    case T::object: {
      auto d = std::make_shared<DictData>();
      d->items.reserve(j.size());
      // Client JSON has unique keys, so appending keeps Python's insertion order.
      for (const auto& [k, v] : j.items()) d->items.emplace_back(Value(k), FromJsonAt(v, budget, depth + 1));
      return Value(std::move(d));
    }
    default: ThrowError("unsupported JSON value in chat template input");
  }
}

}  // namespace

Value FromJson(const nlohmann::ordered_json& j, Budget& budget) { return FromJsonAt(j, budget, 0); }

namespace {

void DumpString(std::string_view s, bool ensure_ascii, std::string& out) {
  out.push_back('"');
  auto hex4 = [&](unsigned v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "\\u%04x", v & 0xFFFFu);
    out += buf;
  };
  if (!ensure_ascii || IsAscii(s)) {
    for (char ch : s) {
      unsigned char c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) hex4(c);
          else out.push_back(ch);
      }
    }
  } else {
    for (char32_t c : DecodeUtf8(s)) {
      if (c < 0x80) {
        std::string one(1, static_cast<char>(c));
        std::string tmp;
        DumpString(one, false, tmp);
        out.append(tmp, 1, tmp.size() - 2);
      } else if (c < 0x10000) {
        hex4(c);
      } else {
        char32_t v = c - 0x10000;
        hex4(0xD800 + (v >> 10));
        hex4(0xDC00 + (v & 0x3FF));
      }
    }
  }
  out.push_back('"');
}

std::string FloatJson(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return PyFloatRepr(d);
}

// Python's json turns non-string keys into strings.
std::string KeyString(const Value& k) {
  switch (k.kind()) {
    case Value::kString: return k.str();
    case Value::kBool: return k.as_bool() ? "true" : "false";
    case Value::kNone: return "null";
    case Value::kInt: return std::to_string(k.as_int());
    case Value::kFloat: return FloatJson(k.as_float());
    default: ThrowError("keys must be str, int, float, bool or None, not " + TypeName(k));
  }
}

// The output is checked after every element: one long string can appear many
// times in a list, and indentation grows with depth.
void Dump(const Value& v, const JsonDumpOptions& o, int level, std::string& out, Budget& budget) {
  auto newline = [&](int lvl) {
    budget.ChargeBytes(static_cast<size_t>(lvl) * o.indent->size());
    budget.CheckString(out.size() + 1 + static_cast<size_t>(lvl) * o.indent->size());
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += *o.indent;
  };
  switch (v.kind()) {
    case Value::kNone: out += "null"; return;
    case Value::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::kInt: out += std::to_string(v.as_int()); return;
    case Value::kFloat: out += FloatJson(v.as_float()); return;
    case Value::kString:
      budget.ChargeBytes(v.str().size());
      // Checked before writing (escaping only grows a string) and after (by at
      // most six times, for \u00XX).
      budget.CheckString(out.size() + v.str().size());
      DumpString(v.str(), o.ensure_ascii, out);
      budget.CheckString(out.size());
      return;
    case Value::kList: {
      const auto& items = v.list()->items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      Budget::Nesting nesting(budget);
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent) newline(level + 1);
        Dump(items[i], o, level + 1, out, budget);
        budget.Charge(1);
        budget.CheckString(out.size());
      }
      if (o.indent) newline(level);
      out.push_back(']');
      return;
    }
    case Value::kDict: {
      if (v.dict()->is_namespace) break;
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& kv : v.dict()->items) items.push_back(&kv);
      if (items.empty()) {
        out += "{}";
        return;
      }
      Budget::Nesting nesting(budget);
      budget.Charge(items.size());
      if (o.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [&](const auto* a, const auto* b) { return Less(a->first, b->first, budget); });
      out.push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent) newline(level + 1);
        const std::string key = KeyString(items[i]->first);
        budget.ChargeBytes(key.size());
        DumpString(key, o.ensure_ascii, out);
        out += o.key_separator;
        Dump(items[i]->second, o, level + 1, out, budget);
        budget.Charge(1);
        budget.CheckString(out.size());
      }
      if (o.indent) newline(level);
      out.push_back('}');
      return;
    }
    default: break;
  }
  ThrowError("Object of type " + TypeName(v) + " is not JSON serializable");
}

}  // namespace

std::string DumpJson(const Value& v, const JsonDumpOptions& options, Budget& budget) {
  std::string out;
  Dump(v, options, 0, out, budget);
  return out;
}

}  // namespace kaon::jinja
