// WorkSources: the controller's pull side of the queue (config queue.sources and
// queue.on_done, docs/SOURCES.md). Each source is a command run every `interval` on a thread
// of its own; what it prints (items/source_items.h: harness items or bd issues) is added to
// the queue through WorkQueue::Submit, as a submit would, except items whose id the queue
// already holds, in any state: an item is added once and never again, whatever became of it.
// A run that fails (cannot start, non-zero exit, timeout, too much output, not a JSON array)
// logs one error line (and the command's stderr) and changes nothing; an element refused on
// its own (a bd id that is not a valid item id...) is logged once, not on every run; the next run comes at its time as usual. No lock is
// held while a command runs, and no RPC or committer thread ever waits for one.
//
// on_done: when an item that came from a source (it carries the `source` label) ends done, the
// hook's argv is run with {id} and {source} substituted and HARNESS_ITEM_ID, HARNESS_ITEM_SOURCE
// in its environment, on a thread of its own, once per item (best effort: a controller stopped
// before the hook ran does not run it later).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/work_queue.h"

namespace harness {

struct WorkSourceSpec {
  std::string name;
  std::vector<std::string> command;
  absl::Duration interval = absl::Seconds(60);
  absl::Duration timeout = absl::Seconds(60);
  size_t max_output_bytes = 16 << 20;
};

struct WorkSourcesOptions {
  std::vector<WorkSourceSpec> sources;
  std::vector<std::string> on_done;  // empty: no hook
  std::string work_dir;              // where the commands run ("": the controller's)
};

// What one run did (also logged).
struct SourceRun {
  bool ok = false;  // the command ran and its output was read
  std::vector<std::string> added;
  size_t known = 0;    // already in the queue
  size_t refused = 0;  // elements refused (each logged)
  size_t skipped = 0;  // bd issues skipped for their status
};

class WorkSources {
 public:
  WorkSources(WorkSourcesOptions options, WorkQueue* queue);
  ~WorkSources();  // Stop()

  bool empty() const { return options_.sources.empty() && options_.on_done.empty(); }
  // Starts one thread per source (its first run at once) and the on_done thread.
  void Start();
  // Kills running commands, ends the threads. Idempotent.
  void Stop();

  // Runs `source` once, now, on the calling thread.
  SourceRun RunOnce(const WorkSourceSpec& source);
  // Notes that `item_id` ended done. Cheap and non-blocking (the committer thread calls it).
  void ItemDone(const std::string& item_id);

 private:
  void SourceLoop(const WorkSourceSpec& source);
  void HookLoop();
  void RunHook(const std::string& item_id);
  // Whether this refusal message is new for `source` (each is logged once, not every run).
  bool FirstRefusal(const WorkSourceSpec& source, const std::string& why);
  // Submits the new items; ids that turn out to exist meanwhile count as known.
  void Add(const WorkSourceSpec& source, std::vector<store::ItemSpec> specs, SourceRun* run);

  const WorkSourcesOptions options_;
  WorkQueue* const queue_;
  std::atomic<bool> stopping_{false};  // read by running commands (kill) and the loops
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::string> done_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::set<std::string>> refusals_ ABSL_GUARDED_BY(mu_);  // by source
  std::vector<std::thread> threads_;
};

}  // namespace harness
