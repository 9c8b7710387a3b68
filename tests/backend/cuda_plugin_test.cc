// Finding and opening the CUDA plugin: a missing dependency is named in one
// line with the folders searched, the built plugin's RUNPATH covers a
// standard CUDA install, and (where this build has the plugin and the
// machine the toolkit) it opens without LD_LIBRARY_PATH and sees no device
// on a machine without one.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "server/backend/cuda_plugin.h"

namespace kaon {
namespace {

TEST(CudaPlugin, AMissingDependencyIsNamedWithWhereItWasLookedFor) {
  const std::string msg = DescribeLoadError(
      "/opt/kaon/bin/libkaon_cuda.so", "libcublasLt.so.13: cannot open shared object file: No such file or directory");
  EXPECT_NE(msg.find("needs libcublasLt.so.13"), std::string::npos) << msg;
  EXPECT_NE(msg.find("LD_LIBRARY_PATH"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/usr/local/cuda/lib64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/usr/local/cuda/targets/x86_64-linux/lib"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  // Other failures keep the loader's words.
  EXPECT_EQ(DescribeLoadError("/x/libkaon_cuda.so", "undefined symbol: foo"), "/x/libkaon_cuda.so: undefined symbol: foo");
}

std::string Capture(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string PluginPath() {
  const char* bin = std::getenv("KAON_BIN_DIR");
  return bin == nullptr ? "" : std::string(bin) + "/" + kCudaPluginFile;
}

TEST(CudaPlugin, ItsRunpathCoversAStandardCudaInstall) {
  const std::string plugin = PluginPath();
  if (plugin.empty() || !std::filesystem::exists(plugin)) GTEST_SKIP() << "this build has no CUDA plugin";
  const std::string dynamic = Capture("readelf -d '" + plugin + "' 2>&1");
  ASSERT_NE(dynamic.find("RUNPATH"), std::string::npos) << dynamic;
  EXPECT_NE(dynamic.find("/usr/local/cuda/lib64"), std::string::npos) << dynamic;
  EXPECT_NE(dynamic.find("/usr/local/cuda/targets/x86_64-linux/lib"), std::string::npos) << dynamic;
  EXPECT_NE(dynamic.find("$ORIGIN"), std::string::npos) << dynamic;
  // Without LD_LIBRARY_PATH the loader resolves every dependency here,
  // where the toolkit sits at /usr/local/cuda.
  if (!std::filesystem::exists("/usr/local/cuda/lib64")) GTEST_SKIP() << "no CUDA toolkit at /usr/local/cuda";
  const std::string ldd = Capture("env -u LD_LIBRARY_PATH ldd '" + plugin + "' 2>&1");
  EXPECT_EQ(ldd.find("not found"), std::string::npos) << ldd;
  EXPECT_NE(ldd.find("libcublasLt"), std::string::npos) << ldd;
}

}  // namespace
}  // namespace kaon
