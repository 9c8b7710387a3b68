#include "server/loading/safetensors.h"

#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/loading/safetensors_file.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;

// Asserts `status` is an error whose one-line message names every `needle`
// (file, tensor, field).
void ExpectError(const absl::Status& status, std::initializer_list<std::string> needles) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning " << *needles.begin();
  const std::string msg(status.message());
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line error: " << msg;
  for (const std::string& needle : needles) {
    EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  }
}

std::vector<float> ToF32(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ConvertToF32(t, 0, out.size(), out.data());
  return out;
}

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// ---------------------------------------------------------------------------
// Shipped checkpoints.

TEST(SafetensorsTest, Stories260kSingleFile) {
  auto store = WeightStore::Open(testing::BundledModelDir());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Names().size(), 47u);

  auto embed = (*store)->Get("model.embed_tokens.weight", {512, 64});
  ASSERT_TRUE(embed.ok()) << embed.status();
  EXPECT_EQ(embed->dtype, DType::kF32);
  EXPECT_EQ(embed->numel(), 512 * 64);
  EXPECT_EQ(embed->nbytes, 512u * 64u * 4u);
  EXPECT_NE(embed->file.find("model.safetensors"), std::string::npos);
  ASSERT_NE(embed->data, nullptr);

  // F32 conversion is a plain copy of the mapped bytes.
  std::vector<float> f = ToF32(*embed);
  EXPECT_EQ(std::memcmp(f.data(), embed->data, embed->nbytes), 0);
  // A trained embedding is not all zeros; a wrong data offset tends to read
  // header text or zeros.
  double sumsq = 0;
  for (float x : f) sumsq += double(x) * x;
  EXPECT_GT(sumsq, 0.0);
  EXPECT_TRUE(std::isfinite(sumsq));

  auto norm = (*store)->Get("model.layers.0.input_layernorm.weight", {64});
  ASSERT_TRUE(norm.ok()) << norm.status();
  EXPECT_EQ(norm->nbytes, 256u);

  EXPECT_TRUE((*store)->Has("model.norm.weight"));
  EXPECT_FALSE((*store)->Has("__metadata__"));
}

TEST(SafetensorsTest, GetReportsMissingTensorAndWrongShape) {
  const std::string dir = testing::TestModelDir("tiny-qwen2");
  auto store = WeightStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();

  auto missing = (*store)->Get("model.layers.9.mlp.up_proj.weight");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  ExpectError(missing.status(), {"model.layers.9.mlp.up_proj.weight", dir});

  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  ASSERT_TRUE((*store)->Get(q, {64, 64}).ok());
  auto wrong = (*store)->Get(q, {128, 64});
  ExpectError(wrong.status(), {dir + "/model.safetensors: tensor " + q +
                               " has shape [64, 64], expected [128, 64]"});
}

TEST(SafetensorsTest, ShardedMatchesSingleFileByteForByte) {
  auto sharded = WeightStore::Open(testing::TestModelDir("tiny-qwen2-sharded"));
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  auto single = WeightStore::Open(testing::TestModelDir("tiny-qwen2"));
  ASSERT_TRUE(single.ok()) << single.status();

  const std::vector<std::string> names = (*sharded)->Names();
  EXPECT_EQ(names.size(), 26u);
  EXPECT_EQ(names, (*single)->Names());
  bool saw_shard1 = false, saw_shard2 = false;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto a = (*sharded)->Get(name);
    auto b = (*single)->Get(name);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(a->dtype, b->dtype);
    EXPECT_EQ(a->shape, b->shape);
    ASSERT_EQ(a->nbytes, b->nbytes);
    EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0);
    saw_shard1 |= a->file.find("model-00001-of-00002.safetensors") != std::string::npos;
    saw_shard2 |= a->file.find("model-00002-of-00002.safetensors") != std::string::npos;
  }
  EXPECT_TRUE(saw_shard1);
  EXPECT_TRUE(saw_shard2);
  auto l1 = (*sharded)->Get("model.layers.1.mlp.up_proj.weight");
  ASSERT_TRUE(l1.ok());
  EXPECT_NE(l1->file.find("model-00002-of-00002.safetensors"), std::string::npos);
}

