// Work sources and the on_done hook (see work_sources.h).
#include "controller/work_sources.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "controller/convert.h"
#include "core/log.h"
#include "items/source_items.h"
#include "launch/captured_command.h"
#include "core/thread_name.h"

namespace harness {
namespace {

constexpr absl::Duration kHookTimeout = absl::Seconds(60);
constexpr size_t kMaxStderrLines = 20;
constexpr size_t kMaxIdsInLog = 20;
constexpr size_t kMaxRememberedRefusals = 10000;  // per source

std::string Who(const WorkSourceSpec& s) { return absl::StrCat("work source ", s.name); }

// Logs what a command wrote on stderr, one line each (at most kMaxStderrLines).
void LogStderr(const std::string& who, const std::string& err) {
  size_t n = 0;
  for (absl::string_view line : absl::StrSplit(err, '\n', absl::SkipWhitespace())) {
    if (++n > kMaxStderrLines) {
      LogWarning(absl::StrCat(who, ": stderr: ... (more lines dropped)"));
      return;
    }
    LogWarning(absl::StrCat(who, ": stderr: ", line));
  }
}

std::string IdList(const std::vector<std::string>& ids) {
  if (ids.size() <= kMaxIdsInLog) return absl::StrJoin(ids, ", ");
  std::vector<std::string> head(ids.begin(), ids.begin() + kMaxIdsInLog);
  return absl::StrCat(absl::StrJoin(head, ", "), ", ... (", ids.size() - kMaxIdsInLog, " more)");
}

}  // namespace

WorkSources::WorkSources(WorkSourcesOptions options, WorkQueue* queue)
    : options_(std::move(options)), queue_(queue) {}

WorkSources::~WorkSources() { Stop(); }

void WorkSources::Start() {
  for (const WorkSourceSpec& s : options_.sources) {
    threads_.emplace_back([this, &s] { SourceLoop(s); });
  }
  if (!options_.on_done.empty()) threads_.emplace_back([this] { HookLoop(); });
}

void WorkSources::Stop() {
  stopping_ = true;
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkSources::SourceLoop(const WorkSourceSpec& source) {
  NameThisThread(absl::StrCat("source-", source.name));
  for (;;) {
    RunOnce(source);
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), source.interval);
    if (stop_) return;
  }
}

SourceRun WorkSources::RunOnce(const WorkSourceSpec& source) {
  SourceRun run;
  const std::string who = Who(source);
  launch::CaptureOptions opts;
  opts.timeout = source.timeout;
  opts.max_stdout_bytes = source.max_output_bytes;
  opts.work_dir = options_.work_dir;
  opts.env = {{"HARNESS_SOURCE", source.name}};
  opts.cancel = &stopping_;
  absl::StatusOr<launch::CapturedRun> r = launch::RunCaptured(source.command, opts);
  if (!r.ok()) {
    LogError(absl::StrCat(who, ": ", r.status().message(), "; nothing added this run"));
    return run;
  }
  LogStderr(who, r->err);
  if (r->cancelled) return run;
  if (!r->ok()) {
    LogError(absl::StrCat(who, ": ", source.command[0], " ", r->Describe(opts),
                          "; nothing added this run"));
    return run;
  }
  absl::StatusOr<SourceOutput> parsed = ParseSourceOutput(r->out, source.name);
  if (!parsed.ok()) {
    LogError(absl::StrCat(parsed.status().message(), "; nothing added this run"));
    return run;
  }
  size_t new_refusals = 0;
  for (const std::string& why : parsed->refused) {
    if (FirstRefusal(source, why)) {
      ++new_refusals;
      LogWarning(absl::StrCat("refused (logged once): ", why));
    }
  }
  run.refused = parsed->refused.size();
  run.skipped = parsed->skipped.size();
  std::vector<store::ItemSpec> fresh;
  for (const v1::ItemSpec& item : parsed->items) {
    absl::StatusOr<store::ItemRecord> known = queue_->Get(item.id());
    if (known.ok()) {
      ++run.known;
    } else if (absl::IsNotFound(known.status())) {
      fresh.push_back(FromApi(item));
    } else {
      LogError(absl::StrCat(who, ": cannot look up item ", item.id(), ": ",
                            known.status().message(), "; nothing added this run"));
      return run;
    }
  }
  if (!fresh.empty()) Add(source, std::move(fresh), &run);
  run.ok = true;
  if (!run.added.empty() || new_refusals > 0) {
    LogInfo(absl::StrCat(who, ": added ", run.added.size(), " item(s)",
                         run.added.empty() ? "" : absl::StrCat(" (", IdList(run.added), ")"),
                         "; ", run.known, " already known, ", run.refused, " refused, ",
                         run.skipped, " skipped for their bd status"));
  }
  return run;
}

