#!/bin/bash
# ctest lab:report-html: `lockstep lab --quick --report DIR` for three scenarios, then
# report.html rendered by headless Chromium: the page must load with every image drawn (the
# page's own script writes data-images="ok N/N" on the body), and a copy of the page with
# its plots removed must report them missing (so the check can fail). Screenshots stay in
# DIR (the build tree) as test artefacts: report.png, and missing.png for the broken copy.
# Usage: lab_report_html.sh LOCKSTEP DIR. Exit 77 (skipped) without chromium or the dataset.
set -u
LOCKSTEP="$1"
DIR="$2"
DATA="${LOCKSTEP_DATA:-/usr/share/datasets/fashion-mnist}"
CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$CHROMIUM" ] || { echo "no chromium: skipped (scripts/setup.sh installs it)"; exit 77; }
[ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ] ||
  { echo "no dataset: skipped"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$DIR" && mkdir -p "$DIR/broken" || fail "cannot create $DIR"
PROFILE="$(mktemp -d "${TMPDIR:-/tmp}/lockstep_chromium_XXXXXX")"
trap 'rm -rf "$PROFILE"' EXIT
"$LOCKSTEP" lab --quick --report "$DIR" init-seed dropout-eval divergence-growth > "$DIR/lab.txt" ||
  { cat "$DIR/lab.txt"; fail "lockstep lab exited $?"; }
headless() {  # headless PAGE EXTRA-FLAGS...: a fresh profile, no sandbox (CI runs as root)
  local page="$1"; shift
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$PROFILE" --virtual-time-budget=5000 "$@" "file://$page" 2> "$DIR/chromium.err"
}
headless "$DIR/report.html" --dump-dom > "$DIR/dom.html" || { cat "$DIR/chromium.err"; fail "chromium --dump-dom"; }
grep -q 'data-images="ok 3/3"' "$DIR/dom.html" || fail "report.html: $(grep -o 'data-images="[^"]*"' "$DIR/dom.html")"
for s in init-seed dropout-eval divergence-growth; do
  grep -q "href=\"#$s\"" "$DIR/dom.html" && grep -q "id=\"$s\"" "$DIR/dom.html" || fail "no link or section for $s"
done
grep -q 'href="report.md"' "$DIR/dom.html" || fail "no link to report.md"
headless "$DIR/report.html" --screenshot="$DIR/report.png" --window-size=1100,2400 > /dev/null ||
  fail "chromium --screenshot"
[ -s "$DIR/report.png" ] || fail "no screenshot"
# The check can fail: the same page without its plots reports them missing.
cp "$DIR/report.html" "$DIR/broken/report.html"
headless "$DIR/broken/report.html" --dump-dom > "$DIR/broken/dom.html" || fail "chromium on the broken copy"
grep -q 'data-images="missing 3/3"' "$DIR/broken/dom.html" ||
  fail "broken copy: $(grep -o 'data-images="[^"]*"' "$DIR/broken/dom.html")"
headless "$DIR/broken/report.html" --screenshot="$DIR/missing.png" --window-size=1100,1200 > /dev/null || true
echo "PASS (screenshots: $DIR/report.png, $DIR/missing.png)"