TEST(SafetensorsTest, MistralIsBf16AndWidensByShifting) {
  auto store = WeightStore::Open(testing::TestModelDir("tiny-mistral"));
  ASSERT_TRUE(store.ok()) << store.status();
  for (const std::string& name : (*store)->Names()) {
    EXPECT_EQ((*store)->Get(name)->dtype, DType::kBF16) << name;
  }
  auto t = (*store)->Get("model.embed_tokens.weight", {512, 64});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->nbytes, 512u * 64u * 2u);
  std::vector<float> f = ToF32(*t);
  size_t nonzero = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    uint16_t raw;
    std::memcpy(&raw, t->data + 2 * i, 2);
    ASSERT_EQ(FloatBits(f[i]), uint32_t{raw} << 16) << "element " << i;
    nonzero += raw != 0;
  }
  EXPECT_GT(nonzero, f.size() / 2);

  // A sub-range starts at the right element.
  std::vector<float> part(5);
  ConvertToF32(*t, 1000, part.size(), part.data());
  for (size_t i = 0; i < part.size(); ++i) EXPECT_EQ(FloatBits(part[i]), FloatBits(f[1000 + i]));
}

// ---------------------------------------------------------------------------
// F16 widening.

TensorView F16View(const std::vector<uint16_t>& halves) {
  TensorView t;
  t.name = "f16";
  t.dtype = DType::kF16;
  t.shape = {static_cast<int64_t>(halves.size())};
  t.data = reinterpret_cast<const std::byte*>(halves.data());
  t.nbytes = halves.size() * 2;
  return t;
}