void WorkSources::Add(const WorkSourceSpec& source, std::vector<store::ItemSpec> specs,
                      SourceRun* run) {
  const std::string who = Who(source);
  // All in one commit when all are acceptable; else each on its own, so one bad item (over a
  // limit, or submitted meanwhile by someone else) does not keep the others out.
  std::vector<store::ItemSpec> copy = specs;
  absl::StatusOr<std::vector<std::string>> ids = queue_->Submit(std::move(copy));
  if (ids.ok()) {
    run->added.insert(run->added.end(), ids->begin(), ids->end());
    return;
  }
  if (absl::IsUnavailable(ids.status())) {  // the state dir takes no writes: try next run
    LogError(absl::StrCat(who, ": cannot add ", specs.size(), " item(s): ", ids.status().message(),
                          "; nothing added this run"));
    return;
  }
  for (store::ItemSpec& spec : specs) {
    std::string id = spec.id();
    std::vector<store::ItemSpec> one;
    one.push_back(std::move(spec));
    absl::StatusOr<std::vector<std::string>> added = queue_->Submit(std::move(one));
    if (added.ok()) {
      run->added.push_back(id);
    } else if (absl::IsAlreadyExists(added.status())) {
      ++run->known;
    } else {
      ++run->refused;
      std::string why = absl::StrCat(who, ": item ", id, ": ", added.status().message());
      if (FirstRefusal(source, why)) LogWarning(absl::StrCat("refused (logged once): ", why));
    }
  }
}

bool WorkSources::FirstRefusal(const WorkSourceSpec& source, const std::string& why) {
  absl::MutexLock l(&mu_);
  std::set<std::string>& seen = refusals_[source.name];
  if (seen.size() >= kMaxRememberedRefusals) seen.clear();
  return seen.insert(why).second;
}

void WorkSources::ItemDone(const std::string& item_id) {
  if (options_.on_done.empty()) return;
  absl::MutexLock l(&mu_);
  done_.push_back(item_id);
}

void WorkSources::HookLoop() {
  NameThisThread("on-done-hook");
  for (;;) {
    std::string id;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !done_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      id = std::move(done_.front());
      done_.pop_front();
    }
    RunHook(id);
  }
}

void WorkSources::RunHook(const std::string& item_id) {
  absl::StatusOr<store::ItemRecord> item = queue_->Get(item_id);
  if (!item.ok()) return;
  auto label = item->spec().labels().find(kSourceLabel);
  if (label == item->spec().labels().end()) return;  // not from a source
  const std::string& source = label->second;
  std::vector<std::string> argv;
  for (const std::string& a : options_.on_done) {
    argv.push_back(absl::StrReplaceAll(a, {{"{id}", item_id}, {"{source}", source}}));
  }
  launch::CaptureOptions opts;
  opts.timeout = kHookTimeout;
  opts.max_stdout_bytes = 1 << 20;
  opts.work_dir = options_.work_dir;
  opts.env = {{"HARNESS_ITEM_ID", item_id}, {"HARNESS_ITEM_SOURCE", source}};
  opts.cancel = &stopping_;
  const std::string who = absl::StrCat("queue.on_done for item ", item_id);
  absl::StatusOr<launch::CapturedRun> r = launch::RunCaptured(argv, opts);
  if (!r.ok()) {
    LogError(absl::StrCat(who, ": ", r.status().message()));
    return;
  }
  LogStderr(who, r->err);
  if (!r->ok()) {
    LogError(absl::StrCat(who, ": ", argv[0], " ", r->Describe(opts)));
  } else {
    LogInfo(absl::StrCat(who, ": ", argv[0], " exited with status 0"));
  }
}

}  // namespace harness
