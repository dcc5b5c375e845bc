// ControlService calls with deadlines and harnessctl's error lines (see controller_client.h).
#include "client/controller_client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "client/stop_signals.h"
#include "harness/v1/control.grpc.pb.h"
#include "rpc/channel.h"

namespace harness::client {
namespace {

std::string OneLine(absl::string_view s) {
  std::string out =
      absl::StrReplaceAll(absl::StripAsciiWhitespace(s), {{"\r\n", " "}, {"\n", " "}});
  return out;
}

std::string SecondsText(absl::Duration d) {
  return absl::StrCat(absl::StrFormat("%g", absl::ToDoubleSeconds(d)), "s");
}

}  // namespace

struct ControllerClient::Impl {
  ClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ControlService::Stub> stub;

  std::unique_ptr<grpc::ClientContext> Context() const {
    return MakeContext(options.timeout, options.token);
  }

  bool Connected() const { return channel->GetState(false) == GRPC_CHANNEL_READY; }

  // The line harnessctl prints for a failed call.
  absl::Status Error(const grpc::Status& s) const {
    auto code = static_cast<absl::StatusCode>(s.error_code());
    std::string detail = OneLine(s.error_message());
    std::string unreachable =
        absl::StrCat("cannot reach the controller at ", options.address, ": ");
    switch (s.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        // Answered by the controller (its state dir cannot take writes, or it is stopping):
        // its own message says why.
        if (Connected() && !detail.empty()) return absl::Status(code, detail);
        return absl::Status(code,
                            absl::StrCat(unreachable, detail.empty() ? "unavailable" : detail));
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        if (!Connected()) {
          return absl::Status(code, absl::StrCat(unreachable, "no connection within ",
                                                 SecondsText(options.timeout)));
        }
        return absl::Status(
            code, absl::StrCat("the controller at ", options.address, " did not answer within ",
                               SecondsText(options.timeout), " (see --timeout)"));
      case grpc::StatusCode::UNIMPLEMENTED:
        return absl::Status(code, absl::StrCat("the server at ", options.address,
                                               " does not serve this call (is it a harness "
                                               "controller of this version?): ",
                                               detail));
      case grpc::StatusCode::UNAUTHENTICATED:
        return absl::Status(code, absl::StrCat(detail.empty() ? "unauthenticated" : detail,
                                               options.token.empty()
                                                   ? " (give a token with --token, --token-file or HARNESS_TOKEN)"
                                                   : " (check the token)"));
      default:
        if (detail.empty()) {
          return absl::Status(
              code, absl::StrCat("the controller answered ", absl::StatusCodeToString(code)));
        }
        return absl::Status(code, detail);
    }
  }

  // One server-streaming call read to its end: `method` is a Stub member such as
  // &Stub::FollowLog. `follow`: no deadline, and a stop signal cancels it (then OK).
  template <typename Request, typename Response, typename Method>
  absl::Status Stream(Method method, const Request& request, bool follow,
                      const std::function<void(const Response&)>& on_message) const {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    if (follow) {  // no deadline: it runs until the end or Ctrl-C
      ctx = std::make_unique<grpc::ClientContext>();
      if (!options.token.empty()) {
        ctx->AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
      }
    }
    std::atomic<bool> done{false}, interrupted{false};
    std::thread watcher;
    if (follow) {
      watcher = std::thread([&] {
        while (!done.load()) {
          if (WaitForStopSignal(absl::Milliseconds(100)) != 0) {
            interrupted = true;
            ctx->TryCancel();
            return;
          }
        }
      });
    }
    std::unique_ptr<grpc::ClientReader<Response>> reader = ((*stub).*method)(ctx.get(), request);
    Response message;
    while (reader->Read(&message)) on_message(message);
    grpc::Status s = reader->Finish();
    done = true;
    if (watcher.joinable()) watcher.join();
    if (interrupted || s.ok()) return absl::OkStatus();
    return Error(s);
  }

  // One unary call: `method` is a Stub member such as &Stub::Status.
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method, const Request& request) const {
    Response response;
    auto ctx = Context();
    grpc::Status s = ((*stub).*method)(ctx.get(), request, &response);
    if (!s.ok()) return Error(s);
    return response;
  }
};

ControllerClient::ControllerClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  ChannelOptions channel_options;
  channel_options.token = impl_->options.token;
  channel_options.tls = impl_->options.tls;
  impl_->channel = MakeControllerChannel(impl_->options.address, channel_options);
  impl_->stub = v1::ControlService::NewStub(impl_->channel);
}

ControllerClient::~ControllerClient() = default;

absl::StatusOr<v1::StatusSnapshot> ControllerClient::Status() {
  return impl_->Call<v1::StatusRequest, v1::StatusSnapshot>(&v1::ControlService::Stub::Status,
                                                            v1::StatusRequest());
}

absl::StatusOr<v1::ScaleResponse> ControllerClient::Scale(int32_t target, bool force) {
  v1::ScaleRequest request;
  request.set_target(target);
  request.set_force(force);
  return impl_->Call<v1::ScaleRequest, v1::ScaleResponse>(&v1::ControlService::Stub::Scale,
                                                          request);
}

absl::StatusOr<v1::SubmitResponse> ControllerClient::Submit(const v1::SubmitRequest& request) {
  return impl_->Call<v1::SubmitRequest, v1::SubmitResponse>(&v1::ControlService::Stub::Submit,
                                                            request);
}