TEST(SafetensorsF16, KnownValues) {
  const std::vector<uint16_t> h = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0xFC00,
                                   0x7E00, 0x0000, 0x8000, 0x3555, 0x03FF, 0x0400};
  std::vector<float> f = ToF32(F16View(h));
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], -2.0f);
  EXPECT_EQ(f[2], 65504.0f);
  EXPECT_EQ(f[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(f[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(f[5], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f[6]));
  EXPECT_EQ(FloatBits(f[7]), 0x00000000u);
  EXPECT_EQ(FloatBits(f[8]), 0x80000000u);         // -0 keeps its sign
  EXPECT_EQ(f[9], 0.25f + 341.0f / 4096.0f);       // 0.333251953125
  EXPECT_EQ(f[10], 1023 * std::ldexp(1.0f, -24));  // largest subnormal
  EXPECT_EQ(f[11], std::ldexp(1.0f, -14));         // smallest normal
}

// Every one of the 65536 half patterns against the textbook formula.
TEST(SafetensorsF16, AllValuesMatchReference) {
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> f = ToF32(F16View(h));
  for (uint32_t i = 0; i < 65536; ++i) {
    const int sign = (i >> 15) ? -1 : 1;
    const int exp = (i >> 10) & 0x1f;
    const int mant = i & 0x3ff;
    if (exp == 31) {
      if (mant == 0) {
        ASSERT_EQ(f[i], sign * std::numeric_limits<float>::infinity()) << std::hex << i;
      } else {
        ASSERT_TRUE(std::isnan(f[i])) << std::hex << i;
        ASSERT_EQ(std::signbit(f[i]), sign < 0) << std::hex << i;
      }
      continue;
    }
    const double ref = exp == 0 ? sign * std::ldexp(double(mant), -24)
                                : sign * std::ldexp(1.0 + mant / 1024.0, exp - 15);
    ASSERT_EQ(double(f[i]), ref) << std::hex << i;
    ASSERT_EQ(std::signbit(f[i]), sign < 0) << std::hex << i;
  }
}

TEST(SafetensorsF16, UnalignedSourceAndOffset) {
  // Odd start address: reads must not assume 2-byte alignment.
  std::vector<unsigned char> buf = {0xAA, 0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B};
  TensorView t;
  t.name = "u";
  t.dtype = DType::kF16;
  t.shape = {3};
  t.data = reinterpret_cast<const std::byte*>(buf.data() + 1);
  t.nbytes = 6;
  float out[2] = {0, 0};
  ConvertToF32(t, 1, 2, out);
  EXPECT_EQ(out[0], -2.0f);
  EXPECT_EQ(out[1], 65504.0f);
}

// ---------------------------------------------------------------------------
// Crafted files.

class SafetensorsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "kaon_safetensors_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string WriteRaw(const std::string& name, const std::string& bytes) const {
    const std::string path = Path(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << path;
    return path;
  }

  // A safetensors file: little-endian u64 header length, header, data.
  static std::string Encode(const std::string& header, const std::string& data,
                            uint64_t header_len_override = 0) {
    const uint64_t n = header_len_override ? header_len_override : header.size();
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    return bytes + header + data;
  }

  std::string Write(const std::string& name, const std::string& header, const std::string& data) {
    return WriteRaw(name, Encode(header, data));
  }

  // Writes model.safetensors and opens the directory; returns the file path.
  absl::Status OpenSingle(const std::string& header, const std::string& data,
                          std::string* path = nullptr) {
    std::string p = Write("model.safetensors", header, data);
    if (path) *path = p;
    return WeightStore::Open(dir_).status();
  }

  // A tensor entry, by default two F32 values at the start of the data.
  static std::string Tensor(const std::string& dtype = "\"F32\"", const std::string& shape = "[2]",
                            const std::string& offsets = "[0, 8]") {
    return "{\"dtype\": " + dtype + ", \"shape\": " + shape + ", \"data_offsets\": " + offsets +
           "}";
  }

  std::string dir_;
};

TEST_F(SafetensorsFiles, WellFormedFileOpensAndDataIsUnaligned) {
  // Pad the header so the data section starts at an odd file offset.
  std::string header = "{\"__metadata__\": {\"format\": \"pt\"}, \"a\": " + Tensor() +
                       ", \"h\": " + Tensor("\"F16\"", "[2]", "[8, 12]") +
                       ", \"e\": " + Tensor("\"BF16\"", "[0, 3]", "[12, 12]") + "}";
  if ((8 + header.size()) % 2 == 0) header += " ";
  std::string data(12, '\0');
  const float a[2] = {1.5f, -3.25f};
  std::memcpy(data.data(), a, 8);
  const uint16_t h[2] = {0x3C00, 0xC000};
  std::memcpy(data.data() + 8, h, 4);
  ASSERT_TRUE(OpenSingle(header, data).ok());

  auto store = WeightStore::Open(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Names(), (std::vector<std::string>{"a", "e", "h"}));
  auto ta = (*store)->Get("a", {2});
  ASSERT_TRUE(ta.ok()) << ta.status();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta->data) % 2, 1u);
  EXPECT_EQ(ToF32(*ta), (std::vector<float>{1.5f, -3.25f}));
  auto th = (*store)->Get("h", {2});
  ASSERT_TRUE(th.ok()) << th.status();
  EXPECT_EQ(ToF32(*th), (std::vector<float>{1.0f, -2.0f}));
  auto te = (*store)->Get("e", {0, 3});
  ASSERT_TRUE(te.ok()) << te.status();
  EXPECT_EQ(te->numel(), 0);
  EXPECT_EQ(te->nbytes, 0u);
}

TEST_F(SafetensorsFiles, FileShorterThanEightBytes) {
  const std::string path = WriteRaw("model.safetensors", "\x10\0\0\0\0");
  ExpectError(WeightStore::Open(dir_).status(), {path, "too short"});
}

