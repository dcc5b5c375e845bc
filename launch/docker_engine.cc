// The Docker Engine API client (see docker_engine.h).
#include "launch/docker_engine.h"

#include <curl/curl.h>
#include <string.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace harness::launch {
namespace {

using json = nlohmann::json;

// The newest API version this client was written against, and the oldest it can use (Init and
// NanoCpus need 1.25).
constexpr int kMaxApiMinor = 41;
constexpr int kMinApiMinor = 25;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// "1.41" -> 41; -1 for anything that is not "1.<minor>".
int ApiMinor(absl::string_view v) {
  std::vector<absl::string_view> parts = absl::StrSplit(v, '.');
  int major = 0, minor = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor) || major != 1) {
    return -1;
  }
  return minor;
}

// The "message" of docker's error body, or the body itself.
std::string DockerMessage(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  std::string out = body.substr(0, 300);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "(no message)" : out;
}

absl::Status HttpError(absl::string_view what, long http, const std::string& body) {
  std::string msg = absl::StrCat(what, ": HTTP ", http, ": ", DockerMessage(body));
  switch (http) {
    case 400:
      return absl::InvalidArgumentError(msg);
    case 401:
    case 403:
      return absl::PermissionDeniedError(msg);
    case 404:
      return absl::NotFoundError(msg);
    case 409:
      return absl::FailedPreconditionError(msg);
    case 500:
      return absl::InternalError(msg);
    case 503:
      return absl::UnavailableError(msg);
    default:
      return absl::UnknownError(msg);
  }
}

absl::Status CurlError(absl::string_view what, const std::string& socket, CURLcode code,
                       const char* detail, long os_errno) {
  std::string text = detail != nullptr && detail[0] != '\0' ? detail : curl_easy_strerror(code);
  if (code == CURLE_COULDNT_CONNECT) {
    // curl's own text names the URL's host and port, which mean nothing on a unix socket.
    text = os_errno != 0 ? absl::StrCat("connect: ", strerror(static_cast<int>(os_errno)))
                         : std::string(curl_easy_strerror(code));
  }
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return absl::UnavailableError(absl::StrCat(
          what, ": docker daemon at unix://", socket,
          " is not reachable (is dockerd running, and may this user use its socket?): ", text));
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": docker daemon at unix://", socket, " did not answer: ", text));
    default:
      return absl::UnavailableError(
          absl::StrCat(what, ": talking to the docker daemon at unix://", socket, ": ", text));
  }
}

// One easy handle, cleaned up on scope exit.
struct Easy {
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  ~Easy() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (h != nullptr) curl_easy_cleanup(h);
  }
};

