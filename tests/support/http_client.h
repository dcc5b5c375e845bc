// A blocking HTTP(S) GET (or other method) for integration tests of the controller's HTTP
// listener, on libcurl. Only 127.0.0.1 is ever fetched; no proxy from the environment is used.
#pragma once

#include <string>
#include <vector>

namespace harness::testing {

struct HttpResult {
  long status = 0;      // 0: no answer (curl_error says why)
  std::string body;
  std::string content_type;
  std::string curl_error;
  std::string headers;  // the answer's header lines, as received ("Name: value\r\n" each)
};

// The value of the answer's header `name` (case-insensitive), "" when it has none.
std::string HeaderValue(const HttpResult& r, const std::string& name);

// `headers`: "Name: value" lines. `ca_file`: the CA to trust for https:// (empty: http only).
HttpResult HttpFetch(const std::string& url, const std::vector<std::string>& headers = {},
                     const std::string& method = "GET", const std::string& ca_file = "");

}  // namespace harness::testing
