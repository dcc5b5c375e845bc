// The gRPC client of AgentService, part 3 (see grpc_controller_client.h): the git transport,
// FetchBase (a server stream: header, then pack chunks) and UploadResult (a client stream:
// header, then pack chunks). One attempt per call; the agent retries.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agentd/grpc_controller_client.h"
#include "rpc/status.h"

namespace harness::agentd {

absl::Status GrpcControllerClient::FetchBase(
    const v1::FetchBaseRequest& request,
    const std::function<absl::Status(const v1::FetchBaseHeader& header)>& on_header,
    const ChunkSink& on_chunk) {
  std::unique_ptr<grpc::ClientContext> ctx = MakeContext(options_.fetch_timeout, options_.token);
  CallScope scope(this, ctx.get());
  std::unique_ptr<grpc::ClientReader<v1::FetchBaseResponse>> reader =
      stub_->FetchBase(ctx.get(), request);
  absl::Status local;  // a callback's error, or a protocol error
  bool header_seen = false;
  v1::FetchBaseResponse message;
  while (local.ok() && reader->Read(&message)) {
    if (message.part_case() == v1::FetchBaseResponse::kHeader) {
      if (header_seen) {
        local = absl::InternalError("FetchBase: the controller sent a second header");
      } else {
        header_seen = true;
        local = on_header(message.header());
      }
    } else if (!header_seen) {
      local = absl::InternalError("FetchBase: the controller sent pack data before the header");
    } else {
      local = on_chunk(message.pack_data());
    }
  }
  if (!local.ok()) ctx->TryCancel();
  grpc::Status st = reader->Finish();
  if (!local.ok()) return local;
  if (!st.ok()) return FromGrpcStatus(st);
  if (!header_seen) return absl::InternalError("FetchBase: the controller sent no header");
  return absl::OkStatus();
}

absl::StatusOr<v1::UploadResultResponse> GrpcControllerClient::UploadResult(
    const v1::UploadHeader& header,
    const std::function<absl::Status(const ChunkSink& write)>& source) {
  const int64_t rate = std::max<int64_t>(options_.upload_bytes_per_second, 1);
  const absl::Duration timeout =
      options_.call_timeout + absl::Seconds(std::max<int64_t>(header.pack_size(), 0) / rate);
  std::unique_ptr<grpc::ClientContext> ctx = MakeContext(timeout, options_.token);
  CallScope scope(this, ctx.get());
  v1::UploadResultResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::UploadResultRequest>> writer =
      stub_->UploadResult(ctx.get(), &response);
  bool broken = false;
  absl::Status local;
  {
    v1::UploadResultRequest first;
    *first.mutable_header() = header;
    broken = !writer->Write(first);
  }
  if (!broken) {
    v1::UploadResultRequest chunk_message;
    local = source([&](absl::string_view chunk) -> absl::Status {
      chunk_message.set_pack_data(chunk.data(), chunk.size());
      if (!writer->Write(chunk_message)) {
        broken = true;
        return absl::UnavailableError("the upload stream broke");
      }
      return absl::OkStatus();
    });
    if (!local.ok() && !broken) ctx->TryCancel();  // the source failed on its own
    if (local.ok()) writer->WritesDone();
  }
  grpc::Status st = writer->Finish();
  // A broken stream's real cause (e.g. FAILED_PRECONDITION after the header) is the status.
  if (!local.ok() && !broken) return local;
  if (!st.ok()) return FromGrpcStatus(st);
  if (broken) return absl::UnavailableError("the upload stream broke");
  return response;
}

}  // namespace harness::agentd
