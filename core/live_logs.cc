// Live attempt logs (see live_logs.h).
#include "core/live_logs.h"

#include <algorithm>
#include <limits>

namespace harness {

LiveLogs::LiveLogs(size_t max_bytes_per_attempt, size_t ended_kept)
    : max_bytes_(max_bytes_per_attempt), ended_kept_(ended_kept) {}

void LiveLogs::Begin(const std::string& item, int attempt, uint64_t token,
                     const std::string& agent) {
  absl::MutexLock l(&mu_);
  Log& log = logs_[Key(item, attempt)];
  log = Log{};
  log.token = token;
  log.agent = agent;
}

bool LiveLogs::Append(const std::string& item, uint64_t token, const std::string& agent,
                      int64_t offset, absl::string_view data) {
  if (offset < 0) return false;
  absl::MutexLock l(&mu_);
  int attempt = 0;
  Log* log_ptr = const_cast<Log*>(FindLocked(item, 0, &attempt));
  if (log_ptr == nullptr || log_ptr->ended || log_ptr->token != token || log_ptr->agent != agent) {
    return false;
  }
  Log& log = *log_ptr;
  const int64_t end = log.start + static_cast<int64_t>(log.buf.size());
  if (offset > end) {  // a gap: what was lost is skipped
    log.buf.clear();
    log.start = offset;
  } else if (offset < end) {  // partly or wholly received already
    const int64_t dup = end - offset;
    if (dup >= static_cast<int64_t>(data.size())) return true;
    data.remove_prefix(static_cast<size_t>(dup));
  }
  log.buf.append(data.data(), data.size());
  if (log.buf.size() > max_bytes_) {
    const size_t cut = log.buf.size() - max_bytes_;
    log.buf.erase(0, cut);
    log.start += static_cast<int64_t>(cut);
  }
  return true;
}

void LiveLogs::End(const std::string& item, int attempt) {
  absl::MutexLock l(&mu_);
  auto it = logs_.find(Key(item, attempt));
  if (it == logs_.end() || it->second.ended) return;
  it->second.ended = true;
  ended_.push_back(it->first);
  while (ended_.size() > ended_kept_) {
    logs_.erase(ended_.front());
    ended_.pop_front();
  }
}

const LiveLogs::Log* LiveLogs::FindLocked(const std::string& item, int attempt,
                                          int* found) const {
  if (attempt > 0) {
    auto it = logs_.find(Key(item, attempt));
    if (it == logs_.end()) return nullptr;
    *found = attempt;
    return &it->second;
  }
  // The newest attempt of `item`: the last key before (item, +inf).
  auto it = logs_.upper_bound(Key(item, std::numeric_limits<int>::max()));
  if (it == logs_.begin()) return nullptr;
  --it;
  if (it->first.first != item) return nullptr;
  *found = it->first.second;
  return &it->second;
}

std::optional<LiveLogs::Chunk> LiveLogs::Read(const std::string& item, int attempt, int64_t from,
                                              size_t max) const {
  absl::MutexLock l(&mu_);
  Chunk c;
  const Log* log = FindLocked(item, attempt, &c.attempt);
  if (log == nullptr) return std::nullopt;
  const int64_t end = log->start + static_cast<int64_t>(log->buf.size());
  from = std::clamp<int64_t>(from, 0, end);
  if (from < log->start) {
    c.skipped = log->start - from;
    from = log->start;
  }
  c.offset = from;
  c.data = log->buf.substr(static_cast<size_t>(from - log->start), max);
  c.ended = log->ended && from + static_cast<int64_t>(c.data.size()) == end;
  return c;
}

std::optional<std::string> LiveLogs::Kept(const std::string& item, int attempt) const {
  absl::MutexLock l(&mu_);
  int found = 0;
  const Log* log = FindLocked(item, attempt, &found);
  if (log == nullptr) return std::nullopt;
  return log->buf;
}

}  // namespace harness
