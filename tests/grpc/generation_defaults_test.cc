// generation_config.json's sampling defaults apply the same way through every
// front end: `kaon generate`, HTTP and gRPC. A copy of stories260k whose
// generation_config.json says temperature 0 must answer two requests that do
// not set a temperature identically, with exactly the greedy tokens; a
// request's own temperature still wins. The checks have teeth because the
// bundled model (no sampling defaults, so temperature 1) gives other tokens.
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/model_copy.h"
#include "tests/cli/run_command.h"
#include "tests/grpc/grpc_test_util.h"

namespace kaon::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr const char* kPrompt = "Once upon a time";
constexpr int kMaxTokens = 48;

// stories260k with `edit` applied to its generation_config.json.
std::string WithGenerationConfig(const std::function<void(Json&)>& edit) {
  return CopyModel(BundledModelDir(), [&](const fs::path& d) {
    Json j = Json::parse(std::ifstream(d / "generation_config.json"));
    edit(j);
    std::ofstream(d / "generation_config.json") << j.dump(2);
  });
}

std::string GreedyCopy() {
  return WithGenerationConfig([](Json& j) { j["temperature"] = 0; });
}

// `kaon generate DIR --prompt ... --json FLAGS`: the generated ids.
Json GenerateIds(const std::string& dir, const std::string& flags) {
  const CommandResult r = RunCommand(BinDir() + "/kaon generate " + dir + " --prompt '" + kPrompt +
                                     "' --max-tokens " + std::to_string(kMaxTokens) + " --ignore-eos --json " + flags);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? Json::parse(r.out)["token_ids"] : Json();
}

TEST(GenerationDefaults, KaonGenerate) {
  const std::string dir = GreedyCopy();
  const Json a = GenerateIds(dir, ""), b = GenerateIds(dir, "");
  ASSERT_EQ(a.size(), static_cast<size_t>(kMaxTokens));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, GenerateIds(dir, "--temperature 0"));
  // Without the default (the bundled model) the same flags sample other tokens.
  EXPECT_NE(a, GenerateIds(BundledModelDir(), "--seed 1"));
  // An explicit flag wins over the model's default.
  EXPECT_EQ(GenerateIds(dir, "--temperature 1 --seed 1"), GenerateIds(BundledModelDir(), "--seed 1"));
  fs::remove_all(dir);
}

// One server answers both front ends, so HTTP and gRPC are compared with the
// same process and the same greedy reference.
class GenerationDefaultsServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(GreedyCopy());
    server_ = new GrpcServerProcess();
    ASSERT_TRUE(server_->Start({}, {}, *dir_)) << "kaon serve did not start";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    fs::remove_all(*dir_);
    delete dir_;
  }

  // /v1/completions text; `extra` is merged into the body.
  static Json HttpText(const Json& extra) {
    Json body = {{"prompt", kPrompt}, {"max_tokens", kMaxTokens}, {"ignore_eos", true}};
    if (extra.is_object()) body.update(extra);
    Connection c(server_->http_port());
    std::optional<HttpResponse> r = c.Request("POST", "/v1/completions", body.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    if (!r || r->status != 200) return Json();
    return Json::parse(r->body)["choices"][0]["text"];
  }

  static StreamResult GrpcStream(const std::optional<float>& temperature) {
    std::unique_ptr<kaon::v1::Generation::Stub> stub = kaon::v1::Generation::NewStub(server_->Channel());
    kaon::v1::GenerateRequest req;
    req.set_text(kPrompt);
    req.set_max_tokens(kMaxTokens);
    req.set_ignore_eos(true);
    if (temperature) req.set_temperature(*temperature);
    StreamResult r = Stream(*stub, req);
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    return r;
  }

  static std::string* dir_;
  static GrpcServerProcess* server_;
};
std::string* GenerationDefaultsServer::dir_ = nullptr;
GrpcServerProcess* GenerationDefaultsServer::server_ = nullptr;

TEST_F(GenerationDefaultsServer, Http) {
  const Json a = HttpText({}), b = HttpText({{"temperature", nullptr}});
  ASSERT_TRUE(a.is_string());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, HttpText({{"temperature", 0}}));
  // The request's own temperature wins: seeded temperature 1 is not greedy.
  EXPECT_NE(a, HttpText({{"temperature", 1}, {"seed", 1}}));
}

TEST_F(GenerationDefaultsServer, Grpc) {
  const StreamResult a = GrpcStream(std::nullopt), b = GrpcStream(std::nullopt);
  ASSERT_EQ(a.token_ids.size(), static_cast<size_t>(kMaxTokens));
  EXPECT_EQ(a.token_ids, b.token_ids);
  EXPECT_EQ(a.token_ids, GrpcStream(0.0f).token_ids);
  // The same greedy text as HTTP, from the same server.
  EXPECT_EQ(Json(a.text), HttpText({{"temperature", 0}}));
}

TEST(GenerationDefaults, DefaultNoRequestCouldSendIsRefusedAtStartUp) {
  const std::string dir = WithGenerationConfig([](Json& j) { j["top_p"] = 0; });
  const std::string fragment = "generation_config.json: top_p must be in (0, 1], got 0";
  ExpectCleanFailure(RunCommand(BinDir() + "/kaon generate " + dir + " --prompt hi --max-tokens 2"), {fragment});
  ExpectCleanFailure(RunCommand("timeout 60 " + BinDir() + "/kaon serve " + dir + " --port 0"), {fragment});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kaon::testing
