// The server side of AgentService.FetchBase: a write reactor that asks a PackSpooler for the
// pack, sends the header once it is built, then one chunk per write, each read off the gRPC
// thread after the previous write completed. Only the RPC plumbing lives here.
#pragma once

#include <grpcpp/grpcpp.h>

#include "controller/pack_spooler.h"
#include "harness/v1/agent.pb.h"

namespace harness {

// A reactor serving `request` from `spooler` (which outlives the gRPC server), or, with a
// null `spooler`, one that fails with FAILED_PRECONDITION (no repository to serve).
grpc::ServerWriteReactor<v1::FetchBaseResponse>* NewFetchBaseReactor(
    PackSpooler* spooler, const v1::FetchBaseRequest& request);

}  // namespace harness
