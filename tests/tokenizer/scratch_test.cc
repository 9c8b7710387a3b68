// Per-thread tokenizer buffers are kept for reuse at normal sizes but given
// back after a large input (server/tokenizer/scratch.h): one big prompt must
// not leave its buffers pinned to the thread.
#include <malloc.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "server/tokenizer/scratch.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/tokenizer/test_tokenizers.h"

namespace kaon {
namespace {

std::unique_ptr<Tokenizer> ByteLevel() {
  auto t = Tokenizer::FromJsonString(testing::ByteLevelTokenizerJson().dump(), "tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

// Many short words (a long pre-token list) and one 2 MB word (long BPE
// symbol and merge-queue buffers, a long regex match).
std::string LargeInput() {
  std::string text;
  text.reserve(10 << 20);
  while (text.size() < (8 << 20)) text += "hello world ";
  text += std::string(2 << 20, 'l');
  return text;
}

TEST(TokenizerScratch, KeptAtNormalSizesGivenBackAfterALargeInput) {
  std::unique_ptr<Tokenizer> t = ByteLevel();
  ASSERT_NE(t, nullptr);
  std::thread worker([&] {
    std::string normal;
    while (normal.size() < 2000) normal += "hello world ";
    t->Encode(normal, false);
    // The fast path: buffers stay for the next call.
    const size_t kept = ThreadScratchBytes();
    EXPECT_GT(kept, 0u);
    EXPECT_LE(kept, 3 * kScratchKeepBytes);

    const std::vector<int32_t> ids = t->Encode(LargeInput(), false);
    EXPECT_GT(ids.size(), 1'000'000u);
    EXPECT_LE(ThreadScratchBytes(), 3 * kScratchKeepBytes);
  });
  worker.join();
}

// The same seen from the allocator: bytes in use on the thread come back to
// where they were, whatever buffer held them.
TEST(TokenizerScratch, LargeInputLeavesNoHeapBehind) {
  std::unique_ptr<Tokenizer> t = ByteLevel();
  ASSERT_NE(t, nullptr);
  const std::string input = LargeInput();
  auto in_use = [] {
    const struct mallinfo2 m = mallinfo2();
    return static_cast<int64_t>(m.uordblks + m.hblkhd);
  };
  std::thread worker([&] {
    t->Encode("hello world", false);  // creates this thread's buffers
    const int64_t before = in_use();
    { const std::vector<int32_t> ids = t->Encode(input, false); }
    const int64_t after = in_use();
    EXPECT_LT(after - before, int64_t{2} << 20) << "bytes still held after the encode: " << after - before;
  });
  worker.join();
}

}  // namespace
}  // namespace kaon