TEST_F(SafetensorsFiles, EmptyFile) {
  const std::string path = WriteRaw("model.safetensors", "");
  ExpectError(WeightStore::Open(dir_).status(), {path, "0 bytes"});
}

TEST_F(SafetensorsFiles, HeaderLengthPastEndOfFile) {
  const std::string header = "{\"a\": " + Tensor() + "}";
  const std::string path =
      WriteRaw("model.safetensors", Encode(header, std::string(8, '\0'), header.size() + 9));
  ExpectError(WeightStore::Open(dir_).status(), {path, "header length", "past the end"});
}

TEST_F(SafetensorsFiles, HeaderLengthAbsurd) {
  const std::string path = WriteRaw("model.safetensors", Encode("{}", "", uint64_t{1} << 40));
  ExpectError(WeightStore::Open(dir_).status(), {path, "header length", "limit"});
  const std::string path2 = WriteRaw("model.safetensors", Encode("{}", "", ~uint64_t{0}));
  ExpectError(WeightStore::Open(dir_).status(), {path2, "header length"});
}

TEST_F(SafetensorsFiles, HeaderNotJson) {
  std::string path;
  ExpectError(OpenSingle("{\"a\": {\"dtype\": ", "", &path), {path, "not valid JSON"});
  ExpectError(OpenSingle(std::string("{\"a\"\0\0", 6), "", &path), {path, "not valid JSON"});
}

TEST_F(SafetensorsFiles, HeaderNotObject) {
  std::string path;
  ExpectError(OpenSingle("[1, 2]", "", &path), {path, "expected an object"});
  ExpectError(OpenSingle("\"x\"", "", &path), {path, "expected an object"});
}

TEST_F(SafetensorsFiles, MetadataNotStrings) {
  std::string path;
  ExpectError(OpenSingle("{\"__metadata__\": {\"n\": 3}}", "", &path), {path, "__metadata__", "n"});
  ExpectError(OpenSingle("{\"__metadata__\": [1]}", "", &path), {path, "__metadata__"});
}

TEST_F(SafetensorsFiles, EntryNotObject) {
  std::string path;
  ExpectError(OpenSingle("{\"w.weight\": [0, 8]}", std::string(8, '\0'), &path),
              {path, "w.weight", "expected an object"});
}

TEST_F(SafetensorsFiles, MissingFields) {
  const std::string data(8, '\0');
  std::string path;
  ExpectError(OpenSingle("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", data, &path),
              {path, "tensor w", "dtype"});
  ExpectError(OpenSingle("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", data, &path),
              {path, "tensor w", "shape"});
  ExpectError(OpenSingle("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", data, &path),
              {path, "tensor w", "data_offsets"});
}

TEST_F(SafetensorsFiles, WrongFieldTypes) {
  const std::string data(8, '\0');
  std::string path;
  ExpectError(OpenSingle("{\"w\": " + Tensor("4") + "}", data, &path), {path, "tensor w", "dtype"});
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "2") + "}", data, &path),
              {path, "tensor w", "shape"});
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "{\"a\": 2}") + "}", data, &path),
              {path, "tensor w", "shape"});
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[2]", "\"0-8\"") + "}", data, &path),
              {path, "tensor w", "data_offsets"});
}

TEST_F(SafetensorsFiles, NegativeOrNonIntegerDims) {
  const std::string data(8, '\0');
  std::string path;
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[-2]") + "}", data, &path),
              {path, "tensor w", "negative"});
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[-2, -1]", "[0, 8]") + "}", data, &path),
              {path, "tensor w", "negative"});
  for (const char* dims : {"[2.5]", "[2.0]", "[\"2\"]", "[null]", "[[2]]", "[true]"}) {
    SCOPED_TRACE(dims);
    ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", dims) + "}", data, &path),
                {path, "tensor w", "not an integer"});
  }
}

