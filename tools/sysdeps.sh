#!/usr/bin/env bash
# System packages the book needs, from Debian's archive: the real Fashion-MNIST files (so no
# download is ever needed) and Chromium with its driver (for the rendered-book test).
# Installs only on Debian/Ubuntu as root; elsewhere it says what is missing and carries on
# (Keras then downloads the data itself, and the browser test skips outside CI).
set -euo pipefail
need=()
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "Not installed (needs Debian as root): ${need[*]}. Install them by hand, or set FASHION_MNIST_DIR." >&2
fi
