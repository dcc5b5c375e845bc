// UnixProxy (see unix_proxy.h): poll() over the listening socket, a wake pipe and every pair.
#include "tests/support/unix_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "gtest/gtest.h"

namespace harness::testing {
namespace {

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

bool Address(const std::string& path, sockaddr_un* a) {
  *a = sockaddr_un{};
  a->sun_family = AF_UNIX;
  if (path.size() >= sizeof a->sun_path) return false;
  memcpy(a->sun_path, path.c_str(), path.size() + 1);
  return true;
}

int Listen(const std::string& path) {
  sockaddr_un a;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (!Address(path, &a) || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int Connect(const std::string& path) {
  sockaddr_un a;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (!Address(path, &a) || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::unique_ptr<UnixProxy> UnixProxy::Start(const std::string& path, const std::string& target) {
  std::unique_ptr<UnixProxy> p(new UnixProxy(path, target));
  p->Up();
  {
    absl::MutexLock l(&p->mu_);
    if (!p->is_up_) {
      ADD_FAILURE() << "the proxy cannot listen on " << path;
      return nullptr;
    }
  }
  return p;
}

UnixProxy::UnixProxy(std::string path, std::string target)
    : path_(std::move(path)), target_(std::move(target)) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) ADD_FAILURE() << "pipe2: errno " << errno;
  thread_ = std::thread([this] { Loop(); });
}

UnixProxy::~UnixProxy() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  Wake();
  thread_.join();
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void UnixProxy::Wake() { (void)!::write(wake_[1], "x", 1); }

void UnixProxy::Down() {
  absl::MutexLock l(&mu_);
  want_up_ = false;
  Wake();
  mu_.Await(absl::Condition(this, &UnixProxy::IsDown));
}

void UnixProxy::Up() {
  absl::MutexLock l(&mu_);
  want_up_ = true;
  Wake();
  // Waits for the loop to listen (or to give up: is_up_ stays false and want_up_ is cleared).
  mu_.Await(absl::Condition(this, &UnixProxy::IsUpOrGaveUp));
}

int UnixProxy::accepted() const {
  absl::MutexLock l(&mu_);
  return accepted_;
}

void UnixProxy::Loop() {
  struct Pair {
    int client, target;
  };
  std::vector<Pair> pairs;
  int listen_fd = -1;
  auto close_all = [&] {
    for (const Pair& p : pairs) {
      ::close(p.client);
      ::close(p.target);
    }
    pairs.clear();
  };
  char buf[65536];
  for (;;) {
    bool want_up;
    {
      absl::MutexLock l(&mu_);
      if (stop_) break;
      want_up = want_up_;
    }
    if (want_up && listen_fd < 0) {
      ::unlink(path_.c_str());
      listen_fd = Listen(path_);
      absl::MutexLock l(&mu_);
      is_up_ = listen_fd >= 0;
      if (listen_fd < 0) want_up_ = false;
    } else if (!want_up && listen_fd >= 0) {
      ::close(listen_fd);
      listen_fd = -1;
      ::unlink(path_.c_str());
      close_all();
      absl::MutexLock l(&mu_);
      is_up_ = false;
    }
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}};
    if (listen_fd >= 0) fds.push_back({listen_fd, POLLIN, 0});
    const size_t first_pair = fds.size();
    for (const Pair& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.target, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (listen_fd >= 0 && fds[1].revents != 0) {
      int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        int t = Connect(target_);
        if (t < 0) {
          ::close(c);
        } else {
          pairs.push_back({c, t});
          absl::MutexLock l(&mu_);
          ++accepted_;
        }
      }
    }
    std::vector<Pair> keep;
    const size_t polled = (fds.size() - first_pair) / 2;  // pairs accepted after the poll wait
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (i >= polled) {
        keep.push_back(pairs[i]);
        continue;
      }
      const Pair& p = pairs[i];
      bool alive = true;
      for (int side = 0; side < 2 && alive; ++side) {
        const pollfd& f = fds[first_pair + 2 * i + side];
        if (f.revents == 0) continue;
        ssize_t n = ::read(f.fd, buf, sizeof buf);
        if (n <= 0 || !WriteAll(side == 0 ? p.target : p.client, buf, n)) alive = false;
      }
      if (alive) {
        keep.push_back(p);
      } else {
        ::close(p.client);
        ::close(p.target);
      }
    }
    pairs = std::move(keep);
  }
  if (listen_fd >= 0) ::close(listen_fd);
  ::unlink(path_.c_str());
  close_all();
}

}  // namespace harness::testing
