// server_child.h: what bench/rpc_floor and bench/durable_floor share. Each runs its server as
// a child process (the same binary again, `serve ...`) so that the server's CPU and context
// switches can be read from wait4 alone: the child prints its port on stdout, serves until its
// stdin closes, and may report on stderr. Also their flag parsing and the Session-stream call
// of a completion-queue server, with the thread that shuts that server down when stdin closes.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/v1/agent.grpc.pb.h"

namespace bench {

inline int Flag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

inline std::string FlagS(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

inline bool Has(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

inline double CpuSeconds(const struct rusage& ru) {
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

// The server child: started by Start, stopped by Stop (which closes its stdin and reaps it).
class ServerChild {
 public:
  // Runs /proc/self/exe with argv0 and `args`; waits for the port it prints. With
  // `capture_stderr`, the child's stderr is kept for Stop to return.
  static std::optional<ServerChild> Start(const char* argv0, const std::vector<std::string>& args,
                                          bool capture_stderr) {
    int to_child[2], from_child[2], err[2] = {-1, -1};
    if (pipe(to_child) != 0 || pipe(from_child) != 0) return std::nullopt;
    if (capture_stderr && pipe(err) != 0) return std::nullopt;
    std::vector<char*> argv{const_cast<char*>(argv0)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      if (capture_stderr) dup2(err[1], 2);
      close(to_child[1]);
      close(from_child[0]);
      if (capture_stderr) close(err[0]);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    if (capture_stderr) close(err[1]);
    ServerChild child;
    child.pid_ = pid;
    child.stdin_ = to_child[1];
    child.err_ = err[0];
    FILE* out = fdopen(from_child[0], "r");
    if (out == nullptr || std::fscanf(out, "%d", &child.port_) != 1) {
      std::fprintf(stderr, "%s: the server did not start\n", argv0);
      child.Stop();
      return std::nullopt;
    }
    child.out_ = out;
    return child;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Closes the child's stdin, reads what it wrote on stderr (if kept) until it exits, reaps it.
  // Returns whether it exited with 0; `usage` gets its resource usage, `err` its stderr.
  bool Stop(struct rusage* usage = nullptr, std::string* err = nullptr) {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
    if (err_ >= 0) {
      char buf[512];
      ssize_t n;
      while ((n = read(err_, buf, sizeof buf)) > 0) {
        if (err != nullptr) err->append(buf, static_cast<size_t>(n));
      }
      close(err_);
      err_ = -1;
    }
    if (out_ != nullptr) std::fclose(out_);
    out_ = nullptr;
    int status = 0;
    struct rusage ru {};
    wait4(pid_, &status, 0, &ru);
    if (usage != nullptr) *usage = ru;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, err_ = -1, port_ = 0;
  FILE* out_ = nullptr;
};

// One Session stream on a completion-queue server: each step is a tag on the server's queue.
struct CqCall {
  enum Op { kAccepted, kRead, kWritten, kFinished };
  struct Tag {
    CqCall* call;
    Op op;
  };
  grpc::ServerContext ctx;
  grpc::ServerAsyncReaderWriter<harness::v1::ControllerMessage, harness::v1::AgentMessage> rw{&ctx};
  harness::v1::AgentMessage in;
  harness::v1::ControllerMessage out;
  Tag accepted{this, kAccepted}, read{this, kRead}, written{this, kWritten},
      finished{this, kFinished};

  // After a write: the next read, or the stream's end if the write failed.
  void ReadNext(bool write_ok) {
    if (write_ok) {
      rw.Read(&in, &read);
    } else {
      rw.Finish(grpc::Status::OK, &finished);
    }
  }
};

// The child's side for a completion-queue server built from `builder` (its services
// registered): adds the queue, starts it, prints `port`, asks for the first Session stream
// (`accept`, again for each one accepted) and shuts the server and the queue down once stdin
// closes (join `stopper` after the queue is drained).
struct CqServer {
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  std::unique_ptr<grpc::Server> server;
  std::thread stopper;

  template <typename NewCall>
  CqServer(grpc::ServerBuilder& builder, const int& port, NewCall accept) {
    cq = builder.AddCompletionQueue();
    server = builder.BuildAndStart();
    std::printf("%d\n", port);
    std::fflush(stdout);
    accept(cq.get());
    stopper = std::thread([this] {
      char b;
      while (::read(0, &b, 1) > 0) {
      }
      server->Shutdown();
      cq->Shutdown();
    });
  }
};

}  // namespace bench