std::string Escape(absl::string_view s) {
  char* e = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

// {"label":["a=b",...], ...} for docker's filters= parameter, URL-escaped.
std::string Filters(const std::map<std::string, std::vector<std::string>>& f) {
  json j = json::object();
  for (const auto& [k, v] : f) {
    if (!v.empty()) j[k] = v;
  }
  return Escape(j.dump());
}

std::map<std::string, std::string> StringMap(const json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t Int(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

bool Bool(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string StripSlash(std::string name) {
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

absl::StatusOr<json> ParseBody(absl::string_view what, const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(what, ": docker answered with invalid JSON: ", body.substr(0, 200)));
  }
  return j;
}

std::optional<DockerEvent> ParseEvent(absl::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  DockerEvent e;
  e.type = Str(j, "Type");
  e.action = Str(j, "Action");
  auto actor = j.find("Actor");
  if (actor != j.end() && actor->is_object()) {
    e.id = Str(*actor, "ID");
    auto attrs = actor->find("Attributes");
    if (attrs != actor->end()) e.attributes = StringMap(*attrs);
  }
  if (e.id.empty()) e.id = Str(j, "id");
  int64_t nanos = Int(j, "timeNano");
  e.time = nanos != 0 ? absl::FromUnixNanos(nanos) : absl::FromUnixSeconds(Int(j, "time"));
  return e;
}

}  // namespace

absl::Time ParseDockerTime(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::InfinitePast();
  if (t < absl::FromUnixSeconds(0)) return absl::InfinitePast();  // "0001-01-01...": never
  return t;
}

DockerEngine::DockerEngine(DockerEngineOptions options) : options_(std::move(options)) {
  GlobalInit();
}

DockerEngine::~DockerEngine() = default;

absl::StatusOr<DockerEngine::Response> DockerEngine::Raw(absl::string_view what,
                                                         absl::string_view method,
                                                         const std::string& url,
                                                         absl::string_view body,
                                                         absl::Duration timeout) {
  Easy e;
  if (e.h == nullptr) return absl::InternalError(absl::StrCat(what, ": curl_easy_init failed"));
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {};
  const std::string method_s(method);
  curl_easy_setopt(e.h, CURLOPT_UNIX_SOCKET_PATH, options_.socket.c_str());
  curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.h, CURLOPT_CUSTOMREQUEST, method_s.c_str());
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(e.h, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (method == "POST" || method == "PUT") {
    e.headers = curl_slist_append(e.headers, "Content-Type: application/json");
    curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode code = curl_easy_perform(e.h);
  if (code != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(e.h, CURLINFO_OS_ERRNO, &os_errno);
    return CurlError(what, options_.socket, code, errbuf, os_errno);
  }
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.http_status);
  return r;
}

absl::StatusOr<DockerVersion> DockerEngine::Version() {
  absl::StatusOr<Response> r =
      Raw("docker version", "GET", "http://localhost/version", "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError("docker version", r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody("docker version", r->body);
  if (!j.ok()) return j.status();
  DockerVersion v{Str(*j, "Version"), Str(*j, "ApiVersion"), Str(*j, "MinAPIVersion")};
  const int daemon_max = ApiMinor(v.api_version);
  if (daemon_max < 0) {
    return absl::FailedPreconditionError(absl::StrCat("docker version: the daemon's API version ",
                                                      v.api_version, " is not 1.<minor>"));
  }
  int use = std::min(daemon_max, kMaxApiMinor);
  const int daemon_min = ApiMinor(v.min_api_version);
  if (use < kMinApiMinor || (daemon_min >= 0 && use < daemon_min)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "docker version: daemon ", v.version, " speaks API ", v.min_api_version, " to ",
        v.api_version, "; this client needs one of 1.", kMinApiMinor, " to 1.", kMaxApiMinor));
  }
  absl::MutexLock l(&mu_);
  api_version_ = absl::StrCat("1.", use);
  return v;
}

absl::StatusOr<std::string> DockerEngine::ApiVersion() {
  {
    absl::MutexLock l(&mu_);
    if (!api_version_.empty()) return api_version_;
  }
  absl::StatusOr<DockerVersion> v = Version();
  if (!v.ok()) return v.status();
  absl::MutexLock l(&mu_);
  return api_version_;
}

absl::StatusOr<DockerEngine::Response> DockerEngine::Call(absl::string_view what,
                                                          absl::string_view method,
                                                          absl::string_view path,
                                                          absl::string_view body,
                                                          absl::Duration timeout) {
  absl::StatusOr<std::string> api = ApiVersion();
  if (!api.ok()) {
    return absl::Status(api.status().code(), absl::StrCat(what, ": ", api.status().message()));
  }
  return Raw(what, method, absl::StrCat("http://localhost/v", *api, path), body, timeout);
}

absl::StatusOr<std::string> DockerEngine::Create(const ContainerSpec& spec) {
  const std::string what = absl::StrCat("docker create ", spec.name);
  json host = json::object();
  if (!spec.network_mode.empty()) host["NetworkMode"] = spec.network_mode;
  if (spec.memory_bytes > 0) host["Memory"] = spec.memory_bytes;
  if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
  if (spec.init) host["Init"] = true;
  if (!spec.binds.empty()) host["Binds"] = spec.binds;
  json c = {{"Image", spec.image}, {"HostConfig", host}};
  if (!spec.cmd.empty()) c["Cmd"] = spec.cmd;
  if (spec.entrypoint.has_value()) c["Entrypoint"] = *spec.entrypoint;
  if (!spec.env.empty()) c["Env"] = spec.env;
  if (!spec.labels.empty()) c["Labels"] = spec.labels;
  if (!spec.working_dir.empty()) c["WorkingDir"] = spec.working_dir;
  if (spec.stop_timeout.has_value()) c["StopTimeout"] = *spec.stop_timeout;
  std::string path = "/containers/create";
  if (!spec.name.empty()) absl::StrAppend(&path, "?name=", Escape(spec.name));
  absl::StatusOr<Response> r = Call(what, "POST", path, c.dump(), options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 201) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  std::string id = Str(*j, "Id");
  if (id.empty()) return absl::InternalError(absl::StrCat(what, ": no Id in ", r->body));
  return id;
}

absl::Status DockerEngine::Start(absl::string_view id) {
  const std::string what = absl::StrCat("docker start ", id);
  absl::StatusOr<Response> r =
      Call(what, "POST", absl::StrCat("/containers/", id, "/start"), "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status == 204 || r->http_status == 304) return absl::OkStatus();
  return HttpError(what, r->http_status, r->body);
}

absl::Status DockerEngine::Kill(absl::string_view id, absl::string_view signal) {
  const std::string what = absl::StrCat("docker kill --signal ", signal, " ", id);
  absl::StatusOr<Response> r =
      Call(what, "POST", absl::StrCat("/containers/", id, "/kill?signal=", Escape(signal)), "",
           options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status == 204) return absl::OkStatus();
  return HttpError(what, r->http_status, r->body);
}

absl::Status DockerEngine::Stop(absl::string_view id, absl::Duration grace) {
  const int64_t t = std::max<int64_t>(0, absl::ToInt64Seconds(absl::Ceil(grace, absl::Seconds(1))));
  const std::string what = absl::StrCat("docker stop -t ", t, " ", id);
  absl::StatusOr<Response> r = Call(what, "POST", absl::StrCat("/containers/", id, "/stop?t=", t),
                                    "", options_.timeout + absl::Seconds(t));
  if (!r.ok()) return r.status();
  if (r->http_status == 204 || r->http_status == 304) return absl::OkStatus();
  return HttpError(what, r->http_status, r->body);
}

absl::StatusOr<ContainerInfo> DockerEngine::Inspect(absl::string_view id) {
  const std::string what = absl::StrCat("docker inspect ", id);
  absl::StatusOr<Response> r =
      Call(what, "GET", absl::StrCat("/containers/", id, "/json"), "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  ContainerInfo info;
  info.id = Str(*j, "Id");
  info.name = StripSlash(Str(*j, "Name"));
  auto config = j->find("Config");
  if (config != j->end() && config->is_object()) {
    info.image = Str(*config, "Image");
    auto labels = config->find("Labels");
    if (labels != config->end()) info.labels = StringMap(*labels);
  }
  auto state = j->find("State");
  if (state != j->end() && state->is_object()) {
    info.status = Str(*state, "Status");
    info.running = Bool(*state, "Running");
    info.pid = Int(*state, "Pid");
    info.exit_code = static_cast<int>(Int(*state, "ExitCode"));
    info.oom_killed = Bool(*state, "OOMKilled");
    info.error = Str(*state, "Error");
    info.started_at = ParseDockerTime(Str(*state, "StartedAt"));
    info.finished_at = ParseDockerTime(Str(*state, "FinishedAt"));
  }
  return info;
}

absl::StatusOr<std::vector<ContainerSummary>> DockerEngine::List(
    const std::vector<std::string>& labels) {
  const std::string what =
      absl::StrCat("docker ps --all --filter label=", absl::StrJoin(labels, " --filter label="));
  absl::StatusOr<Response> r = Call(
      what, "GET", absl::StrCat("/containers/json?all=1&filters=", Filters({{"label", labels}})),
      "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  if (!j->is_array()) return absl::InternalError(absl::StrCat(what, ": not a JSON array"));
  std::vector<ContainerSummary> out;
  for (const json& c : *j) {
    ContainerSummary s;
    s.id = Str(c, "Id");
    auto names = c.find("Names");
    if (names != c.end() && names->is_array() && !names->empty() && (*names)[0].is_string()) {
      s.name = StripSlash((*names)[0].get<std::string>());
    }
    s.image = Str(c, "Image");
    s.state = Str(c, "State");
    auto l = c.find("Labels");
    if (l != c.end()) s.labels = StringMap(*l);
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::string> DockerEngine::Logs(absl::string_view id, int tail) {
  const std::string what = absl::StrCat("docker logs --tail ", tail, " ", id);
  absl::StatusOr<Response> r =
      Call(what, "GET", absl::StrCat("/containers/", id, "/logs?stdout=1&stderr=1&tail=", tail), "",
           options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  // Without a TTY docker frames each write: 1 byte stream (0-2), 3 zero bytes, 4 bytes
  // big-endian length, then the bytes. Anything else is taken as it is (a TTY's raw stream).
  const std::string& b = r->body;
  std::string out;
  size_t pos = 0;
  while (pos + 8 <= b.size()) {
    const auto* h = reinterpret_cast<const unsigned char*>(b.data() + pos);
    if (h[0] > 2 || h[1] != 0 || h[2] != 0 || h[3] != 0) return b;
    const size_t n = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
    if (pos + 8 + n > b.size()) return b;
    out.append(b, pos + 8, n);
    pos += 8 + n;
  }
  return pos == b.size() ? out : b;
}

absl::Status DockerEngine::Remove(absl::string_view id, bool force) {
  const std::string what = absl::StrCat("docker rm ", force ? "--force " : "", id);
  absl::StatusOr<Response> r =
      Call(what, "DELETE", absl::StrCat("/containers/", id, force ? "?force=1" : ""), "",
           options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status == 204 || r->http_status == 404) return absl::OkStatus();
  // 409 "removal of container ... is already in progress": someone (AutoRemove) is on it.
  if (r->http_status == 409 &&
      DockerMessage(r->body).find("already in progress") != std::string::npos) {
    return absl::OkStatus();
  }
  return HttpError(what, r->http_status, r->body);
}

// --- the event stream --------------------------------------------------------------------------

struct DockerEventStream::Impl {
  std::string socket;
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
  std::string partial;               // bytes of an event not yet ended by a newline
  std::string error_body;            // the body of a non-200 answer
  std::vector<DockerEvent> pending;  // parsed, not yet handed out
  bool headers_done = false;
  bool finished = false;
  CURLcode result = CURLE_OK;

  ~Impl() {
    if (multi != nullptr && easy != nullptr) curl_multi_remove_handle(multi, easy);
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  long Http() const {
    long http = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
    return http;
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    absl::string_view line(data, size * n);
    if (line == "\r\n" || line == "\n") self->headers_done = true;
    return size * n;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (self->Http() != 200) {
      self->error_body.append(data, size * n);
      return size * n;
    }
    self->partial.append(data, size * n);
    size_t start = 0;
    for (size_t nl; (nl = self->partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      absl::string_view line(self->partial.data() + start, nl - start);
      if (line.empty()) continue;
      if (std::optional<DockerEvent> e = ParseEvent(line)) self->pending.push_back(std::move(*e));
    }
    self->partial.erase(0, start);
    return size * n;
  }

  // Runs transfers and collects the end of this one, if it ended.
  void Perform() {
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg == CURLMSG_DONE && m->easy_handle == easy) {
        finished = true;
        result = m->data.result;
      }
    }
  }

  absl::Status Ended(absl::string_view what) const {
    if (result != CURLE_OK) {
      long os_errno = 0;
      curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
      return CurlError(what, socket, result, errbuf, os_errno);
    }
    long http = Http();
    if (http != 200) return HttpError(what, http, error_body);
    return absl::UnavailableError(
        absl::StrCat(what, ": the docker daemon at unix://", socket, " closed the stream"));
  }
};

DockerEventStream::DockerEventStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DockerEventStream::~DockerEventStream() = default;

absl::Status DockerEventStream::Poll(absl::Duration timeout, int wake_fd,
                                     std::vector<DockerEvent>* out) {
  Impl& s = *impl_;
  if (s.pending.empty() && !s.finished) {
    curl_waitfd extra{};
    extra.fd = wake_fd;
    extra.events = CURL_WAIT_POLLIN;
    int ms = static_cast<int>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)))));
    curl_multi_poll(s.multi, wake_fd >= 0 ? &extra : nullptr, wake_fd >= 0 ? 1 : 0, ms, nullptr);
    s.Perform();
  }
  for (DockerEvent& e : s.pending) out->push_back(std::move(e));
  s.pending.clear();
  if (s.finished) return s.Ended("docker events");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DockerEventStream>> DockerEngine::Events(
    const std::vector<std::string>& actions, const std::vector<std::string>& labels) {
  using Impl = DockerEventStream::Impl;
  const std::string what = "docker events";
  absl::StatusOr<std::string> api = ApiVersion();
  if (!api.ok()) {
    return absl::Status(api.status().code(), absl::StrCat(what, ": ", api.status().message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->socket = options_.socket;
  impl->multi = curl_multi_init();
  impl->easy = curl_easy_init();
  if (impl->multi == nullptr || impl->easy == nullptr) {
    return absl::InternalError(absl::StrCat(what, ": curl init failed"));
  }
  // since: replay what happened in the last seconds, so that an event between the daemon
  // flushing its headers and subscribing us (or between two streams) is not missed. Callers
  // ignore events they have already handled.
  const std::string url = absl::StrCat(
      "http://localhost/v", *api, "/events?since=", absl::ToUnixSeconds(absl::Now()) - 2,
      "&filters=", Filters({{"type", {"container"}}, {"event", actions}, {"label", labels}}));
  CURL* e = impl->easy;
  curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, options_.socket.c_str());
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, impl->errbuf);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, impl.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, impl.get());
  curl_multi_add_handle(impl->multi, e);
  // Wait for the answer's headers (docker sends them at once), so that a daemon that is down
  // or refuses fails here rather than at the first Poll.
  const absl::Time deadline = absl::Now() + options_.timeout;
  while (!impl->headers_done && !impl->finished && absl::Now() < deadline) {
    impl->Perform();
    if (impl->headers_done || impl->finished) break;
    curl_multi_poll(impl->multi, nullptr, 0, 100, nullptr);
  }
  if (impl->finished) return impl->Ended(what);
  if (!impl->headers_done) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": the docker daemon at unix://",
                                                    options_.socket, " did not answer within ",
                                                    absl::FormatDuration(options_.timeout)));
  }
  if (long http = impl->Http(); http != 200) {
    // Read the rest of the (short) error body.
    while (!impl->finished && absl::Now() < deadline) {
      curl_multi_poll(impl->multi, nullptr, 0, 100, nullptr);
      impl->Perform();
    }
    return HttpError(what, http, impl->error_body);
  }
  return std::unique_ptr<DockerEventStream>(new DockerEventStream(std::move(impl)));
}

