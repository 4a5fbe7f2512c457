#!/usr/bin/env bash
# Browser test for `shiren serve` (called by .ci/run): starts the server on a
# free loopback port, has headless Chromium load the page with an acrostic in
# the query string (the page fills its form from it and presses the button),
# checks the poem in the DOM, then the 检查 view (a poem checked, a broken
# character clicked for suggestions) and a line rewrite (a character locked,
# a line's 改 clicked), and saves screenshots under target/.
#
#   scripts/browser_test.sh                  # build, serve the shipped model, test
#   SHIREN_MODEL=DIR scripts/browser_test.sh # serve another checkpoint
#   SHIREN_URL=http://127.0.0.1:8080 scripts/browser_test.sh   # test a running server
#
# Installs Debian's chromium (and a CJK font, so the screenshot is legible)
# when missing. Exits non-zero with one line on stderr when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8 # ${#line} counts characters, not bytes

say() { echo "browser_test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# The binary `cargo build --profile test` makes: cargo says where it builds
# ($CARGO_TARGET_DIR, a config's target-dir, or target/).
shiren_bin() {
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$dir/debug/shiren"
}
# For the test that checks this path: print it and stop.
if [ -n "${BROWSER_TEST_PRINT_BIN:-}" ]; then shiren_bin; exit 0; fi

ACROSTIC=春夏秋冬
FORM=wujue # 4 lines of 5
SHOT=target/serve-screenshot.png
SHOT_PHONE=target/serve-screenshot-phone.png
SHOT_CHECK=target/serve-screenshot-check.png
SHOT_REWRITE=target/serve-screenshot-rewrite.png
POEM=床前明月光，疑是地上霜。举头望明月，低头思故乡。 # a 古绝: breaks 二四六分明, 粘, 对

# --- tools ---------------------------------------------------------------------------------------
apt_install() {
  local runner=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || fail "$* missing and not root (install it: apt-get install -y $*)"
    runner=(sudo)
  fi
  say "installing $*"
  "${runner[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq "$@" >/dev/null
}
command -v chromium >/dev/null || apt_install chromium
command -v fc-list >/dev/null && { fc-list :lang=zh | grep -q . || apt_install fonts-noto-cjk; }
command -v curl >/dev/null || apt_install curl

# --- server --------------------------------------------------------------------------------------
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ -n "${SHIREN_URL:-}" ]; then
  url=${SHIREN_URL%/}
else
  # The test profile shares its build with `cargo test`, which .ci/run has just run.
  bin=$(shiren_bin)
  cargo build --quiet --profile test --bin shiren
  "$bin" serve --addr 127.0.0.1:0 ${SHIREN_MODEL:+--model "$SHIREN_MODEL"} >"$tmp/out" 2>"$tmp/err" &
  server_pid=$!
  for _ in $(seq 1 600); do # loading a model takes well under a minute
    grep -q '^listening on ' "$tmp/out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || fail "shiren serve exited: $(tail -n 3 "$tmp/err" | tr '\n' ' ')"
    sleep 0.1
  done
  url=$(sed -n 's|^listening on \(http://[^/]*\)/$|\1|p' "$tmp/out")
  [ -n "$url" ] || fail "shiren serve printed no address within 60 s"
fi
say "server at $url"
curl -fsS "$url/healthz" >/dev/null || fail "$url/healthz did not answer"

# --- browser -------------------------------------------------------------------------------------
chrome() {
  # No network beyond loopback is needed or wanted: everything background is off.
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --hide-scrollbars --mute-audio \
    --user-data-dir="$(mktemp -d -p "$tmp")" --virtual-time-budget=15000 "$@" 2>>"$tmp/chromium.log"
}

page="$url/?acrostic=$ACROSTIC&form=$FORM&seed=7&count=2&auto=1"
chrome --dump-dom "$page" >"$tmp/dom.html" || fail "chromium --dump-dom failed: $(tail -n 2 "$tmp/chromium.log")"
state=$(grep -o 'data-state="[a-z]*"' "$tmp/dom.html" | head -n 1 || true)
[ "$state" = 'data-state="done"' ] ||
  fail "the page did not finish writing ($state): $(grep -o '<p id="status"[^<]*' "$tmp/dom.html" || true)"
mapfile -t lines < <(grep -o 'data-line="[^"]*"' "$tmp/dom.html" | sed 's/^data-line="//; s/"$//')
[ "${#lines[@]}" -eq 8 ] || fail "expected 2 poems of 4 lines in the DOM, found ${#lines[@]} lines: ${lines[*]}"
heads=
for i in "${!lines[@]}"; do
  line=${lines[$i]}
  [ "${#line}" -eq 5 ] || fail "line $((i + 1)) \"$line\" has ${#line} characters, a 五绝 line has 5"
  case "$line" in *[[:space:][:ascii:]]*) fail "line $((i + 1)) \"$line\" holds a space or ASCII" ;; esac
  heads+=${line:0:1}
done
[ "$heads" = "$ACROSTIC$ACROSTIC" ] || fail "acrostic heads are \"$heads\", wanted \"$ACROSTIC\" twice"
grep -q 'class="ch[^"]*foot' "$tmp/dom.html" || fail "no rhyme foot is marked"
grep -q '<rt>[○●◐]</rt>' "$tmp/dom.html" || fail "no tone mark is shown"
say "DOM ok: ${lines[*]}"

