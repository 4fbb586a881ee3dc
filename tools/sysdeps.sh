#!/usr/bin/env bash
# System packages the book needs, from Debian's archive: the real Fashion-MNIST files (so no
# download is ever needed), Chromium with its driver (for the rendered-book test), and for the
# PDF edition (make pdf, which passes `pdf`): TeX Live's XeLaTeX and latexmk, the FreeFont
# faces Sphinx sets the text in, and poppler's pdftotext, pdfimages and pdftoppm for its checks
# (about 86 MB downloaded; the 600 MB texlive-fonts-extra is not needed, see
# tools/build_book.py, nor xindy: the book has no index of terms). The DejaVu fonts, which
# the PDF sets its code in, come with the browser test's set (tests/fonts.conf).
# Installs only on Debian/Ubuntu as root; elsewhere it says what is missing and carries on
# (Keras then downloads the data itself, and the browser test skips outside CI).
set -euo pipefail
# Installed means unpacked and configured: `dpkg -s` also succeeds for a package that was
# removed but whose configuration files remain ("deinstall ok config-files").
installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}
pdf=; dry_run=
for arg in "$@"; do
  case $arg in
    pdf) pdf=1 ;;
    --dry-run) dry_run=1 ;;  # print what would be installed, install nothing
    *) echo "usage: tools/sysdeps.sh [pdf] [--dry-run]" >&2; exit 2 ;;
  esac
done
need=()
installed dataset-fashion-mnist || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The fonts the browser test renders the book with (tests/fonts.conf), and fc-list to check.
installed fonts-dejavu-core || need+=(fonts-dejavu-core)
command -v fc-list >/dev/null 2>&1 || need+=(fontconfig)
# `tools/sysdeps.sh pdf` (make pdf) adds the PDF edition's packages; make test needs none.
if [ -n "$pdf" ]; then
  for pkg in texlive-xetex texlive-latex-extra texlive-latex-recommended \
    texlive-fonts-recommended latexmk \
    fonts-freefont-otf poppler-utils; do
    installed "$pkg" || need+=("$pkg")
  done
fi
if [ -n "$dry_run" ]; then
  [ ${#need[@]} -eq 0 ] || echo "${need[*]}"
  exit 0
fi
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "Not installed (needs Debian as root): ${need[*]}. Install them by hand, or set FASHION_MNIST_DIR." >&2
fi
