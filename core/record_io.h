// Framing of records on disk: [fixed32 length][fixed32 crc32c(payload)][payload], little endian.
// The reader tells a clean end from a torn tail (a crash mid-append) and from corruption, so
// recovery can repair the first and quarantine the second instead of dropping data silently.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace harness {

// The largest frame a reader accepts (a longer length is damage). Writers never make a larger
// one: the store refuses a record that would not fit (a submitted batch is the largest record;
// a request is at most limits.max_message_mb, 64 MiB by default), and snapshots are split.
inline constexpr uint32_t kMaxFrameBytes = 256u << 20;

void AppendFrame(absl::string_view payload, std::string* out);
std::string EncodeFrame(absl::string_view payload);

enum class FrameStatus {
  kOk,       // *payload holds the next record
  kEnd,      // clean end of data
  kTorn,     // the data ends inside a frame (or in zero fill): a crash during an append
  kCorrupt,  // a complete frame whose checksum or length is wrong
};

class FrameReader {
 public:
  explicit FrameReader(absl::string_view data) : data_(data) {}
  FrameStatus Next(absl::string_view* payload);
  // Offset of the first byte not consumed by a kOk frame.
  size_t offset() const { return offset_; }
  // After kCorrupt: steps over the damaged frame if its length field still leads to a good
  // frame or to the end of the data (only the frame's body was damaged). False, and nothing
  // changes, if the length itself is unusable.
  bool SkipCorrupt();

 private:
  absl::string_view data_;
  size_t offset_ = 0;
};

// Decodes a whole buffer holding exactly one frame (lease records). False if torn or corrupt.
bool DecodeSingleFrame(absl::string_view data, absl::string_view* payload);

}  // namespace harness
