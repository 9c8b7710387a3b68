// Dtype helpers and widening to fp32. Mapped tensors may start at any byte
// offset (the header length is arbitrary), so every element is read with
// memcpy rather than through a typed pointer.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "server/common/status.h"
#include "server/loading/safetensors.h"

namespace kaon {
namespace {

// safetensors stores elements little-endian; elements are memcpy'd as-is.
static_assert(std::endian::native == std::endian::little, "big-endian hosts need byte swaps");

// IEEE binary16 → binary32 bit pattern; every half value is exactly
// representable, so this is a pure re-encoding.
uint32_t HalfToFloatBits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return sign | 0x7f800000u | (mant << 13);  // inf / nan (payload kept)
  if (exp != 0) return sign | ((exp + 127 - 15) << 23) | (mant << 13);
  if (mant == 0) return sign;  // ±0
  // Subnormal half: shift the leading 1 up to the implicit-bit position;
  // each shift lowers the (normal in fp32) exponent by one.
  uint32_t e = 127 - 15 + 1;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return sign | (e << 23) | ((mant & 0x3ffu) << 13);
}

float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
  }
  return 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void ConvertToF32(const TensorView& t, size_t offset, size_t count, float* out) {
  KAON_CHECK(offset + count <= static_cast<size_t>(t.numel()))
      << t.name << ": converting [" << offset << ", " << offset + count << ") of " << t.numel();
  if (count == 0) return;
  const std::byte* src = t.data + offset * DTypeSize(t.dtype);
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out, src, count * sizeof(float));
      return;
    case DType::kF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = BitsToFloat(HalfToFloatBits(h));
      }
      return;
    case DType::kBF16:
      // bf16 is the top half of an fp32.
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = BitsToFloat(static_cast<uint32_t>(h) << 16);
      }
      return;
  }
}

uint16_t FloatToBF16Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // NaN
  // Adding 0x7fff plus the lowest kept bit rounds half-way cases to the even
  // neighbour; a carry into the exponent is the correct rounding (up to inf).
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

void ConvertToBF16(const TensorView& t, size_t offset, size_t count, uint16_t* out) {
  if (t.dtype == DType::kBF16) {
    KAON_CHECK(offset + count <= static_cast<size_t>(t.numel()))
        << t.name << ": converting [" << offset << ", " << offset + count << ") of " << t.numel();
    std::memcpy(out, t.data + offset * 2, count * 2);
    return;
  }
  float chunk[1024];
  for (size_t done = 0; done < count; done += 1024) {
    const size_t n = std::min<size_t>(1024, count - done);
    ConvertToF32(t, offset + done, n, chunk);
    for (size_t i = 0; i < n; ++i) out[done + i] = FloatToBF16Bits(chunk[i]);
  }
}

}  // namespace kaon
