// The two following streams of ControlService: FollowLog (an attempt's log, from the live logs
// agents stream, or the kept file of an attempt that ended long ago) and WatchEvents (the
// event feed). Both are PollWriters: they write what is there and look again every
// kFollowPoll while nothing is new, so a slow reader holds nothing of the controller up.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "controller/controller.h"
#include "harness/v1/control.pb.h"

namespace harness {

inline constexpr absl::Duration kFollowPoll = absl::Milliseconds(100);
// The most bytes of log in one LogChunk.
inline constexpr size_t kLogChunkBytes = 64 << 10;
// How many recent events WatchEvents sends first by default.
inline constexpr int kDefaultRecentEvents = 100;

// The reactor of one FollowLog call (validated and authorized by the caller).
grpc::ServerWriteReactor<v1::LogChunk>* StartFollowLog(Controller* controller,
                                                       const v1::FollowLogRequest& request);
// The reactor of one WatchEvents call.
grpc::ServerWriteReactor<v1::Event>* StartWatchEvents(Controller* controller,
                                                      const v1::WatchEventsRequest& request);

// The API form of a feed event.
v1::Event ToApiEvent(const Event& e);

}  // namespace harness
