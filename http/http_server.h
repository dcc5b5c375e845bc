// HttpServer: the controller's HTTP listener (http.listen), cpp-httplib (Debian's
// libcpp-httplib-dev) serving an HttpApi on a small pool of its own threads: no request runs on
// a gRPC or committer thread, and a handler holds a controller lock only while it copies a
// snapshot, never while it writes to the socket. With TLS files (the controller's tls.cert,
// tls.key, tls.client_ca) it speaks HTTPS only (mTLS with a client CA); the files are read at
// start. docs/HTTP.md is the user's reference.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "controller/server_security.h"
#include "http/api_routes.h"
#include "http/status_feed.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace harness::http {

// Threads answering plain requests (each serves one connection at a time), and the streams
// allowed at once: status snapshots (/api/v1/status/stream, the dashboard) and events
// (/api/v1/events). Each stream holds a thread of its own while it lasts, so the pool has room
// for all three and a stream past its cap is refused (503), never queued.
inline constexpr int kHttpThreads = 8;
inline constexpr int kMaxStatusStreams = 16;
inline constexpr int kMaxEventStreams = 4;

class HttpServer {
 public:
  // Listens on `listen` (HOST:PORT, [v6]:PORT or :PORT; port 0 picks a free one) and serves
  // `api` (which must outlive the server). The listen policy is the caller's (CheckListenPolicy).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpApi* api,
                                                           const std::string& listen,
                                                           const ServerSecurity& security);
  ~HttpServer();  // ends the streams, stops listening and waits for requests in progress

  // HOST:PORT actually listened on.
  const std::string& address() const { return address_; }
  bool tls() const { return tls_; }

 private:
  HttpServer() = default;
  std::unique_ptr<StatusFeed> feed_;  // before server_: streams wait on it
  void Answer(const httplib::Request& req, httplib::Response& res);

  const HttpApi* api_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<int> event_streams_{0};
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
  bool tls_ = false;
};

}  // namespace harness::http
