// TcpProxy (see tcp_proxy.h): poll() over the listening socket, the wake pipe and every pair.
#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace harness::testing {
namespace {

// Writes all of `n` bytes; false if the peer is gone.
bool WriteAll(int fd, const char* p, ssize_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= w;
  }
  return true;
}

int ConnectLocal(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

std::unique_ptr<TcpProxy> TcpProxy::Start(int target_port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd, 64) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "the proxy cannot listen on 127.0.0.1: errno " << errno;
    if (fd >= 0) ::close(fd);
    return nullptr;
  }
  std::unique_ptr<TcpProxy> p(new TcpProxy(fd, target_port));
  p->address_ = absl::StrCat("127.0.0.1:", ntohs(a.sin_port));
  return p;
}

TcpProxy::TcpProxy(int listen_fd, int target_port)
    : listen_fd_(listen_fd), target_port_(target_port) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) ADD_FAILURE() << "pipe2: errno " << errno;
  thread_ = std::thread([this] { Loop(); });
}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  Wake();
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void TcpProxy::HoldReplies(bool hold) {
  {
    absl::MutexLock l(&mu_);
    hold_ = hold;
  }
  Wake();
}

void TcpProxy::CutAll() {
  {
    absl::MutexLock l(&mu_);
    cut_ = true;
  }
  Wake();
  // Done once the loop has seen it (it clears the flag after closing every pair).
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(+[](bool* cut) { return !*cut; }, &cut_));
}

int TcpProxy::accepted() const {
  absl::MutexLock l(&mu_);
  return accepted_;
}

void TcpProxy::Wake() {
  char c = 1;
  (void)!::write(wake_[1], &c, 1);
}

void TcpProxy::Loop() {
  std::vector<Pair> pairs;
  auto close_pair = [](const Pair& p) {
    ::close(p.client);
    ::close(p.target);
  };
  while (true) {
    bool hold;
    {
      absl::MutexLock l(&mu_);
      if (stop_) break;
      if (cut_) {
        for (const Pair& p : pairs) close_pair(p);
        pairs.clear();
        cut_ = false;
      }
      hold = hold_;
    }
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    for (const Pair& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.target, static_cast<short>(hold ? 0 : POLLIN), 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[0].revents & POLLIN) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        int target = ConnectLocal(target_port_);
        if (target < 0) {
          ::close(client);  // the target is down: the client sees a closed connection
        } else {
          int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs.push_back({client, target});
          absl::MutexLock l(&mu_);
          ++accepted_;
        }
      }
    }
    std::vector<Pair> alive;
    const size_t polled = (fds.size() - 2) / 2;  // a pair accepted just now was not polled
    for (size_t i = 0; i < pairs.size(); ++i) {
      const Pair& p = pairs[i];
      if (i >= polled) {
        alive.push_back(p);
        continue;
      }
      bool ok = true;
      char buf[64 << 10];
      const pollfd& from_client = fds[2 + 2 * i];
      const pollfd& from_target = fds[3 + 2 * i];
      if (from_client.revents != 0) {
        ssize_t n = ::recv(p.client, buf, sizeof buf, 0);
        ok = n > 0 && WriteAll(p.target, buf, n);
      }
      if (ok && !hold && from_target.revents != 0) {
        ssize_t n = ::recv(p.target, buf, sizeof buf, 0);
        ok = n > 0 && WriteAll(p.client, buf, n);
      }
      if (ok) {
        alive.push_back(p);
      } else {
        close_pair(p);
      }
    }
    pairs = std::move(alive);
  }
  for (const Pair& p : pairs) close_pair(p);
}

}  // namespace harness::testing