TEST_F(SafetensorsFiles, ShapeProductOverflow) {
  std::string path;
  ExpectError(
      OpenSingle("{\"w\": " + Tensor("\"F32\"", "[4294967296, 4294967296]") + "}", "", &path),
      {path, "tensor w", "overflow"});
  // numel fits in int64 but numel * 4 bytes does not.
  ExpectError(
      OpenSingle("{\"w\": " + Tensor("\"F32\"", "[2305843009213693952, 2]") + "}", "", &path),
      {path, "tensor w", "overflow"});
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[18446744073709551615]") + "}", "", &path),
              {path, "tensor w", "too large"});
}

TEST_F(SafetensorsFiles, BadDataOffsets) {
  const std::string data(16, '\0');
  std::string path;
  for (const char* offsets :
       {"[0]", "[]", "[0, 8, 16]", "[-8, 0]", "[0.0, 8]", "[\"0\", \"8\"]", "[0, null]"}) {
    SCOPED_TRACE(offsets);
    ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[2]", offsets) + "}", data, &path),
                {path, "tensor w", "data_offsets", "two non-negative integers"});
  }
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[0]", "[8, 0]") + "}", data, &path),
              {path, "tensor w", "not ascending"});
}

TEST_F(SafetensorsFiles, EndPastDataSection) {
  std::string path;
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[4]", "[0, 16]") + "}",
                         std::string(12, '\0'), &path),
              {path, "tensor w", "past the end of the data section"});
  // Huge offsets must not wrap around.
  ExpectError(
      OpenSingle("{\"w\": " +
                     Tensor("\"F32\"", "[2]", "[18446744073709551608, 18446744073709551615]") + "}",
                 std::string(12, '\0'), &path),
      {path, "tensor w", "past the end"});
}

TEST_F(SafetensorsFiles, ByteCountDisagreesWithShape) {
  std::string path;
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", "[3]", "[0, 8]") + "}",
                         std::string(12, '\0'), &path),
              {path, "tensor w", "needs 12"});
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"BF16\"", "[2]", "[0, 8]") + "}",
                         std::string(12, '\0'), &path),
              {path, "tensor w", "needs 4"});
}

TEST_F(SafetensorsFiles, OverlappingTensors) {
  std::string path;
  ExpectError(OpenSingle("{\"a\": " + Tensor("\"F32\"", "[2]", "[0, 8]") +
                             ", \"b\": " + Tensor("\"F32\"", "[2]", "[4, 12]") + "}",
                         std::string(12, '\0'), &path),
              {path, "tensor b", "overlap tensor a"});
  // Identical ranges: both names appear, in either order.
  ExpectError(
      OpenSingle("{\"z\": " + Tensor() + ", \"y\": " + Tensor() + "}", std::string(8, '\0'), &path),
      {path, "overlap", "y", "z"});
  // A tensor nested inside another.
  ExpectError(OpenSingle("{\"big\": " + Tensor("\"F32\"", "[4]", "[0, 16]") +
                             ", \"small\": " + Tensor("\"F16\"", "[2]", "[8, 12]") + "}",
                         std::string(16, '\0'), &path),
              {path, "small", "big", "overlap"});
  // Adjacent ranges and empty tensors are fine.
  EXPECT_TRUE(OpenSingle("{\"a\": " + Tensor("\"F32\"", "[2]", "[0, 8]") +
                             ", \"b\": " + Tensor("\"F32\"", "[1]", "[8, 12]") +
                             ", \"c\": " + Tensor("\"F32\"", "[0]", "[4, 4]") + "}",
                         std::string(12, '\0'))
                  .ok());
}

