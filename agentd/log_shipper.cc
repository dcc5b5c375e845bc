// Streaming an attempt's log to the controller (see log_shipper.h).
#include "agentd/log_shipper.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace harness::agentd {

LogShipper::LogShipper(std::string log_path, std::string item_id, uint64_t lease_token, Send send)
    : path_(std::move(log_path)),
      item_id_(std::move(item_id)),
      token_(lease_token),
      send_(std::move(send)) {}

void LogShipper::ShipNew() {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > offset_) {
    int64_t from = std::max<int64_t>(offset_, st.st_size - static_cast<int64_t>(kMaxShipBytes));
    std::string buf(kProgressChunkBytes, '\0');
    while (from < st.st_size) {
      const size_t want =
          static_cast<size_t>(std::min<int64_t>(st.st_size - from, kProgressChunkBytes));
      ssize_t n = ::pread(fd, buf.data(), want, from);
      if (n <= 0) break;
      v1::Progress p;
      p.set_item_id(item_id_);
      p.set_lease_token(token_);
      p.set_offset(from);
      p.set_data(buf.data(), static_cast<size_t>(n));
      send_(std::move(p));
      from += n;
    }
    offset_ = from;
  }
  ::close(fd);
}

}  // namespace harness::agentd
