// AgentService over gRPC (callback API): translates agentd's calls into Controller calls and
// absl::Status into gRPC codes. No queue or lease logic lives here.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "controller/controller.h"
#include "controller/pack_spooler.h"
#include "rpc/access_policy.h"
#include "harness/v1/agent.grpc.pb.h"

namespace harness {

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `spooler` serves FetchBase (null: the controller has no repository). Every call is checked
  // against `access` first (it outlives the service).
  AgentServiceImpl(Controller* controller, std::unique_ptr<PackSpooler> spooler,
                   const AccessPolicy* access)
      : controller_(controller), spooler_(std::move(spooler)), access_(access) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const v1::RegisterRequest* req,
                                     v1::RegisterResponse* resp) override;
  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Session(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Acquire(grpc::CallbackServerContext* ctx, const v1::AcquireRequest* req,
                                    v1::AcquireResponse* resp) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* ctx,
                                     const v1::CompleteRequest* req,
                                     v1::CompleteResponse* resp) override;
  grpc::ServerUnaryReactor* Fail(grpc::CallbackServerContext* ctx, const v1::FailRequest* req,
                                 v1::FailResponse* resp) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* ctx, const v1::ReleaseRequest* req,
                                    v1::ReleaseResponse* resp) override;
  // service_git.cc: git objects over the agent's connection (agents without a local repository).
  grpc::ServerWriteReactor<v1::FetchBaseResponse>* FetchBase(
      grpc::CallbackServerContext* ctx, const v1::FetchBaseRequest* req) override;
  grpc::ServerReadReactor<v1::UploadResultRequest>* UploadResult(
      grpc::CallbackServerContext* ctx, v1::UploadResultResponse* resp) override;

 private:
  Controller* const controller_;
  std::unique_ptr<PackSpooler> spooler_;
  const AccessPolicy* const access_;
};

}  // namespace harness
