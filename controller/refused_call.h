// Reactors that end a call at once with a status, for the streaming handlers whose caller the
// access check refused (unary handlers use ctx->DefaultReactor()). Nothing is read or written.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "rpc/status.h"

namespace harness {

template <typename In, typename Out>
class RefusedBidi : public grpc::ServerBidiReactor<In, Out> {
 public:
  explicit RefusedBidi(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

template <typename Out>
class RefusedWriter : public grpc::ServerWriteReactor<Out> {
 public:
  explicit RefusedWriter(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

template <typename In>
class RefusedReader : public grpc::ServerReadReactor<In> {
 public:
  explicit RefusedReader(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

}  // namespace harness
