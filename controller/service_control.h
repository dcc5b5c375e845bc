// ControlService over gRPC (callback API): what harnessctl calls. Translation only.
#pragma once

#include <grpcpp/grpcpp.h>

#include "controller/controller.h"
#include "rpc/access_policy.h"
#include "harness/v1/control.grpc.pb.h"

namespace harness {

class ControlServiceImpl final : public v1::ControlService::CallbackService {
 public:
  // Every call is checked against `access` first (it outlives the service).
  ControlServiceImpl(Controller* controller, const AccessPolicy* access)
      : controller_(controller), access_(access) {}

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx, const v1::SubmitRequest* req,
                                   v1::SubmitResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const v1::ListRequest* req,
                                 v1::ListResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* ctx, const v1::CancelRequest* req,
                                   v1::CancelResponse* resp) override;
  grpc::ServerUnaryReactor* Retry(grpc::CallbackServerContext* ctx, const v1::RetryRequest* req,
                                  v1::RetryResponse* resp) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const v1::StatusRequest* req,
                                   v1::StatusSnapshot* resp) override;
  grpc::ServerWriteReactor<v1::StatusSnapshot>* WatchStatus(
      grpc::CallbackServerContext* ctx, const v1::WatchStatusRequest* req) override;
  grpc::ServerUnaryReactor* Scale(grpc::CallbackServerContext* ctx, const v1::ScaleRequest* req,
                                  v1::ScaleResponse* resp) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* ctx, const v1::DrainRequest* req,
                                  v1::DrainResponse* resp) override;
  grpc::ServerUnaryReactor* StopAgent(grpc::CallbackServerContext* ctx,
                                      const v1::StopAgentRequest* req,
                                      v1::StopAgentResponse* resp) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const v1::ListAgentsRequest* req,
                                       v1::ListAgentsResponse* resp) override;
  grpc::ServerWriteReactor<v1::LogChunk>* FollowLog(grpc::CallbackServerContext* ctx,
                                                    const v1::FollowLogRequest* req) override;
  grpc::ServerWriteReactor<v1::Event>* WatchEvents(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchEventsRequest* req) override;

 private:
  Controller* const controller_;
  const AccessPolicy* const access_;
};

}  // namespace harness
