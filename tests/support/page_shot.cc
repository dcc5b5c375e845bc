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
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/time/time.h"
#include "config/flags.h"
#include "tests/support/chromium.h"

int main(int argc, char** argv) {
  using harness::testing::Chromium;
  std::string url, out, wait = "true";
  int64_t width = 1400, height = 1000, max_height = 0, timeout_s = 60;
  bool fit = false;
  harness::FlagParser flags("page_shot",
                            "usage: page_shot --url URL --out PNG [--wait EXPR] [--width W] "
                            "[--height H] [--fit [--max-height H]] [--timeout SECONDS]");
  flags.AddString("url", &url, "the page to load");
  flags.AddString("out", &out, "the PNG to write");
  flags.AddString("wait", &wait, "a JavaScript expression to wait for before the picture");
  flags.AddInt("width", &width, "the window's width", 1, 10000);
  flags.AddInt("height", &height, "the window's height", 1, 10000);
  flags.AddBool("fit", &fit, "grow the window to the page's height");
  flags.AddInt("max-height", &max_height, "with --fit, at most this height (0: no limit)", 0,
               100000);
  flags.AddInt("timeout", &timeout_s, "seconds to wait for the page and --wait", 1, 3600);
  flags.ParseOrExit(argc, argv);
  if (url.empty() || out.empty()) flags.Fail("--url and --out are required");

  char tmpl[] = "/tmp/page_shot.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "page_shot: cannot create a profile folder in /tmp\n");
    return 1;
  }
  const std::string profile = tmpl;
  int rc = 1;
  {
    absl::StatusOr<std::unique_ptr<Chromium>> b =
        Chromium::Start(profile + "/profile", static_cast<int>(width), static_cast<int>(height),
                        profile + "/chromium.log");
    if (!b.ok()) {
      std::fprintf(stderr, "page_shot: %s\n", std::string(b.status().message()).c_str());
    } else if (absl::Status s = (*b)->Navigate(url); !s.ok()) {
      std::fprintf(stderr, "page_shot: %s\n", std::string(s.message()).c_str());
    } else if (!(*b)->WaitUntil(wait, absl::Seconds(timeout_s))) {
      std::fprintf(stderr, "page_shot: %s stayed false for %d s on %s; the page shows:\n%s\n",
                   wait.c_str(), static_cast<int>(timeout_s), url.c_str(),
                   (*b)->Eval("document.body.innerText").value_or(nlohmann::json()).dump(2).c_str());
    } else {
      if (fit) {  // the whole page (up to --max-height), not just the window's height
        absl::StatusOr<nlohmann::json> h =
            (*b)->Eval("Math.ceil(document.documentElement.scrollHeight)");
        if (h.ok() && h->is_number_integer()) {
          (void)(*b)->Call("Emulation.setDeviceMetricsOverride",
                           {{"width", width},
                            {"height", max_height > 0
                                           ? std::min(h->get<int>(), static_cast<int>(max_height))
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
