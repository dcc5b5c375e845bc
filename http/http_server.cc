// The HTTP listener (see http_server.h).
#include "core/thread_name.h"
#include "http/http_server.h"

#include <httplib.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "http/event_stream.h"
#include "config/config.h"

namespace harness::http {
namespace {

constexpr int kIoTimeoutSeconds = 10;       // reading a request, writing an answer
constexpr int kKeepAliveSeconds = 5;        // an idle kept-alive connection is closed
constexpr size_t kMaxRequestBytes = 65536;  // no request has a body worth the name
// A status stream writes a comment this often when nothing changed: a client that went away
// is noticed (the write fails) and its thread and slot freed within this time.
constexpr absl::Duration kStreamKeepAlive = absl::Seconds(5);

// Sent with every answer. The dashboard's pages load only their own script, style sheet and API
// from this origin (no inline script or style="" attribute, no eval), are never framed, and
// leak no URL in a Referer; the JSON and text answers get the same headers, which cost nothing.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

HttpRequest FromHttplib(const httplib::Request& req) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [name, value] : req.params) r.params.emplace(name, value);
  if (req.has_header("Authorization")) r.authorization = req.get_header_value("Authorization");
  if (req.has_header("Last-Event-ID")) r.last_event_id = req.get_header_value("Last-Event-ID");
  return r;
}

// Server-Sent Events of status snapshots, one `status` event per StatusFeed frame.
void StreamStatus(StatusFeed* feed, httplib::Response& res) {
  res.status = 200;
  res.set_header("Cache-Control", "no-store");
  res.set_chunked_content_provider(
      "text/event-stream",
      [feed, seen = uint64_t{0}](size_t, httplib::DataSink& sink) mutable {
        std::optional<StatusFeed::Frame> f = feed->Next(seen, kStreamKeepAlive);
        if (!f) {  // the server stops
          sink.done();
          return true;
        }
        std::string out;
        if (seen == 0) out = "retry: 2000\n";  // the browser reconnects after 2 s
        if (f->version == seen) {
          out += ": keep-alive\n\n";
        } else {
          seen = f->version;
          absl::StrAppend(&out, "event: status\nid: ", seen, "\ndata: ", f->json, "\n\n");
        }
        return sink.write(out.data(), out.size());
      },
      [feed](bool) { feed->Leave(); });
}

}  // namespace

void HttpServer::Answer(const httplib::Request& req, httplib::Response& res) {
  HttpAnswer a = api_->Handle(FromHttplib(req));
  if (a.stream_status && req.method == "GET") {
    if (feed_->Join()) return StreamStatus(feed_.get(), res);
    a = ErrorAnswer(absl::UnavailableError(absl::StrCat(
        "GET ", req.path, ": ", kMaxStatusStreams,
        " status streams are open already (the most served at once); try again later")));
  } else if (a.event_stream != nullptr && req.method == "GET") {
    // Each event stream holds a request thread: keep some for everything else.
    if (event_streams_.fetch_add(1) >= kMaxEventStreams) {
      event_streams_.fetch_sub(1);
      a = ErrorAnswer(absl::UnavailableError(absl::StrCat(
          "too many event streams (at most ", kMaxEventStreams, "); close one and retry")));
    } else {
      res.status = 200;
      res.set_header("Cache-Control", "no-store");
      res.set_header("X-Accel-Buffering", "no");
      EventFeed* feed = a.event_stream;
      const uint64_t after = a.events_after;
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, feed, after](size_t, httplib::DataSink& sink) {
            StreamEvents(*feed, after, stopping_, [&sink](absl::string_view data) {
              return sink.is_writable() && sink.write(data.data(), data.size());
            });
            sink.done();
            return true;
          },
          [this](bool) { event_streams_.fetch_sub(1); });
      return;
    }
  }
  res.status = a.status;
  if (!a.allow.empty()) res.set_header("Allow", a.allow);
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::move(a.body), a.content_type.c_str());
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpApi* api,
                                                              const std::string& listen,
                                                              const ServerSecurity& security) {
  if (absl::Status s = ValidateListenAddress(listen); !s.ok()) return s;
  size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  int port = std::stoi(listen.substr(colon + 1));
  if (host.empty()) host = "0.0.0.0";
  std::string bind_host = host;
  if (bind_host.size() >= 2 && bind_host.front() == '[') {
    bind_host = bind_host.substr(1, bind_host.size() - 2);
  }

  auto out = std::unique_ptr<HttpServer>(new HttpServer());
  if (security.tls()) {
    auto ssl = std::make_unique<httplib::SSLServer>(
        security.cert.c_str(), security.key.c_str(),
        security.client_ca.empty() ? nullptr : security.client_ca.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "harness.http.listen: cannot serve HTTPS with harness.tls.cert ", security.cert,
          " and harness.tls.key ", security.key, " (unreadable or not a matching pair)"));
    }
    out->server_ = std::move(ssl);
    out->tls_ = true;
  } else {
    out->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& s = *out->server_;
  s.new_task_queue = [] {
    return new httplib::ThreadPool(kHttpThreads + kMaxStatusStreams + kMaxEventStreams);
  };
  s.set_read_timeout(kIoTimeoutSeconds);
  s.set_write_timeout(kIoTimeoutSeconds);
  s.set_keep_alive_timeout(kKeepAliveSeconds);
  s.set_payload_max_length(kMaxRequestBytes);
  s.set_default_headers({{"Content-Security-Policy", kContentSecurityPolicy},
                         {"X-Content-Type-Options", "nosniff"},
                         {"Referrer-Policy", "no-referrer"}});
  Controller* controller = api->controller();
  StatusFeedOptions feed_options;
  feed_options.max_clients = kMaxStatusStreams;
  out->feed_ = std::make_unique<StatusFeed>([controller] { return controller->Status(); },
                                            feed_options);
  out->api_ = api;
  auto handler = [self = out.get()](const httplib::Request& req, httplib::Response& res) {
    self->Answer(req, res);
  };
  // Every path and method goes to the HttpApi, which answers 404 and 405 itself.
  s.Get(".*", handler);
  s.Post(".*", handler);
  s.Put(".*", handler);
  s.Patch(".*", handler);
  s.Delete(".*", handler);
  s.Options(".*", handler);

  int bound = port == 0 ? s.bind_to_any_port(bind_host) : (s.bind_to_port(bind_host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("harness.http.listen: cannot listen on ", listen,
                                               " (address in use or not available here)"));
  }
  out->address_ = absl::StrCat(host, ":", bound);
  out->thread_ = std::thread([srv = out->server_.get()] {
    NameThisThread("http");
    srv->listen_after_bind();
  });
  // stop() only ends a server that runs: wait for it to, so the destructor cannot miss it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!s.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return out;
}

HttpServer::~HttpServer() {
  stopping_ = true;  // event streams end within a second
  if (feed_) feed_->Stop();  // status streams end their answers, so stop() need not wait
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace harness::http
