#!/usr/bin/env bash
# Screenshots of the built Quick start and Theory pages, for docs/figures/site/ (not part of CI).
# The site loads KaTeX from a CDN; here the pages are pointed at a local copy of the same KaTeX
# version (npm's katex package, unpacked in a temporary folder and never committed), so that the
# mathematics renders without a network. Needs mkdocs (pip install -e ".[docs]"), npm, Debian's
# chromium, and Pillow (a dependency of matplotlib) to shrink the PNGs to a 256-colour palette.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(grep -o 'katex@[0-9.]*' mkdocs.yml | head -1 | cut -d@ -f2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "katex@$version" > /dev/null && tar xzf katex-*.tgz)
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$work/site"
cp -r "$work/package/dist" "$work/site/katex"
mkdir -p docs/figures/site
for page in quickstart theory; do
    sed -i "s#https://unpkg.com/katex@$version/dist#../katex#g" "$work/site/$page/index.html"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000 \
        --window-size=1280,2000 --screenshot="$work/$page.png" "file://$work/site/$page/index.html" 2> /dev/null
    python -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').quantize(256).save(sys.argv[2], optimize=True)" \
        "$work/$page.png" "docs/figures/site/$page.png"
    echo "docs/figures/site/$page.png: $(stat -c %s "docs/figures/site/$page.png") bytes"
done
