#include "server/engine/request_channel.h"

#include <iterator>

namespace kaon {

void RequestChannel::Merge(RequestOutput& into, RequestOutput&& more) {
  into.token_ids.insert(into.token_ids.end(), more.token_ids.begin(), more.token_ids.end());
  into.logprobs.insert(into.logprobs.end(), std::make_move_iterator(more.logprobs.begin()),
                       std::make_move_iterator(more.logprobs.end()));
  into.prompt_logprobs.insert(into.prompt_logprobs.end(), std::make_move_iterator(more.prompt_logprobs.begin()),
                              std::make_move_iterator(more.prompt_logprobs.end()));
  into.finish_reason = more.finish_reason;
  into.stop_reason = std::move(more.stop_reason);
  if (more.usage) into.usage = more.usage;
  if (!more.error.empty()) into.error = std::move(more.error);
}

void RequestChannel::SetNotify(std::function<void()> notify) {
  auto shared = notify ? std::make_shared<const std::function<void()>>(std::move(notify)) : nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(shared);
}

void RequestChannel::Push(RequestOutput event) {
  std::shared_ptr<const std::function<void()>> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    notify = notify_;
    // Merging is only valid within one choice and before it finished.
    auto same_choice = [&](const RequestOutput& e) { return e.index == event.index && !e.finished(); };
    if (pending_.size() >= max_pending_) {
      for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
        if (same_choice(*it)) {
          Merge(*it, std::move(event));
          cv_.notify_one();
          if (notify) (*notify)();
          return;
        }
      }
    }
    pending_.push_back(std::move(event));
  }
  cv_.notify_one();
  if (notify) (*notify)();
}

RequestOutput RequestChannel::Pop() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !pending_.empty(); });
  RequestOutput e = std::move(pending_.front());
  pending_.pop_front();
  return e;
}

std::optional<RequestOutput> RequestChannel::TryPop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.empty()) return std::nullopt;
  RequestOutput e = std::move(pending_.front());
  pending_.pop_front();
  return e;
}

}  // namespace kaon
