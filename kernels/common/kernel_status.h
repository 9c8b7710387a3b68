// kernels/ is a leaf (standard library + CUDA toolkit only), so it carries its
// own tiny status type instead of absl::Status. Entry points validate shapes
// and indices and return one of these; callers convert it at the boundary.
#pragma once

#include <string>
#include <utility>

namespace kaon::kernels {

class KernelStatus {
 public:
  KernelStatus() = default;
  static KernelStatus Ok() { return KernelStatus(); }
  static KernelStatus Invalid(std::string msg) { return KernelStatus(std::move(msg)); }
  bool ok() const { return msg_.empty(); }
  const std::string& message() const { return msg_; }

 private:
  explicit KernelStatus(std::string msg) : msg_(std::move(msg)) {
    if (msg_.empty()) msg_ = "invalid argument";
  }
  std::string msg_;
};

#define KAON_KERNEL_REQUIRE(cond, msg) \
  do {                                 \
    if (!(cond)) return ::kaon::kernels::KernelStatus::Invalid(msg); \
  } while (0)

}  // namespace kaon::kernels
