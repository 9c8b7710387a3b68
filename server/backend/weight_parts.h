// How a Backend::LoadWeight call's parts (backend.h WeightPart) become one
// tensor, shared by every backend: the shape they stack into, and the
// contiguous element runs to copy from the checkpoint (a whole-row part is
// one run; a column slice, one run per row). Backends differ only in how a
// run is copied (widened to fp32 on the host, staged to a device).
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/backend/backend.h"
#include "server/common/status.h"

namespace kaon {

struct WeightShape {
  int64_t rows = 0;
  int64_t cols = 0;
};

// 1-D parts (norm weights, biases) concatenate into one row; 2-D parts stack
// their row ranges and must have equal column ranges.
inline absl::StatusOr<WeightShape> ShapeOfParts(std::span<const WeightPart> parts) {
  if (parts.empty()) return absl::InvalidArgumentError("LoadWeight needs at least one part");
  const bool vector = parts.front().shape.size() == 1;
  WeightShape s;
  for (const WeightPart& p : parts) {
    const int64_t width = p.col_end - p.col_begin;
    if ((p.shape.size() == 1) != vector || p.shape.empty() || p.shape.size() > 2 || width <= 0 ||
        p.row_end < p.row_begin || (!vector && s.rows > 0 && width != s.cols)) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", p.name, ": parts of one tensor must be all 1-D, or "
                                                     "2-D with equal column ranges"));
    }
    s.cols = vector ? s.cols + width : width;
    s.rows = vector ? 1 : s.rows + (p.row_end - p.row_begin);
  }
  return s;
}

// For each part in order, with `dst` the element offset in the stacked
// tensor: copy(view, src_offset, count, dst) for each contiguous run, or
// zero(dst, count) for a zeroed part (still read and shape-checked, so every
// rank fails alike).
template <typename Copy, typename Zero>
absl::Status ForEachPartRun(const WeightStore& store, std::span<const WeightPart> parts, Copy&& copy, Zero&& zero) {
  int64_t dst = 0;
  for (const WeightPart& p : parts) {
    const bool vector = p.shape.size() == 1;
    const int64_t width = p.col_end - p.col_begin;
    const int64_t n = vector ? 1 : p.row_end - p.row_begin;
    KAON_ASSIGN_OR_RETURN(TensorView t, store.Get(p.name, p.shape));
    if (p.zero) {
      KAON_RETURN_IF_ERROR(zero(dst, n * width));
    } else {
      const int64_t stride = vector ? p.shape[0] : p.shape[1];
      if (p.col_begin == 0 && width == stride) {
        KAON_RETURN_IF_ERROR(copy(t, p.row_begin * stride, n * width, dst));
      } else {
        for (int64_t r = 0; r < n; ++r) {
          KAON_RETURN_IF_ERROR(copy(t, (p.row_begin + r) * stride + p.col_begin, width, dst + r * width));
        }
      }
    }
    dst += n * width;
  }
  return absl::OkStatus();
}

}  // namespace kaon
