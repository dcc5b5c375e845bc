// TLS material from PEM files, for both ends: the client side of a channel (agentd, harnessctl:
// --ca, --cert, --key) and the checks the controller makes on its own tls.* files at start and
// on SIGHUP. Parsing is OpenSSL's (which gRPC links already); nothing here is hand-rolled.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace harness {

// PEM contents for a client channel. ca empty: plaintext (no TLS).
struct ClientTls {
  std::string ca_pem;    // roots that must have signed the controller's certificate
  std::string cert_pem;  // this client's certificate chain (mTLS); empty: none
  std::string key_pem;   // its private key
  bool enabled() const { return !ca_pem.empty(); }
};

// Reads --ca, --cert and --key (paths; "" when not given). A cert without a key (or the other
// way round), or either without a CA, is InvalidArgument; so is a file that is unreadable or
// holds no PEM certificate or key, naming the flag and the file.
absl::StatusOr<ClientTls> LoadClientTls(const std::string& ca, const std::string& cert,
                                        const std::string& key);

// The controller's files: the certificate chain parses, the key parses and belongs to the
// certificate, and the client CA (if set) holds at least one certificate. InvalidArgument names
// the key (harness.tls.cert ...) and the file.
absl::Status CheckServerTlsFiles(const std::string& cert, const std::string& key,
                                 const std::string& client_ca);

}  // namespace harness