bool SwarmTaskEnded(absl::string_view state) {
  return state == "complete" || state == "failed" || state == "shutdown" ||
         state == "rejected" || state == "orphaned" || state == "remove";
}

absl::StatusOr<SwarmInfo> DockerEngine::Swarm() {
  const std::string what = "docker info";
  absl::StatusOr<Response> r = Call(what, "GET", "/info", "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  SwarmInfo info;
  auto sw = j->find("Swarm");
  if (sw != j->end() && sw->is_object()) {
    info.node_id = Str(*sw, "NodeID");
    info.local_node_state = Str(*sw, "LocalNodeState");
    info.control_available = Bool(*sw, "ControlAvailable");
  }
  return info;
}

absl::StatusOr<SwarmService> DockerEngine::InspectService(absl::string_view name) {
  const std::string what = absl::StrCat("docker service inspect ", name);
  absl::StatusOr<Response> r =
      Call(what, "GET", absl::StrCat("/services/", Escape(name)), "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  SwarmService s;
  s.id = Str(*j, "ID");
  auto version = j->find("Version");
  if (version != j->end() && version->is_object()) {
    s.version = static_cast<uint64_t>(Int(*version, "Index"));
  }
  auto spec = j->find("Spec");
  if (spec == j->end() || !spec->is_object()) {
    return absl::InternalError(absl::StrCat(what, ": no Spec in ", r->body.substr(0, 200)));
  }
  s.spec = spec->dump();
  if (auto labels = spec->find("Labels"); labels != spec->end()) s.labels = StringMap(*labels);
  auto mode = spec->find("Mode");
  if (mode != spec->end() && mode->is_object()) {
    auto rep = mode->find("Replicated");
    if (rep != mode->end() && rep->is_object()) s.replicas = Int(*rep, "Replicas");
  }
  return s;
}

absl::StatusOr<std::string> DockerEngine::CreateService(absl::string_view name,
                                                        const std::string& spec) {
  const std::string what = absl::StrCat("docker service create ", name);
  absl::StatusOr<Response> r = Call(what, "POST", "/services/create", spec, options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 201 && r->http_status != 200) {
    return HttpError(what, r->http_status, r->body);
  }
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  std::string id = Str(*j, "ID");
  if (id.empty()) return absl::InternalError(absl::StrCat(what, ": no ID in ", r->body));
  return id;
}

absl::Status DockerEngine::UpdateService(absl::string_view id, uint64_t version,
                                         const std::string& spec) {
  const std::string what = absl::StrCat("docker service update ", id, " (version ", version, ")");
  absl::StatusOr<Response> r =
      Call(what, "POST", absl::StrCat("/services/", Escape(id), "/update?version=", version), spec,
           options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status == 200) return absl::OkStatus();
  const std::string message = DockerMessage(r->body);
  if (message.find("out of sequence") != std::string::npos) {
    return absl::AbortedError(absl::StrCat(what, ": ", message));
  }
  return HttpError(what, r->http_status, r->body);
}

absl::StatusOr<std::vector<SwarmTask>> DockerEngine::Tasks(absl::string_view service) {
  const std::string what = absl::StrCat("docker service ps ", service);
  absl::StatusOr<Response> r =
      Call(what, "GET",
           absl::StrCat("/tasks?filters=", Filters({{"service", {std::string(service)}}})), "",
           options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  std::vector<SwarmTask> out;
  if (!j->is_array()) return out;
  for (const json& t : *j) {
    if (!t.is_object()) continue;
    SwarmTask task;
    task.id = Str(t, "ID");
    task.service_id = Str(t, "ServiceID");
    task.node_id = Str(t, "NodeID");
    task.slot = static_cast<int>(Int(t, "Slot"));
    task.desired_state = Str(t, "DesiredState");
    task.created = ParseDockerTime(Str(t, "CreatedAt"));
    auto status = t.find("Status");
    if (status != t.end() && status->is_object()) {
      task.state = Str(*status, "State");
      task.message = Str(*status, "Message");
      task.error = Str(*status, "Err");
      task.updated = ParseDockerTime(Str(*status, "Timestamp"));
      auto cs = status->find("ContainerStatus");
      if (cs != status->end() && cs->is_object()) {
        task.container_id = Str(*cs, "ContainerID");
        task.exit_code = static_cast<int>(Int(*cs, "ExitCode"));
      }
    }
    out.push_back(std::move(task));
  }
  return out;
}

absl::StatusOr<std::vector<SwarmNode>> DockerEngine::Nodes() {
  const std::string what = "docker node ls";
  absl::StatusOr<Response> r = Call(what, "GET", "/nodes", "", options_.timeout);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return HttpError(what, r->http_status, r->body);
  absl::StatusOr<json> j = ParseBody(what, r->body);
  if (!j.ok()) return j.status();
  std::vector<SwarmNode> out;
  if (!j->is_array()) return out;
  for (const json& n : *j) {
    if (!n.is_object()) continue;
    SwarmNode node;
    node.id = Str(n, "ID");
    if (auto d = n.find("Description"); d != n.end() && d->is_object()) {
      node.hostname = Str(*d, "Hostname");
    }
    if (auto st = n.find("Status"); st != n.end() && st->is_object()) {
      node.addr = Str(*st, "Addr");
      node.state = Str(*st, "State");
    }
    out.push_back(std::move(node));
  }
  return out;
}

}  // namespace harness::launch
