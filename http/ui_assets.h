// The dashboard's static files (http/ui/*: HTML, CSS, JS), embedded in the binary at build time
// by http/ui/embed.cmake: no files to install, no npm, nothing fetched from outside. The page
// is "/" (index.html); the others are served under "/ui/<name>".
#pragma once

#include "absl/strings/string_view.h"

namespace harness::http {

struct UiAsset {
  absl::string_view path;          // "/", "/ui/app.js", ...
  absl::string_view content_type;  // "text/html; charset=utf-8", ...
  absl::string_view body;
};

// The asset served at `path`; nullptr if none.
const UiAsset* FindUiAsset(absl::string_view path);

}  // namespace harness::http
