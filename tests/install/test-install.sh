#!/usr/bin/env bash
# The installed layout, as a user without root gets it (TAP):
#   test-install.sh MESON BUILD_DIR SOURCE_DIR PREFIX BINDIR DATADIR
# installs BUILD_DIR into a temporary directory (meson install --destdir),
# then checks that every file lands under PREFIX (nothing in GStreamer's
# own directory), the plugin in PREFIX/lib*/gstreamer-1.0, where
# GST_PLUGIN_PATH makes gst-inspect-1.0 find it (with a registry of its own
# and no system plugins), that the installed CLI reads an installed model
# and that the installed convtranspose-export starts (it finds its Python
# package in the install tree, not in the source tree). BINDIR and DATADIR
# are meson's options (relative to PREFIX or absolute).
# The checks are functions that check() calls.
# shellcheck disable=SC2317
set -uo pipefail

meson=$1 build=$2 src=$3 prefix=$4 bindir=$5 datadir=$6
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
case $datadir in /*) ;; *) datadir=$prefix/$datadir ;; esac

dest=$(mktemp -d "${TMPDIR:-/tmp}/ct-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
root=$dest$prefix

n=0
status=0
check() { # check DESCRIPTION COMMAND...: one TAP line, the output on failure
  local what=$1 out
  shift
  n=$((n + 1))
  if out=$("$@" 2>&1); then
    echo "ok $n - $what"
  else
    echo "not ok $n - $what"
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
    status=1
  fi
}

echo "1..7"
check "meson install --destdir $dest (prefix $prefix)" \
  "$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet

outside() { # every installed file is under PREFIX
  local stray
  stray=$(cd "$dest" && find . ! -type d | sed 's|^\.||' | grep -v "^$prefix/")
  [ -z "$stray" ] || {
    echo "installed outside the prefix $prefix:"
    echo "$stray"
    return 1
  }
}
check "every installed file is under the prefix" outside

# lib*: meson's libdir, lib/x86_64-linux-gnu on Debian.
plugin=$(find "$root" -path "$root/lib*/gstreamer-1.0/libgstconvtranspose.so" | head -n 1)
found() {
  [ -n "$plugin" ] || {
    echo "no $root/lib*/gstreamer-1.0/libgstconvtranspose.so; installed:"
    (cd "$dest" && find . ! -type d)
    return 1
  }
}
check "the plugin is in PREFIX/lib*/gstreamer-1.0: ${plugin#"$dest"}" found
plugindir=$(dirname "$plugin")

inspect() {
  found || return 1
  mkdir -p "$dest/no-system-plugins"
  local out
  out=$(env -u GST_PLUGIN_PATH_1_0 -u GST_REGISTRY -u GST_PLUGIN_SYSTEM_PATH \
    GST_PLUGIN_PATH="$plugindir" GST_REGISTRY_1_0="$dest/registry.bin" \
    GST_PLUGIN_SYSTEM_PATH_1_0="$dest/no-system-plugins" \
    gst-inspect-1.0 convtranspose1d) || {
    echo "$out"
    return 1
  }
  grep -qE "^ *Filename +$plugin\$" <<<"$out" || {
    echo "$out"
    echo "gst-inspect-1.0 did not name $plugin"
    return 1
  }
}
check "GST_PLUGIN_PATH=${plugindir#"$dest"} gst-inspect-1.0 convtranspose1d finds it" inspect

models=$dest$datadir/gst-convtranspose/models
shipped() { # every file of models/ is installed, byte for byte
  local f
  for f in "$src"/models/*; do
    cmp "$f" "$models/$(basename "$f")" || return 1
  done
}
check "the shipped models are in ${models#"$dest"}" shipped

cli() {
  local out
  out=$("$dest$bindir/convtranspose" info "$models/audio-up2x.safetensors") || {
    echo "$out"
    return 1
  }
  grep -q "^stride: 2$" <<<"$out" || {
    echo "$out"
    return 1
  }
}
check "the installed CLI runs info on an installed model" cli

export_help() { # from / with no PYTHONPATH: only the install tree can serve
  local tool=$dest$bindir/convtranspose-export resolved
  resolved=$(readlink -f "$tool")
  case $resolved in
  "$dest"/*) ;;
  *)
    echo "$tool resolves to $resolved, outside the install tree"
    return 1
    ;;
  esac
  (cd / && env -u PYTHONPATH "$tool" --help) | grep -q "^usage: convtranspose-export"
}
check "the installed convtranspose-export starts (--help)" export_help

exit $status