TEST_F(SafetensorsFiles, UnsupportedDtypes) {
  std::string path;
  ExpectError(OpenSingle("{\"x.weight\": " + Tensor("\"F64\"", "[1]", "[0, 8]") + "}",
                         std::string(8, '\0'), &path),
              {"unsupported dtype F64 for tensor x.weight in " + path});
  for (const char* dtype : {"I32", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "I64", "f32", ""}) {
    SCOPED_TRACE(dtype);
    ExpectError(OpenSingle("{\"x.weight\": " + Tensor(std::string("\"") + dtype + "\"", "[2]") +
                               ", \"ok\": " + Tensor("\"F32\"", "[0]", "[8, 8]") + "}",
                           std::string(8, '\0'), &path),
                {std::string("unsupported dtype ") + dtype + " for tensor x.weight in " + path});
  }
}

// --- Directories and sharded checkpoints.

TEST_F(SafetensorsFiles, NeitherFileIsNotFound) {
  auto status = WeightStore::Open(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  ExpectError(status, {"model.safetensors.index.json", dir_});
  const std::string missing = Path("does-not-exist");
  ExpectError(WeightStore::Open(missing).status(), {missing});
}

TEST_F(SafetensorsFiles, SingleFileWinsOverIndex) {
  Write("model.safetensors", "{\"single\": " + Tensor() + "}", std::string(8, '\0'));
  Write("shard.safetensors", "{\"sharded\": " + Tensor() + "}", std::string(8, '\0'));
  WriteRaw("model.safetensors.index.json", R"({"weight_map": {"sharded": "shard.safetensors"}})");
  auto store = WeightStore::Open(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Has("single"));
  EXPECT_FALSE((*store)->Has("sharded"));
}

TEST_F(SafetensorsFiles, ShardedOpensEachShardOnce) {
  Write("s1.safetensors",
        "{\"a\": " + Tensor() + ", \"b\": " + Tensor("\"F32\"", "[1]", "[8, 12]") + "}",
        std::string(12, '\0'));
  Write("s2.safetensors", "{\"c\": " + Tensor() + "}", std::string(8, '\0'));
  WriteRaw("model.safetensors.index.json",
           R"({"metadata": {"total_size": 20}, "weight_map": {"a": "s1.safetensors", )"
           R"("b": "s1.safetensors", "c": "s2.safetensors"}})");
  auto store = WeightStore::Open(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*store)->Get("b")->file, Path("s1.safetensors"));
  EXPECT_EQ((*store)->Get("c")->file, Path("s2.safetensors"));
  // Both tensors of s1 point into one mapping.
  EXPECT_EQ((*store)->Get("b")->data - (*store)->Get("a")->data, 8);
}

TEST_F(SafetensorsFiles, IndexTensorMissingFromShard) {
  Write("s1.safetensors", "{\"a\": " + Tensor() + "}", std::string(8, '\0'));
  Write("s2.safetensors", "{\"b\": " + Tensor() + "}", std::string(8, '\0'));
  WriteRaw("model.safetensors.index.json",
           R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})");
  ExpectError(WeightStore::Open(dir_).status(), {"tensor b", "s1.safetensors", "does not contain"});
}

TEST_F(SafetensorsFiles, IndexShardNameEscapingDirectory) {
  fs::create_directory(Path("sub"));
  Write("sub/s.safetensors", "{\"a\": " + Tensor() + "}", std::string(8, '\0'));
  for (const char* shard :
       {"../s.safetensors", "sub/s.safetensors", "..", "/etc/passwd", "sub\\\\s.safetensors", ""}) {
    SCOPED_TRACE(shard);
    WriteRaw("model.safetensors.index.json",
             std::string(R"({"weight_map": {"a": ")") + shard + "\"}}");
    ExpectError(WeightStore::Open(dir_).status(),
                {Path("model.safetensors.index.json"), "tensor a", "not a plain file name"});
  }
}

