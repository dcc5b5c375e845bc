// page_shot: one screenshot of a page in Debian's headless chromium (tests/support/chromium.h),
// for scripts/dashboard-screenshot.sh. Loads URL, waits until a JavaScript expression is true,
// grows the viewport to the page's height (--fit) and writes a PNG. Not a test; exits 1 with a
// message when chromium is missing, the page does not load or the expression stays false.
//
//   page_shot --url http://127.0.0.1:9100/ --out docs/dashboard.png
//             [--wait 'EXPR'] [--width 1400] [--height 1000] [--fit [--max-height 1600]]
//             [--timeout 60]
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/support/chromium.h"

namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "page_shot: %s\nusage: page_shot --url URL --out PNG [--wait EXPR] [--width W] "
               "[--height H] [--fit [--max-height H]] [--timeout SECONDS]\n",
               why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using harness::testing::Chromium;
  std::string url, out, wait = "true";
  int width = 1400, height = 1000, max_height = 0, timeout_s = 60;
  bool fit = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--fit") {
      fit = true;
      continue;
    }
    if (i + 1 >= argc) return Usage(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--url") {
      url = v;
    } else if (a == "--out") {
      out = v;
    } else if (a == "--wait") {
      wait = v;
    } else if (a == "--width" && absl::SimpleAtoi(v, &width) && width > 0) {
    } else if (a == "--height" && absl::SimpleAtoi(v, &height) && height > 0) {
    } else if (a == "--max-height" && absl::SimpleAtoi(v, &max_height) && max_height > 0) {
    } else if (a == "--timeout" && absl::SimpleAtoi(v, &timeout_s) && timeout_s > 0) {
    } else {
      return Usage(absl::StrCat("bad argument ", a, " ", v));
    }
  }
  if (url.empty() || out.empty()) return Usage("--url and --out are required");

  char tmpl[] = "/tmp/page_shot.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Usage("cannot create a profile folder in /tmp");
  const std::string profile = tmpl;
  int rc = 1;
  {
    absl::StatusOr<std::unique_ptr<Chromium>> b =
        Chromium::Start(profile + "/profile", width, height, profile + "/chromium.log");
    if (!b.ok()) {
      std::fprintf(stderr, "page_shot: %s\n", std::string(b.status().message()).c_str());
    } else if (absl::Status s = (*b)->Navigate(url); !s.ok()) {
      std::fprintf(stderr, "page_shot: %s\n", std::string(s.message()).c_str());
    } else if (!(*b)->WaitUntil(wait, absl::Seconds(timeout_s))) {
      std::fprintf(stderr, "page_shot: %s stayed false for %d s on %s; the page shows:\n%s\n",
                   wait.c_str(), timeout_s, url.c_str(),
                   (*b)->Eval("document.body.innerText").value_or(nlohmann::json()).dump(2).c_str());
    } else {
      if (fit) {  // the whole page (up to --max-height), not just the window's height
        absl::StatusOr<nlohmann::json> h =
            (*b)->Eval("Math.ceil(document.documentElement.scrollHeight)");
        if (h.ok() && h->is_number_integer()) {
          (void)(*b)->Call("Emulation.setDeviceMetricsOverride",
                           {{"width", width},
                            {"height", max_height > 0 ? std::min(h->get<int>(), max_height)
                                                      : h->get<int>()},
                            {"deviceScaleFactor", 1},
                            {"mobile", false}});
        }
      }
      if (absl::Status s = (*b)->Screenshot(out); !s.ok()) {
        std::fprintf(stderr, "page_shot: %s\n", std::string(s.message()).c_str());
      } else {
        rc = 0;
      }
    }
  }  // the browser is closed (by pid) here
  if (rc != 0) {
    std::fprintf(stderr, "page_shot: chromium's log is in %s/chromium.log\n", profile.c_str());
  } else {
    std::filesystem::remove_all(profile);
  }
  return rc;
}
