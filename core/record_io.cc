// Record framing (see record_io.h).
#include "core/record_io.h"

#include <cstring>

#include "core/crc32c.h"

namespace harness {
namespace {

void PutFixed32(uint32_t v, std::string* out) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out->append(b, 4);
}

uint32_t GetFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) | (uint32_t{u[3]} << 24);
}

// A masked CRC so that a frame of zeros never checks out (as leveldb masks its CRCs).
uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

bool AllZero(absl::string_view s) {
  for (char c : s) {
    if (c != 0) return false;
  }
  return true;
}

}  // namespace

void AppendFrame(absl::string_view payload, std::string* out) {
  PutFixed32(static_cast<uint32_t>(payload.size()), out);
  PutFixed32(Mask(Crc32c(payload)), out);
  out->append(payload.data(), payload.size());
}

std::string EncodeFrame(absl::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  AppendFrame(payload, &out);
  return out;
}

FrameStatus FrameReader::Next(absl::string_view* payload) {
  absl::string_view rest = data_.substr(offset_);
  if (rest.empty()) return FrameStatus::kEnd;
  if (rest.size() < 8) return FrameStatus::kTorn;
  uint32_t len = GetFixed32(rest.data());
  uint32_t crc = GetFixed32(rest.data() + 4);
  if (len == 0 && crc == 0) {
    // Zero fill: the file size moved ahead of its data in a crash.
    return AllZero(rest) ? FrameStatus::kTorn : FrameStatus::kCorrupt;
  }
  if (len > kMaxFrameBytes) return FrameStatus::kCorrupt;
  if (rest.size() - 8 < len) return FrameStatus::kTorn;
  absl::string_view body = rest.substr(8, len);
  if (Mask(Crc32c(body)) != crc) {
    // A frame that ends exactly at the end of the data with a bad checksum is a write that
    // did not finish; anything followed by more data is damage.
    return rest.size() - 8 == len ? FrameStatus::kTorn : FrameStatus::kCorrupt;
  }
  *payload = body;
  offset_ += 8 + len;
  return FrameStatus::kOk;
}

bool FrameReader::SkipCorrupt() {
  absl::string_view rest = data_.substr(offset_);
  if (rest.size() < 8) return false;
  const uint32_t len = GetFixed32(rest.data());
  if (len > kMaxFrameBytes || rest.size() - 8 < len) return false;
  FrameReader after(rest.substr(8 + len));
  absl::string_view payload;
  const FrameStatus next = after.Next(&payload);
  if (next != FrameStatus::kOk && next != FrameStatus::kEnd) return false;
  offset_ += 8 + len;
  return true;
}

bool DecodeSingleFrame(absl::string_view data, absl::string_view* payload) {
  FrameReader r(data);
  if (r.Next(payload) != FrameStatus::kOk) return false;
  absl::string_view extra;
  return r.Next(&extra) == FrameStatus::kEnd;
}

}  // namespace harness
