// KeepTlsLibraryUntilExit: OpenSSL's state outlives the exit handlers (rpc/tls_lifetime.h), so a
// gRPC thread still in a handshake when main returns cannot use it after it was freed.
#include "rpc/tls_lifetime.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <cstdlib>

namespace harness {
namespace {

// Registered before OpenSSL's own exit handler (if it has one), so it runs after it: exits 0 if
// OpenSSL can still be used, 3 if its state was freed (it then refuses to initialise again).
void CheckOpenSslAtExit() {
  _exit(OPENSSL_init_crypto(OPENSSL_INIT_ADD_ALL_DIGESTS, nullptr) == 1 ? 0 : 3);
}

// The process's first use of OpenSSL, after KeepTlsLibraryUntilExit or not; then exit.
void ExitAfterUsingOpenSsl(bool keep) {
  std::atexit(CheckOpenSslAtExit);
  if (keep) KeepTlsLibraryUntilExit();
  OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr);
  std::exit(0);
}

TEST(TlsLifetimeTest, OpenSslIsStillUsableInTheLastExitHandler) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: OpenSSL not yet set up
  EXPECT_EXIT(ExitAfterUsingOpenSsl(true), testing::ExitedWithCode(0), "");
}

// The check can fail: without the call, OpenSSL's exit handler frees its state first.
TEST(TlsLifetimeTest, WithoutItOpenSslFreesItsStateInItsOwnExitHandler) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ExitAfterUsingOpenSsl(false), testing::ExitedWithCode(3), "");
}

}  // namespace
}  // namespace harness
