// ParseJsonBounded: the same values as nlohmann's own parser, limits enforced
// while parsing (just below and just above each), and Python dict semantics
// for repeated keys.
#include "server/common/bounded_json.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;

std::string Nested(int depth, char open, char close) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open == '{' ? "{\"a\":" : std::string(1, open);
  s += "1";
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(BoundedJson, SameValuesAsNlohmann) {
  const char* docs[] = {
      R"({"model": "m", "prompt": ["a", "b"], "n": 2, "t": 0.5, "x": null, "y": true, "z": -3})",
      R"([1, 2.5, "\u00e9\ud83d\ude00", {"k": [[], {}]}, 18446744073709551615, -9223372036854775808])",
      R"("just a string")",
      R"(  {"z": 1, "a": 2, "m": {"q": [1, {"r": []}]}}  )",
      "3",
  };
  for (const char* d : docs) {
    BoundedJsonResult r = ParseJsonBounded(d, JsonLimits{});
    ASSERT_TRUE(r.ok()) << d << ": " << r.error->message;
    const Json expected = Json::parse(d);
    EXPECT_EQ(r.value, expected) << d;
    // Same key order, same number types.
    EXPECT_EQ(r.value.dump(), expected.dump()) << d;
  }
}

TEST(BoundedJson, DepthLimitJustBelowAndAbove) {
  JsonLimits limits;
  limits.max_depth = 128;
  for (char open : {'[', '{'}) {
    const char close = open == '[' ? ']' : '}';
    EXPECT_TRUE(ParseJsonBounded(Nested(128, open, close), limits).ok()) << open;
    BoundedJsonResult over = ParseJsonBounded(Nested(129, open, close), limits);
    ASSERT_FALSE(over.ok()) << open;
    EXPECT_EQ(over.error->kind, JsonParseFailure::kDepth);
    EXPECT_NE(over.error->message.find("128"), std::string::npos) << over.error->message;
  }
}

TEST(BoundedJson, DeepDocumentFailsWithoutRecursing) {
  // A million levels would overflow any recursive parser's stack; the limit
  // stops it at level 129, and unclosed brackets do not matter.
  const std::string deep(1'000'000, '[');
  BoundedJsonResult r = ParseJsonBounded(deep, JsonLimits{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, JsonParseFailure::kDepth);
}

TEST(BoundedJson, ElementLimitJustBelowAndAbove) {
  JsonLimits limits;
  limits.max_elements = 5;
  // The array and its four numbers: five values.
  EXPECT_TRUE(ParseJsonBounded("[1, 2, 3, 4]", limits).ok());
  BoundedJsonResult over = ParseJsonBounded("[1, 2, 3, 4, 5]", limits);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error->kind, JsonParseFailure::kElements);
  EXPECT_NE(over.error->message.find("5"), std::string::npos);
  // Object members count as values; keys do not.
  EXPECT_TRUE(ParseJsonBounded(R"({"a": 1, "b": [2, 3]})", limits).ok());
  EXPECT_FALSE(ParseJsonBounded(R"({"a": 1, "b": [2, 3, 4]})", limits).ok());
}

TEST(BoundedJson, RepeatedKeysLastValueAtFirstPosition) {
  // Python: json.loads('{"a": 1, "b": 2, "a": 3}') == {"a": 3, "b": 2}, in that order.
  BoundedJsonResult r = ParseJsonBounded(R"({"a": 1, "b": 2, "a": {"x": [3]}})", JsonLimits{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.dump(), R"({"a":{"x":[3]},"b":2})");
}

TEST(BoundedJson, RepeatedKeysInLargeObjects) {
  // Past the linear-scan size the index takes over; same semantics.
  std::string body = "{";
  for (int i = 0; i < 1000; ++i) body += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  body += "\"k3\": \"again\", \"k999\": -1, \"new\": 7}";
  BoundedJsonResult r = ParseJsonBounded(body, JsonLimits{});
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(r.value.size(), 1001u);
  auto it = r.value.begin();
  EXPECT_EQ(it.key(), "k0");
  std::advance(it, 3);
  EXPECT_EQ(it.key(), "k3");
  EXPECT_EQ(it.value(), "again");
  EXPECT_EQ(r.value["k999"], -1);
  EXPECT_EQ((--r.value.end()).key(), "new");
}

TEST(BoundedJson, SyntaxErrors) {
  for (const char* bad : {"{", "[1,]", "{\"a\" 1}", "tru", "{} x", "", "\"\\x\""}) {
    BoundedJsonResult r = ParseJsonBounded(bad, JsonLimits{});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error->kind, JsonParseFailure::kSyntax) << bad;
    EXPECT_FALSE(r.error->message.empty());
    EXPECT_EQ(r.error->message.find("[json.exception"), std::string::npos) << r.error->message;
  }
  // Overflowing numbers, as nlohmann refuses them (no JSON value is infinite).
  EXPECT_FALSE(ParseJsonBounded("[1e400]", JsonLimits{}).ok());
  EXPECT_TRUE(ParseJsonBounded("[1e-400]", JsonLimits{}).ok());
  // Ill-formed UTF-8 inside a string is a syntax error, as in nlohmann's lexer.
  EXPECT_FALSE(ParseJsonBounded("\"\xff\"", JsonLimits{}).ok());
}

TEST(BoundedJson, ObjectKeyLimitJustBelowAndAbove) {
  JsonLimits limits;
  limits.max_object_keys = 20;  // past the linear-scan size, so the index counts
  auto object = [](int keys, bool repeat_last) {
    std::string s = "{";
    for (int i = 0; i < keys; ++i) s += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
    if (repeat_last) s += ",\"k0\":2";  // a repeated key is not a new one
    return s + "}";
  };
  EXPECT_TRUE(ParseJsonBounded(object(20, true), limits).ok());
  BoundedJsonResult over = ParseJsonBounded(object(21, false), limits);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error->kind, JsonParseFailure::kKeys);
}

