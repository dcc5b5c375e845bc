// KeepTlsLibraryUntilExit: OpenSSL frees its global state in an atexit handler, while gRPC's
// threads (which the process does not join: a reconnect or a TLS handshake may still be under
// way when main returns) can be using it at that moment: a use after free at exit, seen under
// ASan as agentd stopped while reconnecting to a controller that had gone. Called first thing in
// main, before anything initialises OpenSSL, this tells OpenSSL to leave its state to the
// operating system. agentd and harnessctl call it; in the controller it could not work, as
// Debian's cpp-httplib initialises OpenSSL from its library constructor, before main.
#pragma once

namespace harness {

void KeepTlsLibraryUntilExit();

}  // namespace harness
