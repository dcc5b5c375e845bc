// Shared pieces of the fuzz targets (see fuzz_util.h).
#include "fuzz/fuzz_util.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace harness::fuzz {
namespace {

[[noreturn]] void Die(absl::string_view what) {
  std::fprintf(stderr, "fuzz harness: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* given = std::getenv("HARNESS_FUZZ_SCRATCH");  // scripts/fuzz.sh sets it
    std::string base = given != nullptr && *given != '\0' ? given : "/dev/shm";
    if (::access(base.c_str(), W_OK) != 0) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    std::string templ = base + "/harness-fuzz-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) Die(absl::StrCat("cannot make a folder in ", base));
    auto* d = new std::string(templ);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return d;
  }();
  return *dir;
}

void ResetDir(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) Die(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  std::filesystem::create_directories(path, ec);
  if (ec) Die(absl::StrCat("cannot create ", path, ": ", ec.message()));
}

void WriteFileOrDie(const std::string& path, absl::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) Die(absl::StrCat("cannot write ", path));
}

void SilenceLog() {
  SetLogSink([](LogLevel, absl::string_view) {});
}

MemFile::MemFile(absl::string_view content) {
  fd_ = ::memfd_create("harness-fuzz", MFD_CLOEXEC);
  if (fd_ < 0) Die("memfd_create failed");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd_, content.data() + done, content.size() - done);
    if (n <= 0) Die("cannot write to the memfd");
    done += static_cast<size_t>(n);
  }
  path_ = absl::StrCat("/proc/self/fd/", fd_);
}

MemFile::~MemFile() { ::close(fd_); }

}  // namespace harness::fuzz
