#!/usr/bin/env bash
# Build the authentic-photo pool (real, openly licensed camera photographs) from packages of
# the Debian and PyPI registries, kept at native resolution.
#
#   scripts/build_photo_pool.sh OUT_DIR [--extra DIR ...]
#
# Downloads go to a cache folder, never into the git tree:
#   ${NCL_POOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ncl-forensics/pool-src}
# Output: OUT_DIR/<photo-id>/photo.<ext> and OUT_DIR/manifest.json (see docs/PHOTO_POOL.md).
# Needs: apt-get + dpkg-deb (Debian; nothing is installed), unzip, and a Python with Pillow and
# NumPy (PYTHON=..., default: the repo's .venv, else python3) whose pip can reach PyPI.
# Extra arguments after OUT_DIR go to scripts/pool_photos.py, e.g. --extra DIR/budgie-cc0.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUT_DIR=$1
shift

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=${NCL_POOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ncl-forensics/pool-src}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi

# Pinned so that the pool is reproducible.  Debian: bookworm (12) versions.
DEB_PKGS=(
    "mate-backgrounds=1.26.0-1"
    "plasma-workspace-wallpapers=4:5.27.5-2"
    "plasma-workspace-data=4:5.27.5-2+deb12u2"
    "lomiri-wallpapers-16.04=20.04.0-2"
    "lomiri-wallpapers-20.04=20.04.0-2"
    "lxqt-themes=1.2.0-1"
    "sddm-theme-maldives=0.19.0-5"
    "visp-images-data=3.5.0-1"
    "gcompris-qt-data=3.1-2"
    "kphotoalbum=5.9.1-1"
    "libelementary-data=1.26.3-1"
    "tuxpaint-data=1:0.9.28-sdl2-1"
    "palapeli-data=4:22.12.3-1"
    "enlightenment-data=0.25.4-2"
    "zoph=1.0.1-3"
    "scribus-template=1.2.4.1-6"
    "libjxl-testdata=0.0~git20230110.d6168ff-1"
    "krank=0.7+dfsg2-4"
    "forensics-samples-files=1.1.4-5"
    "tdiary-theme=5.2.3-1"
    "eyes17=5.3.0+repack-3"
    # TeX Live documentation: only the folders of the CTAN packages whose photos are used (and
    # the Debian docs with Licenses.gz) are unpacked; the rest of these large packages is not.
    "texlive-latex-extra-doc=2022.20230122-4|./usr/share/doc/texlive-doc/latex/beamerdarkthemes/ ./usr/share/doc/texlive-latex-extra-doc/"
    "texlive-pictures-doc=2022.20230122-3|./usr/share/doc/texlive-doc/latex/xput/ ./usr/share/doc/texlive-pictures-doc/"
    "texlive-publishers-doc=2022.20230122-4|./usr/share/doc/texlive-doc/latex/mlacls/ ./usr/share/doc/texlive-doc/latex/hagenberg-thesis/examples/HgbArticle/ ./usr/share/doc/texlive-publishers-doc/"
    "texlive-lang-english=2022.20230122-1|./usr/share/doc/texlive-doc/latex/tlc3-examples/ ./usr/share/doc/texlive-lang-english/"
)
# An entry "PKG=VERSION|MEMBER ..." unpacks only those members (paths as in the .deb, "./usr/...");
# without "|", the whole package is unpacked.
# PyPI wheels: name==version, then the files to take out of the wheel.
PYPI_PKGS=(
    "scikit-image==0.26.0|skimage/data/*"
    "scikit-learn==1.9.1|sklearn/datasets/images/*"
    "scipy==1.9.3|scipy/misc/face.dat scipy/misc/_common.py"
)

mkdir -p "$CACHE/debs" "$CACHE/wheels" "$CACHE/x"
: > "$CACHE/versions.tsv.new"

# ---------------------------------------------------------------- Debian (download + dpkg -x)
if [[ "${NCL_POOL_SKIP_APT_UPDATE:-0}" != 1 ]]; then
    echo "== apt-get update"
    apt-get update -qq
fi
for entry in "${DEB_PKGS[@]}"; do
    spec=${entry%%|*}
    members=""
    [[ "$entry" == *"|"* ]] && members=${entry#*|}
    pkg=${spec%%=*}
    ver=${spec#*=}
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
    if [[ -n "$deb" && "$(dpkg-deb -f "$deb" Version)" != "$ver" ]]; then
        rm -f "$deb"; deb=""
    fi
    if [[ -z "$deb" ]]; then
        echo "== apt-get download $spec"
        if ! (cd "$CACHE/debs" && apt-get download -q "$spec" 2>&1) | { grep -v unsandboxed || true; }; then
            echo "   pinned version not available; taking the candidate version of $pkg" >&2
            (cd "$CACHE/debs" && apt-get download -q "$pkg" 2>&1) | { grep -v unsandboxed || true; } || {
                echo "   $pkg not downloadable; skipped" >&2; continue; }
        fi
        deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -n1)
    fi
    realver=$(dpkg-deb -f "$deb" Version)
    mark=".extracted-$realver"
    [[ -n "$members" ]] && mark="$mark-$(printf '%s' "$members" | md5sum | cut -c1-8)"
    if [[ ! -f "$CACHE/x/$pkg/$mark" ]]; then
        rm -rf "$CACHE/x/$pkg"
        mkdir -p "$CACHE/x/$pkg"
        if [[ -n "$members" ]]; then
            # shellcheck disable=SC2086
            dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$CACHE/x/$pkg" $members
        else
            dpkg -x "$deb" "$CACHE/x/$pkg"
        fi
        touch "$CACHE/x/$pkg/$mark"
    fi
    printf '%s\t%s\t%s\n' "$pkg" "$realver" debian >> "$CACHE/versions.tsv.new"
done

# ------------------------------------------------------------------- PyPI (wheel, no install)
for entry in "${PYPI_PKGS[@]}"; do
    req=${entry%%|*}
    members=${entry#*|}
    name=${req%%==*}
    ver=${req#*==}
    modname=${name//-/_}
    whl=$(ls "$CACHE/wheels/${modname}-${ver}-"*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$whl" ]]; then
        echo "== pip download $req"
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$CACHE/wheels" "$req"
        whl=$(ls "$CACHE/wheels/${modname}-${ver}-"*.whl | head -n1)
    fi
    if [[ ! -f "$CACHE/x/$name/.extracted-$ver" ]]; then
        rm -rf "$CACHE/x/$name"
        mkdir -p "$CACHE/x/$name"
        # shellcheck disable=SC2086
        unzip -q -o "$whl" $members '*.dist-info/*' -d "$CACHE/x/$name"
        touch "$CACHE/x/$name/.extracted-$ver"
    fi
    printf '%s\t%s\t%s\n' "$name" "$ver" pypi >> "$CACHE/versions.tsv.new"
done
mv "$CACHE/versions.tsv.new" "$CACHE/versions.tsv"

# ------------------------------------------------------------------------- select + crop
echo "== writing the pool into $OUT_DIR"
"$PYTHON" "$HERE/pool_photos.py" "$CACHE" "$OUT_DIR" "$@"
