// Fuzzes recovery from a tampered or torn lease file (core/claim_dir.h: claims/<item>, a hard
// link to a slot leases/.slot-<n>, a framed store::LeaseRecord): a state dir written by the real
// queue with one item leased, whose lease file then holds any bytes, opened as a controller
// opens it at start. Whatever the file holds, recovery must not crash and must keep the item
// (kept leased, or handed back), and a second start must agree with the first.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/state_dir_fixture.h"

namespace {

std::string template_dir;    // the state dir as the queue left it
std::string lease_relative;  // its leased item's lease file, relative to the state dir
std::string leased_item;     // that item's id

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness::fuzz::SilenceLog();
  template_dir = harness::fuzz::ScratchDir() + "/template";
  harness::fuzz::ResetDir(template_dir);
  std::string lease =
      harness::fuzz::MakeStateDir(template_dir, /*snapshot=*/false, &leased_item);
  lease_relative = lease.substr(template_dir.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string state = harness::fuzz::ScratchDir() + "/state";
  harness::fuzz::ResetDir(state);
  std::filesystem::copy(template_dir, state, std::filesystem::copy_options::recursive);
  // The copy has two files where the template had one inode linked twice: link them again,
  // as the claim is a hard link to its lease file.
  std::string lease = state + lease_relative;
  std::string claim = state + "/claims/" + leased_item;
  std::filesystem::remove(claim);
  harness::fuzz::WriteFileOrDie(lease,
                                absl::string_view(reinterpret_cast<const char*>(data), size));
  std::filesystem::create_hard_link(lease, claim);
  (void)harness::fuzz::RecoverTwice(state, leased_item);
  return 0;
}
