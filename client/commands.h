// harnessctl's command line: the global flags, one FlagParser per subcommand, and the
// subcommands themselves (status, scale, submit, items, show, cancel, retry, agents, drain),
// each a thin layer between the flags, ControllerClient and render.h. docs/HARNESSCTL.md is the
// user's reference.
//
// Exit codes: 0 success; 1 a runtime error (the controller refused or could not be reached, a
// file could not be read or is invalid), printed as one line "harnessctl: <message>" on stderr;
// 2 a usage error (unknown command or flag, missing or bad value), printed as one line by
// FlagParser.
#pragma once

namespace harness::client {

// Runs harnessctl with the process's arguments and returns its exit code. Usage errors and
// --help exit the process from inside (FlagParser).
int RunHarnessctl(int argc, char** argv);

}  // namespace harness::client