absl::StatusOr<google::protobuf::RepeatedPtrField<v1::ItemSummary>> ControllerClient::ListAll(
    const std::vector<v1::ItemState>& states) {
  google::protobuf::RepeatedPtrField<v1::ItemSummary> all;
  v1::ListRequest request;
  for (v1::ItemState s : states) request.add_states(s);
  for (;;) {
    absl::StatusOr<v1::ListResponse> page =
        impl_->Call<v1::ListRequest, v1::ListResponse>(&v1::ControlService::Stub::List, request);
    if (!page.ok()) return page.status();
    for (v1::ItemSummary& item : *page->mutable_items()) all.Add(std::move(item));
    if (page->next_page_token().empty()) return all;
    if (page->next_page_token() == request.page_token()) {
      return absl::InternalError(
          absl::StrCat("the controller's item list does not advance (page token ",
                       OneLine(page->next_page_token()), ")"));
    }
    request.set_page_token(page->next_page_token());
  }
}

absl::StatusOr<v1::Item> ControllerClient::Get(const std::string& id) {
  v1::GetRequest request;
  request.set_id(id);
  absl::StatusOr<v1::GetResponse> response =
      impl_->Call<v1::GetRequest, v1::GetResponse>(&v1::ControlService::Stub::Get, request);
  if (!response.ok()) return response.status();
  return std::move(*response->mutable_item());
}

absl::StatusOr<v1::CancelResponse> ControllerClient::Cancel(const std::string& id,
                                                            const std::string& reason) {
  v1::CancelRequest request;
  request.set_id(id);
  request.set_reason(reason);
  return impl_->Call<v1::CancelRequest, v1::CancelResponse>(&v1::ControlService::Stub::Cancel,
                                                            request);
}

absl::StatusOr<v1::RetryResponse> ControllerClient::Retry(const std::string& id) {
  v1::RetryRequest request;
  request.set_id(id);
  return impl_->Call<v1::RetryRequest, v1::RetryResponse>(&v1::ControlService::Stub::Retry,
                                                          request);
}

absl::StatusOr<v1::ListAgentsResponse> ControllerClient::ListAgents() {
  return impl_->Call<v1::ListAgentsRequest, v1::ListAgentsResponse>(
      &v1::ControlService::Stub::ListAgents, v1::ListAgentsRequest());
}

absl::StatusOr<v1::DrainResponse> ControllerClient::Drain(const std::string& agent_id) {
  v1::DrainRequest request;
  request.set_agent_id(agent_id);
  return impl_->Call<v1::DrainRequest, v1::DrainResponse>(&v1::ControlService::Stub::Drain,
                                                          request);
}

absl::StatusOr<v1::StopAgentResponse> ControllerClient::StopAgent(const std::string& agent_id) {
  v1::StopAgentRequest request;
  request.set_agent_id(agent_id);
  return impl_->Call<v1::StopAgentRequest, v1::StopAgentResponse>(
      &v1::ControlService::Stub::StopAgent, request);
}

absl::Status ControllerClient::Watch(
    absl::Duration interval, const std::function<void(const v1::StatusSnapshot&)>& on_snapshot) {
  grpc::ClientContext ctx;  // no deadline: the watchdog below stands in for one
  if (!impl_->options.token.empty()) {
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", impl_->options.token));
  }
  v1::WatchStatusRequest request;
  request.set_interval_ms(static_cast<int32_t>(absl::ToInt64Milliseconds(interval)));
  using Clock = std::chrono::steady_clock;
  std::atomic<int64_t> last_ns{Clock::now().time_since_epoch().count()};
  std::atomic<bool> got_first{false}, done{false}, interrupted{false}, stalled{false};
  const absl::Duration timeout = impl_->options.timeout;
  std::thread watchdog([&] {
    while (!done.load()) {
      if (WaitForStopSignal(absl::Milliseconds(100)) != 0) {
        interrupted = true;
        ctx.TryCancel();
        return;
      }
      absl::Duration quiet =
          absl::Nanoseconds(Clock::now().time_since_epoch().count() - last_ns.load());
      if (quiet > (got_first.load() ? interval + timeout : timeout)) {
        stalled = true;
        ctx.TryCancel();
        return;
      }
    }
  });

  // Starting the call waits for the connection, so the watchdog runs first.
  std::unique_ptr<grpc::ClientReader<v1::StatusSnapshot>> reader =
      impl_->stub->WatchStatus(&ctx, request);
  v1::StatusSnapshot snapshot;
  while (reader->Read(&snapshot)) {
    got_first = true;
    last_ns = Clock::now().time_since_epoch().count();
    on_snapshot(snapshot);
    last_ns = Clock::now().time_since_epoch().count();
  }
  grpc::Status s = reader->Finish();
  done = true;
  watchdog.join();
  if (interrupted) return absl::OkStatus();
  if (stalled) {
    if (!got_first && !impl_->Connected()) {
      return absl::DeadlineExceededError(
          absl::StrCat("cannot reach the controller at ", impl_->options.address,
                       ": no connection within ", SecondsText(timeout)));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("the controller at ", impl_->options.address, " sent no status for ",
                     SecondsText(got_first ? interval + timeout : timeout), " (see --timeout)"));
  }
  if (s.ok()) return absl::OkStatus();
  if (got_first && s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("lost the controller at ", impl_->options.address,
                                               ": ", OneLine(s.error_message())));
  }
  return impl_->Error(s);
}

absl::Status ControllerClient::FollowLog(
    const v1::FollowLogRequest& request,
    const std::function<void(const v1::LogChunk&)>& on_chunk) {
  return impl_->Stream<v1::FollowLogRequest, v1::LogChunk>(&v1::ControlService::Stub::FollowLog,
                                                           request, request.follow(), on_chunk);
}

absl::Status ControllerClient::WatchEvents(const v1::WatchEventsRequest& request,
                                           const std::function<void(const v1::Event&)>& on_event) {
  return impl_->Stream<v1::WatchEventsRequest, v1::Event>(&v1::ControlService::Stub::WatchEvents,
                                                          request, request.follow(), on_event);
}

}  // namespace harness::client