TEST_F(SafetensorsFiles, DuplicateTensorAcrossShards) {
  Write("s1.safetensors", "{\"a\": " + Tensor() + "}", std::string(8, '\0'));
  Write("s2.safetensors",
        "{\"a\": " + Tensor() + ", \"b\": " + Tensor("\"F32\"", "[1]", "[8, 12]") + "}",
        std::string(12, '\0'));
  WriteRaw("model.safetensors.index.json",
           R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  ExpectError(WeightStore::Open(dir_).status(),
              {"tensor a", "appears in both", Path("s1.safetensors"), Path("s2.safetensors")});
}

TEST_F(SafetensorsFiles, BadIndexFile) {
  const std::string index = Path("model.safetensors.index.json");
  WriteRaw("model.safetensors.index.json", "{\"weight_map\": ");
  ExpectError(WeightStore::Open(dir_).status(), {index});
  WriteRaw("model.safetensors.index.json", "[]");
  ExpectError(WeightStore::Open(dir_).status(), {index, "expected an object"});
  WriteRaw("model.safetensors.index.json", R"({"metadata": {}})");
  ExpectError(WeightStore::Open(dir_).status(), {index, "weight_map"});
  WriteRaw("model.safetensors.index.json", R"({"weight_map": ["s1.safetensors"]})");
  ExpectError(WeightStore::Open(dir_).status(), {index, "weight_map"});
  WriteRaw("model.safetensors.index.json", R"({"weight_map": {}})");
  ExpectError(WeightStore::Open(dir_).status(), {index, "weight_map"});
  WriteRaw("model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
  ExpectError(WeightStore::Open(dir_).status(), {index, "tensor a"});
}

TEST_F(SafetensorsFiles, MissingOrCorruptShard) {
  WriteRaw("model.safetensors.index.json", R"({"weight_map": {"a": "gone.safetensors"}})");
  ExpectError(WeightStore::Open(dir_).status(), {Path("gone.safetensors")});
  Write("bad.safetensors", "{\"a\": " + Tensor("\"F32\"", "[3]") + "}", std::string(8, '\0'));
  WriteRaw("model.safetensors.index.json", R"({"weight_map": {"a": "bad.safetensors"}})");
  ExpectError(WeightStore::Open(dir_).status(), {Path("bad.safetensors"), "tensor a"});
}

// Header sizes that would make the loader allocate without bound are refused
// before anything is built from them; the bound itself still opens.
TEST_F(SafetensorsFiles, DeepNestingIsRefusedWithoutRecursing) {
  std::string path;
  std::string deep = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": ";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}}";
  ExpectError(OpenSingle(deep, std::string(8, '\0'), &path), {path, "deeper than 8"});
  // Unknown fields nested within the limit are ignored, as the reference
  // implementation does.
  const std::string ok = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": [[[[[1]]]]]}}";
  EXPECT_TRUE(OpenSingle(ok, std::string(8, '\0')).ok());
}

TEST_F(SafetensorsFiles, ShapeRankLimit) {
  std::string path;
  auto shape_of_rank = [](size_t rank) {
    std::string s = "[2";
    for (size_t i = 1; i < rank; ++i) s += ", 1";
    return s + "]";
  };
  EXPECT_TRUE(OpenSingle("{\"w\": " + Tensor("\"F32\"", shape_of_rank(SafetensorsFile::kMaxRank)) + "}",
                         std::string(8, '\0'))
                  .ok());
  ExpectError(OpenSingle("{\"w\": " + Tensor("\"F32\"", shape_of_rank(SafetensorsFile::kMaxRank + 1)) + "}",
                         std::string(8, '\0'), &path),
              {path, "tensor w", "17 dimensions", "limit of 16"});
}

TEST_F(SafetensorsFiles, TensorCountLimit) {
  auto header_with = [](size_t n) {
    std::string h = "{\"__metadata__\": {\"format\": \"pt\"}";
    for (size_t i = 0; i < n; ++i) {
      h += ", \"t" + std::to_string(i) + "\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}";
    }
    return h + "}";
  };
  EXPECT_TRUE(OpenSingle(header_with(SafetensorsFile::kMaxTensors), "").ok());
  std::string path;
  ExpectError(OpenSingle(header_with(SafetensorsFile::kMaxTensors + 1), "", &path),
              {path, "262145 tensors", "limit of 262144"});
}

