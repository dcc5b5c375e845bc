// Headless chromium over the DevTools pipe (see chromium.h).
#include "tests/support/chromium.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace harness::testing {

using nlohmann::json;

std::string ChromiumBin() {
  for (const char* p : {"/usr/bin/chromium", "/usr/lib/chromium/chromium"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<Chromium>> Chromium::Start(const std::string& profile_dir,
                                                          int width, int height,
                                                          const std::string& log_file) {
  const std::string bin = ChromiumBin();
  if (bin.empty()) return absl::NotFoundError("chromium is not installed (apt-get install chromium)");
  int in[2], out[2];  // in: we write, it reads (fd 3); out: it writes (fd 4), we read
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe failed");
  }
  std::vector<std::string> args = {
      bin, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
      "--no-first-run", "--no-default-browser-check", "--disable-extensions",
      "--disable-background-networking", "--disable-sync", "--disable-dev-shm-usage",
      "--hide-scrollbars", "--mute-audio",
      absl::StrCat("--user-data-dir=", profile_dir),
      absl::StrCat("--window-size=", width, ",", height), "about:blank"};
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    ::dup2(in[0], 3);
    ::dup2(out[1], 4);
    // dup2 onto the same number keeps O_CLOEXEC (a process with no other files open gets its
    // pipe as fd 3 already): clear it, or the browser finds no pipe.
    ::fcntl(3, F_SETFD, 0);
    ::fcntl(4, F_SETFD, 0);
    int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  auto c = std::unique_ptr<Chromium>(new Chromium());
  c->pid_ = pid;
  c->to_browser_ = in[1];
  c->from_browser_ = out[0];
  ::signal(SIGPIPE, SIG_IGN);  // a browser that died is an error status, not a dead test
  // The page that about:blank opened: attach to it (flattened: commands carry its session).
  absl::StatusOr<json> targets = c->CallIn("", "Target.getTargets", json::object(), absl::Seconds(30));
  if (!targets.ok()) return targets.status();
  std::string page;
  for (const json& t : (*targets)["targetInfos"]) {
    if (t["type"] == "page") page = t["targetId"];
  }
  if (page.empty()) {
    absl::StatusOr<json> created =
        c->CallIn("", "Target.createTarget", {{"url", "about:blank"}}, absl::Seconds(20));
    if (!created.ok()) return created.status();
    page = (*created)["targetId"];
  }
  absl::StatusOr<json> attached = c->CallIn(
      "", "Target.attachToTarget", {{"targetId", page}, {"flatten", true}}, absl::Seconds(20));
  if (!attached.ok()) return attached.status();
  c->session_ = (*attached)["sessionId"];
  for (const char* domain : {"Page.enable", "Runtime.enable"}) {
    if (absl::StatusOr<json> r = c->Call(domain, json::object()); !r.ok()) return r.status();
  }
  if (absl::StatusOr<json> r = c->Call("Emulation.setDeviceMetricsOverride",
                                       {{"width", width}, {"height", height},
                                        {"deviceScaleFactor", 1}, {"mobile", false}});
      !r.ok()) {
    return r.status();
  }
  return c;
}

Chromium::~Chromium() {
  if (pid_ > 0) {
    (void)CallIn("", "Browser.close", json::object(), absl::Seconds(5));
    const absl::Time until = absl::Now() + absl::Seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (absl::Now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      ::usleep(20000);
    }
  }
  if (to_browser_ >= 0) ::close(to_browser_);
  if (from_browser_ >= 0) ::close(from_browser_);
}

absl::Status Chromium::Send(const json& message) {
  std::string bytes = message.dump();
  bytes.push_back('\0');
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(to_browser_, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return absl::UnavailableError("chromium's DevTools pipe is closed (did it exit?)");
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<json> Chromium::Receive(absl::Time until) {
  for (;;) {
    if (size_t end = buffer_.find('\0'); end != std::string::npos) {
      std::string one = buffer_.substr(0, end);
      buffer_.erase(0, end + 1);
      json m = json::parse(one, nullptr, /*allow_exceptions=*/false);
      if (m.is_discarded()) return absl::InternalError("chromium sent a message that is not JSON");
      return m;
    }
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no answer from chromium in time");
    }
    pollfd p{from_browser_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char chunk[65536];
    ssize_t n = ::read(from_browser_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("chromium closed its DevTools pipe (did it exit?)");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

absl::StatusOr<json> Chromium::CallIn(const std::string& session, const std::string& method,
                                      json params, absl::Duration timeout) {
  const int id = next_id_++;
  json message = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session.empty()) message["sessionId"] = session;
  if (absl::Status s = Send(message); !s.ok()) return s;
  const absl::Time until = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<json> m = Receive(until);
    if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat(method, ": ", m.status().message()));
    if (m->contains("method") && (*m)["method"] == "Page.loadEventFired") loaded_ = true;
    if (!m->contains("id") || (*m)["id"] != id) continue;  // an event, or another answer
    if (m->contains("error")) {
      return absl::InternalError(absl::StrCat(method, ": ", (*m)["error"].dump()));
    }
    return (*m)["result"];
  }
}

absl::StatusOr<json> Chromium::Call(const std::string& method, json params,
                                    absl::Duration timeout) {
  return CallIn(session_, method, std::move(params), timeout);
}

absl::Status Chromium::Navigate(const std::string& url) {
  loaded_ = false;
  absl::StatusOr<json> r = Call("Page.navigate", {{"url", url}});
  if (!r.ok()) return r.status();
  if (r->contains("errorText")) {
    return absl::UnavailableError(absl::StrCat("cannot load ", url, ": ", (*r)["errorText"].dump()));
  }
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (!loaded_) {
    absl::StatusOr<json> m = Receive(until);
    if (!m.ok()) return m.status();
    if (m->contains("method") && (*m)["method"] == "Page.loadEventFired") loaded_ = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<json> Chromium::Eval(const std::string& expression) {
  absl::StatusOr<json> r = Call("Runtime.evaluate", {{"expression", expression},
                                                     {"returnByValue", true},
                                                     {"awaitPromise", true}});
  if (!r.ok()) return r.status();
  if (r->contains("exceptionDetails")) {
    return absl::InvalidArgumentError(
        absl::StrCat("JavaScript threw: ", (*r)["exceptionDetails"].dump()));
  }
  return (*r)["result"].value("value", json());
}

bool Chromium::WaitUntil(const std::string& expression, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<json> v = Eval(expression);
    if (v.ok() && v->is_boolean() && v->get<bool>()) return true;
    if (absl::Now() > until) return false;
    ::usleep(100000);
  }
}

absl::Status Chromium::Screenshot(const std::string& path) {
  absl::StatusOr<json> r = Call("Page.captureScreenshot", {{"format", "png"}});
  if (!r.ok()) return r.status();
  std::string png;
  if (!absl::Base64Unescape((*r)["data"].get<std::string>(), &png)) {
    return absl::InternalError("the screenshot is not base64");
  }
  std::ofstream(path, std::ios::binary) << png;
  return absl::OkStatus();
}

}  // namespace harness::testing
