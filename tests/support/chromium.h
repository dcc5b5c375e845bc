// A real browser for tests: Debian's headless `chromium`, driven over the DevTools protocol on
// a pipe (--remote-debugging-pipe: JSON messages ended by NUL, commands on the child's fd 3,
// answers and events on its fd 4), so no websocket library and no port is needed. It loads a
// page, evaluates JavaScript in it and takes screenshots. Started with its own profile folder
// and no network but what the page asks (tests point it at 127.0.0.1 only); killed by pid.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace harness::testing {

// The chromium binary, or "" when it is not installed (tests then skip).
std::string ChromiumBin();

class Chromium {
 public:
  // Starts chromium with a `width`x`height` window and a blank page, profile in `profile_dir`.
  static absl::StatusOr<std::unique_ptr<Chromium>> Start(const std::string& profile_dir,
                                                          int width, int height,
                                                          const std::string& log_file);
  ~Chromium();  // closes the browser; kills it (by pid) if it does not go

  // A DevTools command on the page; its "result", or the protocol's error as a status.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, nlohmann::json params,
                                      absl::Duration timeout = absl::Seconds(20));
  // Navigates and waits for the page's load event.
  absl::Status Navigate(const std::string& url);
  // Evaluates `expression` (awaiting a promise) and returns its value as JSON.
  absl::StatusOr<nlohmann::json> Eval(const std::string& expression);
  // Polls `expression` until it is true or `timeout` passes; its last value's truth.
  bool WaitUntil(const std::string& expression, absl::Duration timeout);
  // A PNG of the viewport, written to `path`.
  absl::Status Screenshot(const std::string& path);

 private:
  Chromium() = default;
  absl::Status Send(const nlohmann::json& message);
  // The next message from the browser (deadline: `until`).
  absl::StatusOr<nlohmann::json> Receive(absl::Time until);
  absl::StatusOr<nlohmann::json> CallIn(const std::string& session, const std::string& method,
                                        nlohmann::json params, absl::Duration timeout);

  pid_t pid_ = -1;
  int to_browser_ = -1;    // its fd 3
  int from_browser_ = -1;  // its fd 4
  std::string buffer_;     // bytes read past the last message
  int next_id_ = 1;
  std::string session_;    // the page's flattened session
  bool loaded_ = false;    // a Page.loadEventFired seen since the last Navigate
};

}  // namespace harness::testing
