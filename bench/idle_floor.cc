// idle_floor: the memory floor of any agent built on this stack. A gRPC C++ client from the same
// Debian packages as agentd (gRPC 1.51, protobuf 3.21, our generated stubs) that opens one
// channel to the controller with default settings and holds one bidi `Session` stream open,
// idle (it sends nothing; the controller keeps such a stream until it ends). bench/compare.sh
// row 5 measures its RSS, PSS, USS and threads beside agentd's. Not an agent: it never registers.
//
// usage: idle_floor HOST:PORT    (prints "connected" once the channel is up, then runs until the
//                                 stream ends or it is killed)
#include <chrono>
#include <cstdio>
#include <memory>

#include <grpcpp/grpcpp.h>

#include "harness/v1/agent.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: idle_floor HOST:PORT\n");
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60))) {
    std::fprintf(stderr, "idle_floor: not connected to %s after 60 s\n", argv[1]);
    return 1;
  }
  std::unique_ptr<harness::v1::AgentService::Stub> stub =
      harness::v1::AgentService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  std::unique_ptr<grpc::ClientReaderWriter<harness::v1::AgentMessage,
                                           harness::v1::ControllerMessage>>
      stream = stub->Session(&ctx);
  std::printf("connected\n");
  std::fflush(stdout);
  harness::v1::ControllerMessage message;
  while (stream->Read(&message)) {
  }
  grpc::Status status = stream->Finish();
  std::fprintf(stderr, "idle_floor: the stream ended: %s\n", status.error_message().c_str());
  return status.ok() ? 0 : 1;
}
