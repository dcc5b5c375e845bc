// harnessctl: the operator's CLI of the harness controller. Everything but the entry point is
// in the harness_client library (commands.h).
#include "client/commands.h"
#include "rpc/tls_lifetime.h"

int main(int argc, char** argv) {
  harness::KeepTlsLibraryUntilExit();  // before anything initialises OpenSSL
  return harness::client::RunHarnessctl(argc, argv);
}
