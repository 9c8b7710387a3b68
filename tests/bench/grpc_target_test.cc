// --base-url for --backend kaon-grpc: grpc://host:port or host:port.
#include <stdexcept>

#include "bench/kaon_bench/grpc_client.h"
#include "gtest/gtest.h"

namespace kaon::bench {
namespace {

TEST(KaonBenchGrpcTarget, Parses) {
  EXPECT_EQ(ParseGrpcTarget("grpc://127.0.0.1:50051"), "127.0.0.1:50051");
  EXPECT_EQ(ParseGrpcTarget("127.0.0.1:50051"), "127.0.0.1:50051");
  EXPECT_EQ(ParseGrpcTarget("grpc://localhost:9000/"), "localhost:9000");
  EXPECT_EQ(ParseGrpcTarget("[::1]:9000"), "[::1]:9000");
  EXPECT_THROW(ParseGrpcTarget("http://127.0.0.1:8000"), std::runtime_error);
  EXPECT_THROW(ParseGrpcTarget("127.0.0.1"), std::runtime_error);  // no port
  EXPECT_THROW(ParseGrpcTarget("[::1]"), std::runtime_error);
  EXPECT_THROW(ParseGrpcTarget("grpc://host:port"), std::runtime_error);
  EXPECT_THROW(ParseGrpcTarget("grpc://host:1/path"), std::runtime_error);
}

TEST(KaonBenchGrpcTarget, ChannelsPer64Streams) {
  EXPECT_EQ(GrpcChannelsFor(0, 1), 1);
  EXPECT_EQ(GrpcChannelsFor(64, 1000), 1);
  EXPECT_EQ(GrpcChannelsFor(65, 1000), 2);
  EXPECT_EQ(GrpcChannelsFor(1000, 20), 1);    // never more streams than requests
  EXPECT_EQ(GrpcChannelsFor(0, 1000), 16);    // unlimited: every request at once
  EXPECT_EQ(GrpcChannelsFor(0, 100000), 64);  // capped
}

}  // namespace
}  // namespace kaon::bench
