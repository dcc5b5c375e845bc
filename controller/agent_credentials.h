// The credentials of the agents the controller launches (agent.launcher process, docker, swarm):
// the agent token the controller accepts, and agent.tls_ca, agent.tls_cert, agent.tls_key
// checked against what the controller's port asks for, so that a launched agent can always
// connect and no key is accepted that does nothing. How each launcher hands them over (never
// on argv) is in launch/launcher.h (AgentCredentials) and docs/SECURITY.md.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "controller/server_security.h"
#include "launch/launcher.h"

namespace harness {

// InvalidArgument, naming the key and saying what to set, when:
//   * an agent.tls_* key is set with agent.launcher none (nothing is launched to use it), or
//     agent.tls_ca without tls.cert, or agent.tls_cert/tls_key without tls.client_ca;
//   * agents are launched, the port has TLS and agent.tls_ca is empty, or it asks for client
//     certificates (mTLS) and agent.tls_cert/tls_key are empty;
//   * a file is unreadable or holds no PEM certificate or key, or the key is not the cert's.
// The paths come back absolute (relative ones are taken from the working directory): a launched
// agent runs elsewhere (its own folder, a container). The token is security.tokens.agent.
absl::StatusOr<launch::AgentCredentials> LaunchedAgentCredentials(const Config& config,
                                                                  const ServerSecurity& security);

}  // namespace harness