// Random documents, written with random whitespace, must parse to the very
// values (and number types) nlohmann's own parser gives; random corruptions
// of them must be accepted or refused by both alike.
class RandomJson {
 public:
  explicit RandomJson(uint32_t seed) : rng_(seed) {}

  std::string Document() {
    std::string s;
    Value(0, s);
    return s;
  }
  std::mt19937& rng() { return rng_; }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  void Space(std::string& s) {
    static const char* kSpaces[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    s += kSpaces[Pick(7)];
  }
  void String(std::string& s) {
    static const char* kPieces[] = {"a", "Z", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00",
                                    "\\u0000", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\\t",
                                    "abcdefghijklmnopq", "\\b\\f\\r"};
    s += '"';
    for (int n = Pick(6); n > 0; --n) s += kPieces[Pick(16)];
    s += '"';
  }
  void Number(std::string& s) {
    static const char* kNumbers[] = {"0", "-0", "7", "-12", "3.25", "-0.5e-3", "1E+5", "2e10", "18446744073709551615",
                                     "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
                                     "123456789012345678901234567890", "1e300", "-1e-400", "0.1", "4.9e-324"};
    s += kNumbers[Pick(17)];
  }
  void Value(int depth, std::string& s) {
    const int kind = depth > 5 ? Pick(4) : Pick(6);
    switch (kind) {
      case 0: String(s); break;
      case 1: Number(s); break;
      case 2: s += Pick(2) ? "true" : "false"; break;
      case 3: s += "null"; break;
      case 4: {
        s += '[';
        for (int i = 0, n = Pick(5); i < n; ++i) {
          if (i) s += ',';
          Space(s);
          Value(depth + 1, s);
          Space(s);
        }
        s += ']';
        break;
      }
      default: {
        s += '{';
        // Few distinct keys, so repeats happen; sometimes many, for the index.
        const int n = Pick(8) == 0 ? 40 : Pick(5);
        for (int i = 0; i < n; ++i) {
          if (i) s += ',';
          Space(s);
          s += "\"k" + std::to_string(Pick(n > 5 ? 30 : 4)) + "\"";
          Space(s);
          s += ':';
          Space(s);
          Value(depth + 1, s);
        }
        s += '}';
      }
    }
  }

  std::mt19937 rng_;
};

// Same values and the same number types throughout.
void ExpectIdentical(const Json& a, const Json& b, const std::string& doc) {
  ASSERT_EQ(a.type(), b.type()) << doc;
  if (a.is_object()) {
    ASSERT_EQ(a.size(), b.size()) << doc;
    for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
      ASSERT_EQ(ia.key(), ib.key()) << doc;
      ExpectIdentical(ia.value(), ib.value(), doc);
    }
  } else if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << doc;
    for (size_t i = 0; i < a.size(); ++i) ExpectIdentical(a[i], b[i], doc);
  } else if (a.is_number_float()) {
    const double x = a.get<double>(), y = b.get<double>();
    ASSERT_TRUE(x == y || (x != x && y != y)) << doc;
  } else {
    ASSERT_EQ(a, b) << doc;
  }
}

TEST(BoundedJson, AgreesWithNlohmannOnRandomDocuments) {
  RandomJson gen(12345);
  for (int i = 0; i < 3000; ++i) {
    const std::string doc = gen.Document();
    const Json expected = Json::parse(doc);  // valid by construction
    BoundedJsonResult r = ParseJsonBounded(doc, JsonLimits{});
    ASSERT_TRUE(r.ok()) << doc << ": " << r.error->message;
    ExpectIdentical(r.value, expected, doc);
  }
}

TEST(BoundedJson, AgreesWithNlohmannOnCorruptedDocuments) {
  RandomJson gen(777);
  std::mt19937& rng = gen.rng();
  int both_refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string doc = gen.Document();
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !doc.empty(); ++e) {
      const size_t at = rng() % doc.size();
      switch (rng() % 3) {
        case 0: doc.erase(at, 1); break;
        case 1: doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng() % 256)); break;
        default: doc[at] = static_cast<char>(rng() % 256);
      }
    }
    // nlohmann skips a leading UTF-8 byte order mark and takes a NUL byte for
    // the end of its input (ignoring what follows); this parser refuses both.
    if (doc.rfind("\xEF\xBB\xBF", 0) == 0 || doc.find('\0') != std::string::npos) continue;
    const Json expected = Json::parse(doc, nullptr, /*allow_exceptions=*/false);
    BoundedJsonResult r = ParseJsonBounded(doc, JsonLimits{});
    ASSERT_EQ(r.ok(), !expected.is_discarded()) << doc << (r.ok() ? "" : ": " + r.error->message);
    if (r.ok()) ExpectIdentical(r.value, expected, doc);
    else ++both_refused;
  }
  EXPECT_GT(both_refused, 1000);  // the corruptions did reach the error paths
}

TEST(BoundedJson, LongBadTokenGivesShortMessage) {
  // nlohmann quotes the token it read last; a megabyte string must not
  // become a megabyte error message.
  const std::string bad = "\"" + std::string(1 << 20, 'a') + "\x01\"";
  BoundedJsonResult r = ParseJsonBounded(bad, JsonLimits{});
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error->message.size(), 300u);
}

}  // namespace
}  // namespace kaon
