#include "bench/kaon_bench/runner.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <stdexcept>

#include "bench/kaon_bench/arrivals.h"
#include "bench/kaon_bench/progress.h"

namespace kaon::bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class Dispatcher {
 public:
  Dispatcher(const std::vector<SampleRequest>& requests, const RunOptions& o, tcp::resolver::results_type endpoints)
      : requests_(requests),
        o_(o),
        endpoints_(std::move(endpoints)),
        offsets_(ArrivalOffsets(static_cast<int>(requests.size()), o.request_rate, o.burstiness, o.seed)),
        outputs_(requests.size()),
        timer_(ioc_),
        progress_(o.label, static_cast<int>(requests.size()), o.show_progress) {}

  RunResult Run() {
    start_ = Clock::now();
    ScheduleArrivals();
    ioc_.run();
    RunResult r;
    r.duration_s = std::chrono::duration<double>(Clock::now() - start_).count();
    progress_.Finish(done_, failed_, r.duration_s);
    r.outputs = std::move(outputs_);
    return r;
  }

 private:
  double Elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  void ScheduleArrivals() {
    while (next_ < offsets_.size() && offsets_[next_] <= Elapsed()) Arrive(next_++);
    if (next_ >= offsets_.size()) return;
    timer_.expires_at(start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offsets_[next_])));
    timer_.async_wait([this](const boost::system::error_code&) { ScheduleArrivals(); });
  }

  void Arrive(size_t i) {
    pending_.push_back(i);
    Pump();
  }

  void Pump() {
    while ((o_.max_concurrency <= 0 || in_flight_ < o_.max_concurrency) && !pending_.empty()) {
      const size_t i = pending_.front();
      pending_.pop_front();
      ++in_flight_;
      Launch(i);
    }
  }

  void Launch(size_t i) {
    RequestOutput* out = &outputs_[i];
    out->index = static_cast<int>(i);
    out->prompt_tokens = requests_[i].prompt_len;  // replaced by usage when the server reports it
    if (o_.grpc) {
      LaunchGrpc(i, out);
      return;
    }
    StreamCall call;
    call.endpoints = endpoints_;
    call.host_header = o_.endpoint.host + ":" + o_.endpoint.port;
    call.target = o_.endpoint.base_path + o_.path;
    call.body = BuildRequestBody(o_.body, requests_[i].prompt, requests_[i].output_len);
    call.api_key = o_.api_key;
    call.timeout_s = o_.timeout_s;
    call.run_start = start_;
    net::co_spawn(ioc_, StreamRequest(std::move(call), out), [this, out](std::exception_ptr e) {
      if (e) {
        out->success = false;
        out->error = "internal error in the client";
      }
      Finished(out);
    });
  }

  // The reactor finishes on a gRPC thread; its completion is posted to the
  // io thread, and a work guard keeps ioc_.run() going until then.
  void LaunchGrpc(size_t i, RequestOutput* out) {
    GrpcGenerateOptions g;
    g.model = o_.body.model;
    g.ignore_eos = o_.body.ignore_eos;
    g.temperature = o_.body.temperature;
    g.api_key = o_.api_key;
    g.timeout_s = o_.timeout_s;
    auto guard = std::make_shared<net::executor_work_guard<net::io_context::executor_type>>(ioc_.get_executor());
    o_.grpc->StartGenerate(g, requests_[i].prompt, requests_[i].output_len, start_, out, [this, out, guard] {
      net::post(ioc_, [this, out, guard] {
        Finished(out);
        guard->reset();
      });
    });
  }

  void Finished(RequestOutput* out) {
    --in_flight_;
    ++done_;
    if (!out->success) ++failed_;
    progress_.Update(done_, failed_, Elapsed());
    Pump();
  }

  const std::vector<SampleRequest>& requests_;
  const RunOptions& o_;
  tcp::resolver::results_type endpoints_;
  std::vector<double> offsets_;
  std::vector<RequestOutput> outputs_;
  net::io_context ioc_;
  net::steady_timer timer_;
  Progress progress_;
  Clock::time_point start_;
  size_t next_ = 0;
  std::deque<size_t> pending_;
  int in_flight_ = 0, done_ = 0, failed_ = 0;
};

}  // namespace

RunResult RunBenchmark(const std::vector<SampleRequest>& requests, const RunOptions& o) {
  if (o.grpc) {
    Dispatcher d(requests, o, {});
    return d.Run();
  }
  net::io_context resolve_ctx;
  tcp::resolver resolver(resolve_ctx);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(o.endpoint.host, o.endpoint.port, ec);
  if (ec) throw std::runtime_error("cannot resolve " + o.endpoint.host + ": " + ec.message());
  Dispatcher d(requests, o, std::move(endpoints));
  return d.Run();
}

}  // namespace kaon::bench