TEST_F(SafetensorsFiles, RunawayElementCountStopsTheParse) {
  // A header of a few bytes per value would otherwise build a DOM many times
  // its size; the parse stops at the element limit.
  std::string h = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": [0";
  h.reserve(20 << 20);
  for (size_t i = 0; i < SafetensorsFile::kMaxTensors * 32; ++i) h += ",0";
  h += "]}}";
  std::string path;
  ExpectError(OpenSingle(h, std::string(8, '\0'), &path), {path, "more than", "values"});
}

TEST_F(SafetensorsFiles, IndexTensorCountLimit) {
  Write("s.safetensors", "{\"a\": " + Tensor() + "}", std::string(8, '\0'));
  std::string index = "{\"weight_map\": {\"a\": \"s.safetensors\"";
  for (size_t i = 0; i < WeightStore::kMaxIndexTensors; ++i) index += ",\"t" + std::to_string(i) + "\":\"s.safetensors\"";
  index += "}}";
  WriteRaw("model.safetensors.index.json", index);
  ExpectError(WeightStore::Open(dir_).status(),
              {Path("model.safetensors.index.json"), "1048577 tensors", "limit of 1048576"});
}

TEST_F(SafetensorsFiles, UnreadTensorsAreWhatNoGetReturned) {
  Write("model.safetensors",
        "{\"a\": " + Tensor() + ", \"b\": " + Tensor("\"F32\"", "[1]", "[8, 12]") + ", \"c\": " +
            Tensor("\"F32\"", "[0]", "[12, 12]") + "}",
        std::string(12, '\0'));
  auto store = WeightStore::Open(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ((*store)->UnreadTensors().size(), 3u);
  EXPECT_TRUE((*store)->Has("b"));  // not a read
  ASSERT_TRUE((*store)->Get("a").ok());
  ASSERT_FALSE((*store)->Get("b", {7}).ok());  // the shape check reads it even when it fails
  const std::vector<WeightStore::Unread> unread = (*store)->UnreadTensors();
  ASSERT_EQ(unread.size(), 1u);
  EXPECT_EQ(unread[0].name, "c");
  EXPECT_EQ(unread[0].file, Path("model.safetensors"));
}

TEST(WeightStoreFromMemory, ServesOwnedTensorsAndChecksSizes) {
  std::vector<std::byte> two_floats(8);
  const float values[2] = {1.5f, -2.0f};
  std::memcpy(two_floats.data(), values, 8);
  auto store = WeightStore::FromMemory("mem", {OwnedTensor{"a", DType::kF32, {2}, two_floats},
                                               OwnedTensor{"b", DType::kBF16, {1, 2}, std::vector<std::byte>(4)}});
  ASSERT_TRUE(store.ok()) << store.status();
  auto a = (*store)->Get("a", {2});
  ASSERT_TRUE(a.ok()) << a.status();
  float back[2];
  ConvertToF32(*a, 0, 2, back);
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[1], -2.0f);
  EXPECT_TRUE((*store)->Has("b"));
  EXPECT_FALSE((*store)->Get("c").ok());
  EXPECT_NE((*store)->Get("c").status().message().find("mem"), std::string::npos);

  auto short_bytes = WeightStore::FromMemory("mem", {OwnedTensor{"a", DType::kF32, {3}, two_floats}});
  ASSERT_FALSE(short_bytes.ok());
  EXPECT_NE(short_bytes.status().message().find("tensor a"), std::string::npos) << short_bytes.status();
  auto twice = WeightStore::FromMemory("mem", {OwnedTensor{"a", DType::kF32, {2}, two_floats},
                                               OwnedTensor{"a", DType::kF32, {2}, two_floats}});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("twice"), std::string::npos);
}

}  // namespace
}  // namespace kaon
