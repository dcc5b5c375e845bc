// OpenSSL's state kept until the process ends (see tls_lifetime.h).
#include "rpc/tls_lifetime.h"

#include <openssl/crypto.h>

namespace harness {

void KeepTlsLibraryUntilExit() {
  // The first initialisation decides whether OpenSSL registers its atexit cleanup.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
}

}  // namespace harness
