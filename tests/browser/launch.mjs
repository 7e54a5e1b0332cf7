// The system's chromium (Debian's package), headless, with nothing that reaches out to the
// network on its own. Playwright gives each launch a fresh profile (--user-data-dir) of its
// own, under TMPDIR: the tests point TMPDIR into their own directory.
export function launch(chromium) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// Console errors a test provokes on purpose: the 403 a viewer gets when posting anyway.
export const NO_ERRORS = /status of 403/;
