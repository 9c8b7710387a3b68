#include "server/metrics/request_recorder.h"

namespace kaon::metrics {
namespace {

double Seconds(RequestRecorder::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

FinishedReason ReasonOf(const RequestOutput& event) {
  if (!event.error.empty()) return FinishedReason::kError;
  switch (event.finish_reason) {
    case FinishReason::kStop: return FinishedReason::kStop;
    case FinishReason::kLength: return FinishedReason::kLength;
    default: return FinishedReason::kAbort;
  }
}

}  // namespace

RequestRecorder::RequestRecorder(ServingMetrics* metrics, int64_t num_prompt_tokens, int32_t num_choices,
                                 Clock::time_point arrival)
    : metrics_(metrics), num_prompt_tokens_(num_prompt_tokens), num_choices_(num_choices), arrival_(arrival) {}

RequestRecorder::~RequestRecorder() {
  if (finished() || metrics_ == nullptr) return;
  for (int32_t i = num_finished_; i < num_choices_; ++i) metrics_->AddFinishedChoice(FinishedReason::kAbort);
  metrics_->AddPromptTokens(num_prompt_tokens_);
}

std::optional<double> RequestRecorder::ttft_seconds() const {
  if (!first_token_) return std::nullopt;
  return Seconds(*first_token_ - arrival_);
}

void RequestRecorder::Observe(const RequestOutput& event, Clock::time_point now) {
  const auto n = static_cast<int64_t>(event.token_ids.size());
  if (n > 0) {
    if (!first_token_) {
      first_token_ = now;
      if (metrics_) metrics_->ObserveTimeToFirstToken(Seconds(now - arrival_));
    } else if (metrics_) {
      metrics_->ObserveInterTokenLatency(Seconds(now - last_token_));
    }
    last_token_ = now;
    generation_tokens_ += n;
    if (metrics_) metrics_->AddGenerationTokens(n);
  }
  if (event.finished() && num_finished_ < num_choices_) {
    ++num_finished_;
    if (metrics_) metrics_->AddFinishedChoice(ReasonOf(event));
    if (finished()) Complete(now);
  }
}

void RequestRecorder::Complete(Clock::time_point now) {
  if (metrics_ == nullptr) return;
  const double e2e = Seconds(now - arrival_);
  // TPOT as vLLM defines it: the decode time spread over all tokens after
  // the first (n choices' tokens counted together).
  const bool has_tpot = first_token_.has_value() && generation_tokens_ > 1;
  const double tpot = has_tpot ? Seconds(last_token_ - *first_token_) / static_cast<double>(generation_tokens_ - 1) : 0;
  metrics_->AddPromptTokens(num_prompt_tokens_);
  metrics_->ObserveRequest(e2e, tpot, has_tpot, num_prompt_tokens_, generation_tokens_);
}

}  // namespace kaon::metrics