mkdir -p target
rm -f "$SHOT" "$SHOT_PHONE"
chrome --window-size=1000,900 --screenshot="$SHOT" "$page" >/dev/null || fail "screenshot failed"
chrome --window-size=390,844 --screenshot="$SHOT_PHONE" "$page&vertical=1" >/dev/null || fail "phone screenshot failed"
[ -s "$SHOT" ] && [ -s "$SHOT_PHONE" ] || fail "no screenshot written"
say "screenshots: $SHOT $SHOT_PHONE"

# --- the check view: marks, rule names, suggestions for a clicked character ---------------------
check_page="$url/?view=check&poem=$POEM&auto=1&tap=2.4"
chrome --dump-dom "$check_page" >"$tmp/check.html" || fail "chromium --dump-dom of the check view failed"
state=$(grep -o 'data-state="[a-z]*"' "$tmp/check.html" | head -n 1 || true)
[ "$state" = 'data-state="suggested"' ] ||
  fail "the check view did not check and suggest ($state): $(grep -o '<p id="status"[^<]*' "$tmp/check.html" || true)"
for rule in 二四六分明 失粘 失对; do
  grep -q "$rule" "$tmp/check.html" || fail "the check view does not name $rule"
done
grep -q 'class="ch[^"]* bad' "$tmp/check.html" || fail "no broken character is marked"
grep -q '<rt>●</rt>' "$tmp/check.html" || fail "no tone mark in the check view"
grep -q 'class="pick"' "$tmp/check.html" || fail "no suggestion is offered for 上 (line 2, character 4)"
rm -f "$SHOT_CHECK" "$SHOT_REWRITE"
chrome --window-size=1000,1200 --screenshot="$SHOT_CHECK" "$check_page" >/dev/null || fail "check view screenshot failed"
say "check view ok: $(grep -o 'class="pick"[^>]*>[^<]*' "$tmp/check.html" | sed 's/.*>//' | tr '\n' ' ')"

# --- a line rewrite: lock a character of line 1, rewrite line 3; the other lines and 秋 stay -----
rewrite_page="$url/?acrostic=$ACROSTIC&form=$FORM&seed=7&auto=1&lock=1.2&rewrite=3"
chrome --dump-dom "$rewrite_page" >"$tmp/rewrite.html" || fail "chromium --dump-dom of the rewrite failed"
grep -q 'data-rewritten="3"' "$tmp/rewrite.html" ||
  fail "line 3 was not rewritten: $(grep -o '<p id="status"[^<]*' "$tmp/rewrite.html" || true)"
grep -q 'class="ch[^"]* locked' "$tmp/rewrite.html" || fail "the locked character is not shown as locked"
python3 - "$tmp/rewrite.html" <<'PY' || fail "the rewrite changed more than line 3"
import html, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
tag = re.search(r'<article class="poem"[^>]*>', dom).group(0)
get = lambda k: html.unescape(re.search(k + r'="([^"]*)"', tag).group(1))
split = lambda t: [x for x in re.split("[，。]", t) if x]
before, after = split(get("data-before")), split(get("data-text"))
assert len(before) == len(after) == 4, (before, after)
assert [before[i] for i in (0, 1, 3)] == [after[i] for i in (0, 1, 3)], (before, after)
assert after[2][0] == "秋" and len(after[2]) == 5, after  # the acrostic's head is kept
print("browser_test: rewrite ok:", " ".join(before), "->", after[2], file=sys.stderr)
PY
chrome --window-size=1000,900 --screenshot="$SHOT_REWRITE" "$rewrite_page" >/dev/null || fail "rewrite screenshot failed"
[ -s "$SHOT_CHECK" ] && [ -s "$SHOT_REWRITE" ] || fail "no screenshot of the check view or the rewrite"
say "screenshots: $SHOT_CHECK $SHOT_REWRITE"

# --- a poem from a title, with keywords that must appear (the shipped model reads titles) ------
title_page="$url/?title=%E9%80%81%E5%88%AB&keywords=%E6%98%8E%E6%9C%88,%E6%B1%9F&form=qijue&seed=3&auto=1"
chrome --dump-dom "$title_page" >"$tmp/title.html" || fail "chromium --dump-dom of the titled poem failed"
state=$(grep -o 'data-state="[a-z]*"' "$tmp/title.html" | head -n 1 || true)
[ "$state" = 'data-state="done"' ] ||
  fail "the page did not write from a title ($state): $(grep -o '<p id="status"[^<]*' "$tmp/title.html" || true)"
python3 - "$tmp/title.html" <<'PY' || fail "the poem written from a title is not a 七绝 holding 明月 and 江"
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
lines = re.findall(r'data-line="([^"]*)"', dom)
assert len(lines) == 4 and all(len(l) == 7 for l in lines), lines
assert any("明月" in l for l in lines) and any("江" in l for l in lines), lines
print("browser_test: title ok: 送别 →", " ".join(lines), file=sys.stderr)
PY

# --- graceful stop -------------------------------------------------------------------------------
if [ -n "$server_pid" ]; then
  kill -TERM "$server_pid"
  for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$server_pid" 2>/dev/null && fail "shiren serve did not stop within 10 s of SIGTERM"
  wait "$server_pid" || fail "shiren serve exited with $? after SIGTERM"
  server_pid=
fi
say "ok"
