#!/usr/bin/env python3
"""Build the authentic-photo pool from packages already fetched by build_photo_pool.sh.

Input: the cache folder that build_photo_pool.sh filled (``<cache>/x/<package>/`` holds each
package's extracted files, ``<cache>/versions.tsv`` holds "package<TAB>version<TAB>registry").
Output: ``OUT_DIR/<photo-id>/photo.<ext>`` (one folder per source photo, so that train / val /
test can be split by source photo) and ``OUT_DIR/manifest.json``. Photos keep their published
resolution and encoding: JPEG and WebP files are copied byte for byte, everything else becomes a
lossless PNG. Nothing is scaled or cropped: sensor noise, demosaicing and the JPEG grid are the
traces a forensic network learns from. ``--extra DIR`` adds a folder of published photos
(``EXTRA_SETS`` below says which folders are known, with their source and licence).

Which files are photographs was decided by looking at every candidate (contact sheets); the
decisions are the SELECTION table below. Licences are read from the packages themselves:
a statement in the package's own files that names the photo's author and licence (a CTAN
package's README, the photo's XMP data: PHOTO_STATEMENTS, checked at build time), else
an SPDX ``<file>.license`` sidecar, else a GCompris per-activity ``README``, else a Palapeli
puzzle's ``.desktop`` file, else a free-text Debian ``copyright`` file whose licence sentence is
checked (FREE_TEXT_COPYRIGHT), else the DEP-5 Debian ``copyright`` file (last matching stanza
wins), else the table for PyPI files (whose licences are stated in the package's docstrings /
README). Enlightenment's wallpapers are Edje (EET) files: the largest JPEG inside each is taken
out byte for byte.

Only Pillow and NumPy are needed.
"""

from __future__ import annotations

import argparse
import bz2
import fnmatch
import hashlib
import json
import re
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image

# ----------------------------------------------------------------------------------------------
# Selection: package -> list of (glob relative to the package root, {basename: exclusion reason})
# Everything a glob matches is a photograph unless listed as excluded.  Candidates that were
# looked at and rejected wholesale (whole folders of renders, logos, ...) are in REJECTED_SETS
# and only documented.
# ----------------------------------------------------------------------------------------------
RENDER = "not a photograph (render / illustration / abstract)"
TEXDOC = "usr/share/doc/texlive-doc"
COMPOSITE = "looks composited or is a video-game render (must not enter an authentic pool)"

SELECTION: dict[str, list[tuple[str, dict[str, str]]]] = {
    "mate-backgrounds": [("usr/share/backgrounds/mate/nature/*.jpg", {})],
    "plasma-workspace-wallpapers": [
        # one file per wallpaper: the largest of contents/images/* (picked in code)
        (f"usr/share/wallpapers/{w}/contents/images/*", {})
        for w in [
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        ]
    ],
    "plasma-workspace-data": [
        (
            "usr/share/plasma/avatars/photos/*.png",
            {
                "Shuttle.png": "looks like an illustration / model shot, not a plain photograph",
                "Cocktail.png": COMPOSITE,
                "Air Balloon.png": COMPOSITE,
                "Car.png": COMPOSITE + " (Forza Horizon screenshot)",
            },
        )
    ],
    "lomiri-wallpapers-16.04": [
        (
            "usr/share/backgrounds/*.jpg",
            {
                "analogpattern_by_Peter_Nerlich.jpg": "abstract light-leak / grain pattern, not a scene",
                "umang_by_Abhishek_Mudgal.jpg": RENDER,
            },
        )
    ],
    "lomiri-wallpapers-20.04": [("usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", {})],
    "lxqt-themes": [
        (f"usr/share/lxqt/wallpapers/{n}", {})
        for n in [
            "Butterfly-Kenneth-Wimer.jpg",
            "Valendas.png",
            "after-the-rain.jpg",
            "appleflower.png",
            "beam.png",
            "butterfly.png",
            "cloud.png",
            "drop.png",
            "flowers.png",
            "fog.jpg",
            "this-is-not-windows.jpg",
        ]
    ],
    "sddm-theme-maldives": [("usr/share/sddm/themes/maldives/background.jpg", {})],
    "visp-images-data": [
        (
            "usr/share/visp-images-data/ViSP-images/Solvay/Solvay_conference_1927_Version2_2126x1463.png",
            {},
        )
    ],
    # GCompris ships its images inside Qt .rcc archives; they are unpacked to gcompris-rcc/.
    "gcompris-qt-data": [
        ("gcompris-rcc/gcompris/src/activities/erase/resource/*.webp", {}),
        ("gcompris-rcc/gcompris/src/activities/explore_farm_animals/resource/animals/*.webp", {}),
        (
            "gcompris-rcc/gcompris/src/activities/explore_monuments/resource/*/*.webp",
            {
                "aulaPalatina.webp": "missing from the activity README; only the blanket "
                "'Files: *' GPL-3+ stanza covers it (photo's own licence unknown)",
            },
        ),
        ("gcompris-rcc/gcompris/src/activities/explore_world_animals/resource/animals/*.webp", {}),
    ],
    # KPhotoAlbum's demo album: the developers' own photos (several cameras, EXIF kept)
    "kphotoalbum": [("usr/share/kphotoalbum/demo/*.jpg", {})],
    # EFL's test images (photos by the Enlightenment developers)
    "libelementary-data": [
        (f"usr/share/elementary/images/{n}.jpg", {})
        for n in [
            "mystrale_2",
            "panel_01",
            "plant_01",
            "rock_01",
            "rock_02",
            "sky_01",
            "sky_02",
            "sky_03",
            "sky_04",
            "twofish",
            "wood_01",
        ]
    ],
    # Tux Paint's photo templates (all by Bill Kendrick, credited in AUTHORS.txt)
    "tuxpaint-data": [
        (
            "usr/share/tuxpaint/templates/*.jpg",
            {
                "mossy_bark.jpg": "letterboxed: black bars were added above and below the photo",
            },
        )
    ],
    # Palapeli's puzzle photos; author, source and licence are in each puzzle's .desktop file
    "palapeli-data": [("usr/share/palapeli/collection/*.jpg", {})],
    # Enlightenment's wallpapers are Edje files; the largest JPEG inside each is taken out as
    # published (unpacked to edj-jpeg/, see prepare()).
    "enlightenment-data": [
        (f"edj-jpeg/{n}.jpg", {})
        for n in [
            "Bamboo",
            "Foggy-Trees",
            "God-Rays",
            "Green-Maple",
            "Lichen-Branches",
            "Mountain",
            "Peaks",
            "Red-Maple",
            "Sea-of-Lanterns",
            "Snow-Trees",
            "Spruce-Needles",
            "Sunset-Clouds",
            "Sunset-Hills",
            "White-Flower",
            "Yellow-Flower",
        ]
    ],
    "zoph": [("usr/share/zoph/www/php/templates/default/images/backgrounds/*.jpg", {})],
    # Riku Leino's templates (placed in the public domain); their photos
    "scribus-template": [
        (f"usr/share/scribus/templates/{n}", {})
        for n in [
            "br2/brightness.jpg",
            "br2/halfmoon.jpg",
            "br2/moon.jpg",
            "br2/nature.jpg",
            "br2/sunset.jpg",
            "cal2/moon.jpg",
            "menu2/pizza.jpg",
        ]
    ],
    "libjxl-testdata": [
        ("usr/share/libjxl-testdata/jxl/flower/flower.png", {}),
        ("usr/share/libjxl-testdata/external/wesaturate/500px/*_srgb8.png", {}),
    ],
    # Krank's level backgrounds: underwater photos (FinePix F50fd) that replaced the upstream
    # images; the copyright file puts them in the public domain (FREE_TEXT_COPYRIGHT)
    "krank": [
        (
            "usr/share/games/krank/levels/unera-backgrounds/*.jpg",
            {
                "menu-credits.jpg": "a vertically flipped copy of level-18.jpg (same shot)",
                "menu-sounds.jpg": "a vertically flipped copy of menu-play.jpg (same shot)",
            },
        )
    ],
    # the maintainer's own photos (phone and compact camera) in the forensics sample set
    "forensics-samples-files": [
        (f"usr/share/forensics-samples/original-files/{n}", {})
        for n in [
            "pic1/IMG-20191006-WA0002.jpg",
            "pic1/IMG_1054.JPG",
            "pic1/IMG_20200827_231612.jpg",
            "pic2/IMG_20191224_234846.jpg",
            "pic2/IMG_20200124_231153.jpg",
            "pic2/IMG_20200608_111614.jpg",
        ]
    ],
    # the header photo of the snest theme (its own DEP-5 stanza names the theme's author)
    "tdiary-theme": [("usr/share/tdiary/theme/snest/h1back.jpg", {})],
    # ExpEYES-17 help pages: the project's photos of its own kit (three cameras, EXIF kept)
    "eyes17": [
        (f"usr/share/eyes17/helpFiles/pics/{n}", {})
        for n in ["accessory.jpg", "induction-photo.jpg", "rod-pend-LB.jpg"]
    ],
    # TeX Live documentation: photos that a CTAN package's own files credit to a named author
    # under a stated licence (PHOTO_STATEMENTS below); build_photo_pool.sh unpacks only these
    # CTAN packages' folders
    "texlive-latex-extra-doc": [
        (
            f"{TEXDOC}/latex/beamerdarkthemes/*.jpg",
            {"dahut.jpg": "img_5630.jpg run through a painterly filter (edited copy)"},
        )
    ],
    "texlive-pictures-doc": [(f"{TEXDOC}/latex/xput/koepi.jpg", {})],
    "texlive-publishers-doc": [
        (f"{TEXDOC}/latex/mlacls/mla-example-image.jpg", {}),
        (f"{TEXDOC}/latex/hagenberg-thesis/examples/HgbArticle/images/*.jpg", {}),
    ],
    "texlive-lang-english": [
        (
            f"{TEXDOC}/latex/tlc3-examples/example-sources/longlife*.jpg",
            {"longlife-grayscale.jpg": "a greyscale copy of longlife.jpg, re-saved by Photoshop"},
        )
    ],
    "scikit-image": [
        (f"skimage/data/{n}", {})
        for n in ["astronaut.png", "camera.png", "coffee.png", "rocket.jpg", "retina.jpg"]
    ],
    "scikit-learn": [("sklearn/datasets/images/*.jpg", {})],
    "scipy": [("scipy/misc/face.png", {})],  # decoded from scipy/misc/face.dat
}
GCOMPRIS_RCC = ["erase", "explore_farm_animals", "explore_monuments", "explore_world_animals"]

# Looked at and not used (documented in docs/PHOTO_POOL.md and the manifest).
REJECTED_SETS = {
    "mate-backgrounds": "abstract/* and desktop/* (incl. Elephants*, Ubuntu-Mate-*): " + RENDER,
    "plasma-workspace-wallpapers": "Altai, Autumn, Canopee, Cascade, Cluster, Elarun, Flow, "
    "FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay, "
    "Opal, PastelHills, Patak, SafeLanding, Shell, Volna: " + RENDER,
    "lomiri-wallpapers-20.04": "Fossa, Infinite-Sea, Painting-Colors: " + RENDER,
    "lomiri-wallpapers": "warty-final-ubuntu.png: " + RENDER,
    "lxqt-themes": "kde-plasma, lxqt-origami-*, origami-*, plasma-*, simple_blue_widescreen, "
    "triangles*, waves-*: " + RENDER,
    "gnome-backgrounds": "all 16 *.webp: " + RENDER,
    "ukui-wallpapers": "all 12: " + RENDER,
    "lxde-common": "lxde_*.jpg: " + RENDER,
    "xfdesktop4-data": "xfce-*: " + RENDER,
    "slim": "themes/*/background.*: " + RENDER,
    "desktop-base": "Debian themes are SVG renders; no photographs",
    "sddm-theme-maldives": "maldives.jpg: screenshot of the login screen (UI overlay)",
    "gcompris-qt-data": "explore_world_music/*: photographs, but the package gives them only the "
    "blanket 'Files: *' licence (no per-photo record); photo_hunter/*: "
    "spot-the-difference pairs (edited); paintings/*, details/*: artworks; "
    "categorization/*: < 384 px",
    "scikit-image": "chelsea (300 px short side), coins (303 px): too small; brick, grass, gravel: "
    "texture close-ups; moon, page, text, cell, ihc, microaneurysms, "
    "hubble_deep_field, clock_motion: scientific / synthetic / scanned; "
    "motorcycle_*: Middlebury stereo pair, licence not stated in the package; "
    "color, phantom, horse, logo, chessboard_*: synthetic",
    "matplotlib": "grace_hopper.jpg: a photograph, but the package states no licence for it",
    "opencv-doc": "examples/data/*: only the blanket 'Files: *' Apache-2.0/BSD stanza covers "
    "third-party photos (e.g. baboon, messi5); provenance not recorded; "
    "ela_modified.jpg is a manipulated image",
    "stellarium-data": "landscape panoramas have transparent skies (alpha-cut), not plain photos",
    "tuxpaint-stamps-default": "photo cut-outs on transparent backgrounds",
    "tuxpaint-data": "starters/*: drawings, maps and frames",
    "libelementary-data": "earth_normal.png (a normal map), space.png (rendered star field): "
    + RENDER
    + "; insanely_huge_test_image.jpg: a snapshot of a celebrity "
    "whose origin the package does not record",
    "enlightenment-data": "Dunes, Flat-Fan, Squiggle*: " + RENDER + "; Flat-Stone-Pattern, "
    "Paper-Flower: flat texture close-ups, not scenes",
    "libjxl-testdata": "flower.png.im_*, flower_cropped, flower_small*, flower_alpha: re-encoded "
    "or cropped copies of flower.png; wesaturate *_grayscale, *_alpha: derived "
    "copies; raw.pixls/*, wesaturate/64px/*: < 384 px; wide-gamut-tests/*: "
    "synthetic charts",
    "psychtoolbox-3-common": "demo photos (konijntjes, stims/*, EyeLink demo scenes): only the "
    "blanket 'Files: *' Expat stanza covers them; their authors are not "
    "recorded; stim6 is a painting",
    "libjs-jquery-backstretch": "examples/*.jpg: photos of unrecorded origin under the blanket "
    "'Files: *' Expat stanza",
    "labelme-examples": "PASCAL VOC / video frames of third parties under the blanket licence; "
    "README screenshots with annotation overlays",
    "digikam-data": "about/body-background.jpg and theme backgrounds: heavily edited graphics",
    "fvwm-crystal": "wallpapers/*: " + RENDER,
    "kodi-data": "skin backgrounds and screenshots: renders / UI",
    "hugin-data": "help images: screenshots and projection demonstrations (remapped images)",
    "wordpress-theme-twentytwentyone": "assets/images/*: paintings (Berthe Morisot)",
    "wordpress-theme-twentytwentytwo": "assets/images/*: illustrations",
    "openclipart-svg": "clip art",
    "scipy": "ascent.dat: a 512 px greyscale image derived from a photo (scaled); not pursued",
    "forensics-samples-files": "pic1/debian*, pic2/d-debian*: drawings of the Debian logo; "
    "pic1/empty.jpg: 161x1",
    "tdiary-theme": "all other themes: images under 384 px, textures and graphics; "
    "winter/background.jpg: faded to white towards the bottom (local edit)",
    "gnome-control-center-data": "pixmaps/faces/*.jpg (also in budgie-control-center-data): "
    "stock photos under the blanket 'Files: *' stanza only; legacy/* and most others 96 px",
    "gimp-help-en": "images/**: filter outputs (not originals) and screenshots; the tone-mapping "
    "tutorial's camera originals (768 px) have only the blanket 'Files: *' GFDL stanza, which "
    "does not record who took them; taj_orig.jpg is 300 px",
    "fotoxx-common": "images/*: screenshots, before/after collages and edited examples",
    "lifeograph": "backgrounds/*: faded or darkened to sit behind text, and only the blanket "
    "'Files: *' GPL-3+ stanza covers them",
    "python-kivy-examples": "demo/pictures/images/*, widgets/cityCC0.png, faust_github.jpg: "
    "photos of unrecorded origin under the blanket 'Files: *' Expat stanza; Ill1, tex3: renders",
    "python-matplotlib-data": "sample_data/grace_hopper.jpg: only the blanket 'Files: *' stanza",
    "ruby-rmagick-doc": "ex/images/*: stock photos (most 250 px) under the blanket MIT stanza",
    "gcompris-qt-data (other activities)": "clickgame/sea1-6: credited only collectively "
    "('Bruno Coudoin and others', by their old .jpg names), photographers not recorded; "
    "lang/words_sample/*: Art4Apps drawings; solar_system, gravity: cut-out planets",
    "imgaug": "quokka.jpg: the wheel states no licence for it",
    "mahotas": "demos/data: luispedro.jpg 300 px; DepartmentStore.jpg is a drawing; "
    "nuclear.png is microscopy",
    "golang-github-rwcarlsen-goexif-dev": "exif/samples/*: under 384 px; tiff/sample1.tif: a "
    "fax scan",
    "tuxtype-data, mate-screensaver-common": "backgrounds: telescope and space-probe images "
    "(mate's earth-horizon has only a 'No copyright' stanza)",
    "tuxmath-data": "backgrounds/*: space images composited above a lunar surface",
    "krank": "everything outside levels/unera-backgrounds/: game graphics",
    "eyes17": "helpFiles/*/pics/*: screenshots and plots; eyes-box, eyes17-panel, eyes17-nb: "
    "product shots cut out onto white; helpFiles/<language>/pics/*: copies of helpFiles/pics",
    "expeyes": "eyesj help pictures: accesoryset, rod-pend-LB are the same files as eyes17's; "
    "ej-with-pc-lr.jpg: cut out onto white with a screenshot on the laptop's screen",
    "budgie-core": "backgrounds/budgie/default.jpg: the same photo as budgie-cc0's roman-colosseum",
    "rawtran-doc": "IMG_5952*.png: under 384 px",
    "wmaker-data, fluxbox, eterm, darktable, rawtherapee-data, gimp-data-extras, khangman, "
    "kanagram, imagemagick-6-doc, pysiogame": "no photograph of 384 px or more (renders, logos, "
    "textures, drawings, screenshots)",
    "texlive-latex-extra-doc": "recipebook/images/* (7 food photos, one Canon PowerShot A3000 IS): "
    "the README's licence names only RecipeBook.cls and nobody as photographer; "
    "wallcalendar/doc/examples/photos/* (frog, obscure-crop): no author or source recorded; "
    "beamertheme-trigon/library.jpg: a Pexels photo (Pexels licence, not an open licence), "
    "re-saved by GIMP; bearwear baer.png, montblanc.jpg and europecv Pythagoras.jpg: no "
    "photographer recorded; tcolorbox lichtspiel.jpg: abstract light pattern; copyrightbox "
    "coin.jpg: cut out; the rest: screenshots, slides, renders, paintings, drawings",
    "texlive-publishers-doc": "kdgdocs pi-orchid.jpg, ftc-notebook first-build.jpg, nwafuthesis "
    "building.jpg: no photographer recorded (package-wide licence only); ftc-notebook "
    "robocracy2018.jpg: edges faded out (local edit), aug18.jpg: a collage; uestcthesis "
    "Chrysanthemum, Penguins, Tulips: Windows sample pictures; hagenberg-thesis "
    "HgbThesisTutorial's cola photo: the same file as HgbArticle's; the rest: screenshots, "
    "logos, CAD renders, plots, a meme",
    "texlive-pictures-doc": "callouts A319neo.jpg: '(c) Airbus S.A.S. 2014'; hvfloat "
    "sonne-meer.jpg: a wide panorama, no author recorded; pleiades: telescope image; the rest: "
    "drawings, diagrams, screenshots",
    "texlive-lang-english": "tlc3-examples longlife-grayscale.jpg: a greyscale copy; "
    "latex-for-undergraduates M33_figure: telescope image; the rest: drawings, book covers, "
    "renders, screenshots",
    "texlive-lang-arabic, texlive-lang-french, texlive-metapost-doc, texlive-latex-extra": "bidi "
    "gull.jpg (Canon PowerShot G3), matapli portrait.png (Nikon D7100, GIMP), featpost "
    "pifpafphoto.jpg and book photos, beamertheme-npbt NPBT_SC_background.jpg (Canon EOS 7D): "
    "no photographer recorded (package-wide licence only)",
    "texlive-publishers": "uantwerpendocs Images/*: the university's house-style photos, re-saved "
    "by GIMP; only 'All files of uantwerpendocs are subject to the LPPL' covers them and no "
    "photographer is named; sduthesis campus photos: under 384 px or no author recorded",
    "texlive-latex-recommended-doc": "beamer a-lecture pictures: truncated JPEG files (grey below "
    "the first rows); pic1 is a render",
    "texlive-lang-chinese, texlive-music": "no photograph of 384 px or more (screenshots, notation)",
    "qtbase5-examples": "fademessage/background.jpg: a photo of a screen carrying a "
    "'RepublicDomain.com' watermark, under the blanket licence; composition/flower.jpg: cut out "
    "onto black; boxes/cubemap_*: renders; the rest: graphics",
    "zaz-data": "level backgrounds: renders with the level's track drawn in",
    "scratch": "Media/Backgrounds/*: 480x360 (under 384 px)",
    "nip2": "examples: greyscale scans of paintings (infrared, X-ray), renders; "
    "slanted_oval_vase2.jpg: a product shot of unrecorded origin under the blanket licence",
    "pingus-data, extremetuxracer-data, neverball-data": "textures, drawings and rendered "
    "skyboxes; no plain photograph of 384 px or more",
    "marble-qt-data": "map textures (satellite mosaics, historical maps); the OpenStreetMap "
    "legend photos are under 384 px",
    "kgeography-data, parley-data, minuet-data, artikulate": "maps, screenshots, graphics",
    "libreoffice-common": "share/gallery holds bullets, shapes, sounds and personas, no photographs "
    "(checked from the file list)",
}

# Licences of PyPI files, as stated in the package (docstrings of skimage/data/_fetchers.py,
# sklearn/datasets/images/README.txt, scipy/misc/_common.py).
PYPI_LICENCES = {
    "skimage/data/astronaut.png": (
        "Public-Domain",
        "NASA (Eileen Collins)",
        "skimage/data/_fetchers.py: 'No known copyright restrictions, "
        "released into the public domain.'",
        "https://flic.kr/p/r9qvLn",
    ),
    "skimage/data/camera.png": (
        "CC0-1.0",
        "Lav Varshney",
        "skimage/data/_fetchers.py: 'CC0 by the photographer (Lav Varshney)'",
        "",
    ),
    "skimage/data/coffee.png": (
        "CC0-1.0",
        "Rachel Michetti",
        "skimage/data/_fetchers.py: 'CC0 by the photographer (Rachel Michetti)'",
        "",
    ),
    "skimage/data/rocket.jpg": (
        "Public-Domain",
        "SpaceX",
        "skimage/data/_fetchers.py: 'released in the public domain'",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
    ),
    "skimage/data/retina.jpg": (
        "CC0-1.0",
        "Mikael Häggström",
        "skimage/data/_fetchers.py: 'Creative Commons CC0 1.0 Universal'",
        "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
    ),
    "sklearn/datasets/images/china.jpg": (
        "CC-BY-2.0",
        "danielbuechele (Flickr)",
        "sklearn/datasets/images/README.txt",
        "https://www.flickr.com/photos/danielbuechele/6061409035/",
    ),
    "sklearn/datasets/images/flower.jpg": (
        "CC-BY-2.0",
        "vultilion (Flickr)",
        "sklearn/datasets/images/README.txt",
        "https://www.flickr.com/photos/vultilion/6056698931/",
    ),
    "scipy/misc/face.png": (
        "Public-Domain",
        "public-domain-image.com",
        "scipy/misc/_common.py (face): 'raccoon-procyon-lotor.jpg at "
        "http://www.public-domain-image.com'",
        "http://www.public-domain-image.com",
    ),
}

LICENCE_URLS = {
    "GPL-2": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "GPL-3": "https://www.gnu.org/licenses/gpl-3.0.html",
    "GPL-3+": "https://www.gnu.org/licenses/gpl-3.0.html",
    "LGPL-2.1+": "https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html",
    "LGPL-3": "https://www.gnu.org/licenses/lgpl-3.0.html",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-2.0": "https://creativecommons.org/licenses/by/2.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-2.0": "https://creativecommons.org/licenses/by-sa/2.0/",
    "CC-BY-SA-2.5": "https://creativecommons.org/licenses/by-sa/2.5/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "BSD-2-clause": "https://opensource.org/licenses/BSD-2-Clause",
    "BSD-3-clause-Google": "https://opensource.org/licenses/BSD-3-Clause",
    "GFDL": "https://www.gnu.org/licenses/fdl.html",
    "LPPL-1.3c": "https://www.latex-project.org/lppl/lppl-1-3c/",
}


def norm_licence(s: str) -> str:
    s = s.strip()
    s = re.sub(r"(?i)^cc[- ]by[- ]sa[- ]?(\d\.\d)$", r"CC-BY-SA-\1", s)
    s = re.sub(r"(?i)^cc[- ]by[- ]?(\d\.\d)$", r"CC-BY-\1", s)
    s = re.sub(r"(?i)^cc0(-1\.0)?$", "CC0-1.0", s)
    if s.lower() in ("public domain", "public-domain", "pd"):
        s = "Public-Domain"
    s = re.sub(r"^(L?GPL-\d)\.0(\+?)$", r"\1\2", s)  # GPL-2.0+ -> GPL-2+
    if s.upper() in ("FDL", "GFDL", "GNU-FDL"):
        s = "GFDL"
    return s


# ---------------------------------------------------------------------------------- Qt .rcc
def rcc_extract(path: Path, outdir: Path, want=lambda rel: True) -> list[str]:
    """Unpack files from a Qt binary resource (.rcc); format versions 1-3, zlib or none."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt rcc file")
    ver, tree, data, names = struct.unpack(">IIII", b[4:20])
    esz = 22 if ver >= 2 else 14

    def name(off):
        o = names + off
        n = struct.unpack(">H", b[o : o + 2])[0]
        return b[o + 6 : o + 6 + 2 * n].decode("utf-16-be")

    out: list[str] = []

    def walk(i, prefix):
        o = tree + i * esz
        noff, fl = struct.unpack(">IH", b[o : o + 6])
        nm = name(noff) if i else ""
        if fl & 2:
            cnt, first = struct.unpack(">II", b[o + 6 : o + 14])
            for c in range(first, first + cnt):
                walk(c, prefix + nm + "/" if i else prefix)
            return
        rel = prefix + nm
        if not want(rel):
            return
        doff = struct.unpack(">I", b[o + 10 : o + 14])[0]
        p = data + doff
        sz = struct.unpack(">I", b[p : p + 4])[0]
        raw = b[p + 4 : p + 4 + sz]
        if fl & 1:
            raw = zlib.decompress(raw[4:])
        elif fl & 4:
            raise ValueError(f"{path}:{rel}: zstd-compressed entries are not supported")
        dst = outdir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(raw)
        out.append(rel)

    walk(0, "")
    return out


# ------------------------------------------------------------------------ Edje (.edj) files
EDJ_DIR = "usr/share/enlightenment/data/backgrounds"


def eet_entries(path: Path) -> list[tuple[str, bytes, int]]:
    """(name, stored bytes, flags) of every entry of an EET container (Edje's .edj files)."""
    b = path.read_bytes()
    magic, n_entries, _ = struct.unpack(">III", b[:12])
    if magic != 0x1EE70F42:
        raise ValueError(f"{path}: not an EET file")
    out = []
    for i in range(n_entries):
        off, size, _dsize, noff, nsize, flags = struct.unpack(">6i", b[12 + 24 * i : 36 + 24 * i])
        out.append((b[noff : noff + nsize].rstrip(b"\0").decode(), b[off : off + size], flags))
    return out


def edj_largest_jpeg(path: Path) -> tuple[str, bytes] | None:
    """The largest (in pixels) JPEG stored as is among an Edje file's images, with its entry name."""
    import io

    best = None
    for name, data, flags in eet_entries(path):
        if name.startswith("edje/images/") and flags == 0 and data[:3] == b"\xff\xd8\xff":
            w, h = Image.open(io.BytesIO(data)).size
            if best is None or w * h > best[0]:
                best = (w * h, name, data)
    return (best[1], best[2]) if best else None


def prepare(xdir: Path) -> None:
    """Unpack what is not a plain file: GCompris .rcc images + READMEs, scipy's face.dat, the
    photos inside Enlightenment's .edj wallpapers (byte for byte, to edj-jpeg/<name>.jpg)."""
    gc = xdir / "gcompris-qt-data"
    if gc.is_dir():
        dst = gc / "gcompris-rcc"
        for act in GCOMPRIS_RCC:
            rcc_extract(
                gc / f"usr/share/gcompris-qt/rcc/{act}.rcc",
                dst,
                lambda r: r.endswith((".webp", ".jpg", ".png", "/README")),
            )
    face = xdir / "scipy/scipy/misc/face.dat"
    if face.is_file():
        import numpy as np

        arr = np.frombuffer(bz2.decompress(face.read_bytes()), dtype=np.uint8).reshape(768, 1024, 3)
        Image.fromarray(arr).save(face.with_name("face.png"))
    edj_root = xdir / "enlightenment-data"
    if (edj_root / EDJ_DIR).is_dir():
        dst = edj_root / "edj-jpeg"
        dst.mkdir(exist_ok=True)
        for f in sorted((edj_root / EDJ_DIR).glob("*.edj")):
            hit = edj_largest_jpeg(f)
            if hit:
                (dst / f"{f.stem}.jpg").write_bytes(hit[1])
                (dst / f"{f.stem}.jpg.entry").write_text(hit[0])


# ------------------------------------------------------------------------------- licences
def parse_dep5(path: Path):
    """Return (files_stanzas, licence_texts) of a machine-readable Debian copyright file."""
    paras, cur, last = [], {}, None
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            if cur:
                paras.append(cur)
            cur, last = {}, None
            continue
        if line[0] in " \t" and last:
            cur[last] += "\n" + line.strip()
            continue
        m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if m:
            last = m.group(1).lower()
            cur[last] = m.group(2)
    if cur:
        paras.append(cur)
    stanzas = [p for p in paras if "files" in p]
    texts = {}
    for p in paras:
        if "files" not in p and "license" in p:
            head, _, body = p["license"].partition("\n")
            texts[head.strip()] = body
    return stanzas, texts


def dep5_match(pattern: str, relpath: str) -> bool:
    if pattern == "*":
        return True
    pparts, rparts = pattern.split("/"), relpath.split("/")
    base = pparts[-1]
    if not any(c in base for c in "*?["):
        return fnmatch.fnmatchcase(rparts[-1], base)
    # wildcard basename: the parent folder must match too (else 'debian/*' would match all)
    if len(pparts) < 2 or len(rparts) < 2:
        return False
    if fnmatch.fnmatchcase(rparts[-1], base) and pparts[-2] == rparts[-2]:
        return True
    # 'a/b/*' also covers files in subfolders of a/b (DEP-5 '*' spans '/'): compare the pattern
    # with each trailing part of the installed path that starts at a folder named like its first
    return any(
        rparts[k] == pparts[0] and fnmatch.fnmatchcase("/".join(rparts[k:]), pattern)
        for k in range(len(rparts) - 1)
    )


def licence_from_dep5(copyright_file: Path, relpath: str):
    stanzas, texts = parse_dep5(copyright_file)
    hit = None
    for st in stanzas:
        if any(dep5_match(p, relpath) for p in st["files"].split()):
            hit = st
    if hit is None:
        return None
    lic = hit.get("license", "").split("\n")[0].strip()
    text = hit.get("license", "").partition("\n")[2] or texts.get(lic, "")
    urls = re.findall(r"https?://[^\s>)\"']+", text + "\n" + hit.get("comment", ""))
    return {
        "licence": norm_licence(lic),
        "copyright": " / ".join(
            s.strip() for s in hit.get("copyright", "").split("\n") if s.strip()
        ),
        "licence_source": f"{copyright_file.name} (DEP-5 stanza 'Files: {hit['files'].split()[0]}"
        f"{' ...' if len(hit['files'].split()) > 1 else ''}')",
        "source_url": next((u for u in urls if "commons.wikimedia" in u or "flickr" in u), ""),
        "licence_url_in_copyright": next(
            (u for u in urls if "creativecommons.org/licenses" in u or "gnu.org/licenses" in u), ""
        ),
    }


def licence_from_spdx_sidecar(f: Path):
    side = f.with_name(f.name + ".license")
    if not side.is_file():
        return None
    t = side.read_text(errors="replace")
    lic = re.search(r"SPDX-License-Identifier:\s*(\S+)", t)
    cp = re.search(r"SPDX-FileCopyrightText:\s*(.+)", t)
    url = re.search(r"https?://\S+", t)
    return {
        "licence": norm_licence(lic.group(1)) if lic else "",
        "copyright": cp.group(1).strip() if cp else "",
        "licence_source": side.name + " (SPDX sidecar)",
        "source_url": url.group(0) if url else "",
        "licence_url_in_copyright": "",
    }


def licence_from_gcompris_readme(f: Path):
    d = f.parent
    for _ in range(3):
        readme = d / "README"
        if readme.is_file():
            rel = f.relative_to(d).as_posix()
            for block in re.split(r"\n\s*\n", readme.read_text(errors="replace")):
                fields, key = {}, None
                for line in block.splitlines():
                    m = re.match(r"^(Copyright|Source|License|Comments|Files):\s*(.*)$", line)
                    if m:
                        key = m.group(1)
                        fields[key] = m.group(2).strip()
                    elif key == "Files":
                        fields[key] += " " + line.strip()
                if rel in fields.get("Files", "").split():
                    return {
                        "licence": norm_licence(fields.get("License", "")),
                        "copyright": fields.get("Copyright", ""),
                        "licence_source": "rcc:" + readme.as_posix().split("gcompris-rcc/")[-1],
                        "source_url": fields.get("Source", ""),
                        "modifications_by_packager": fields.get("Comments", ""),
                        "licence_url_in_copyright": "",
                    }
        d = d.parent
    return None


def licence_from_palapeli_desktop(f: Path):
    """Palapeli puzzles: <name>.desktop beside the photo names its author, source and licence."""
    desk = f.with_suffix(".desktop")
    if not desk.is_file():
        return None
    fields = dict(
        re.findall(
            r"^X-KDE-PluginInfo-(Author|Website|License)=(.*)$",
            desk.read_text(errors="replace"),
            re.M,
        )
    )
    if not fields.get("License"):
        return None
    return {
        "licence": norm_licence(fields["License"]),
        "copyright": fields.get("Author", ""),
        "licence_source": f"{desk.name} (X-KDE-PluginInfo-License)",
        "source_url": fields.get("Website", ""),
        "licence_url_in_copyright": "",
    }


# Packages whose copyright file is free text (not DEP-5): the licence, the author, and a phrase
# of that file which states it. The phrase is checked at build time (whitespace-insensitive), so
# the licence still comes from the package: if the file changes, the build stops.
FREE_TEXT_COPYRIGHT = {
    "kphotoalbum": (
        "GPL-2+",
        "Jesper K. Pedersen and the KPhotoAlbum authors (demo album)",
        "either version 2 of the License, or (at your option) any later version",
    ),
    "krank": (
        "Public-Domain",
        "Slava Anishenko",
        "Author of new images: Slava Anishenko License: Public Domain",
    ),
    "scribus-template": (
        "Public-Domain",
        "Riku Leino",
        "Scribus templates by Riku Leino listed above and distributed in the "
        "scribus-template package have been placed into public domain by their "
        "author.",
    ),
}


def licence_from_free_text(pkg: str, copyright_file: Path):
    if pkg not in FREE_TEXT_COPYRIGHT or not copyright_file.is_file():
        return None
    lic, holder, phrase = FREE_TEXT_COPYRIGHT[pkg]
    require_phrase(copyright_file, phrase, str(copyright_file))
    return {
        "licence": lic,
        "copyright": holder,
        "licence_source": f"{copyright_file.name} (free text: '{phrase[:60]}...')",
        "source_url": "",
        "licence_url_in_copyright": "",
    }


# Photos whose author and licence are stated by a file of the package other than the Debian
# copyright file: a CTAN package's README or example source, a document's bibliography, the
# photo's own XMP data. (package, path) -> (licence, author, source URL, statements), each
# statement being (file relative to the package root, phrase that the file must contain). The
# phrases are checked at build time (whitespace-insensitive; .gz files are read decompressed):
# if a file changes, the build stops.
PHOTO_STATEMENTS = {
    ("texlive-latex-extra-doc", f"{TEXDOC}/latex/beamerdarkthemes/img_5630.jpg"): (
        "CC-BY-4.0",
        "Damien Thiriet",
        "https://ctan.org/pkg/beamerdarkthemes",
        [
            (
                f"{TEXDOC}/latex/beamerdarkthemes/README",
                "img_5630.jpg was taken by Damien Thiriet in the nice Dolina Pięciu Stawów",
            ),
            (
                f"{TEXDOC}/latex/beamerdarkthemes/README",
                "img_5630.jpg and dahut.jpg and example.tex are licenced CC-BY version 4.0 or "
                "later.",
            ),
        ],
    ),
    ("texlive-pictures-doc", f"{TEXDOC}/latex/xput/koepi.jpg"): (
        "CC-BY-4.0",
        "Friedemann Bartels",
        "https://ctan.org/pkg/xput",
        [
            (
                f"{TEXDOC}/latex/xput/koepi.jpg",
                "<cc:license rdf:resource='https://creativecommons.org/licenses/by/4.0/'/>",
            ),
            (f"{TEXDOC}/latex/xput/koepi.jpg", "<rdf:li>Friedemann Bartels</rdf:li>"),
            (f"{TEXDOC}/latex/xput/example-book.tex", "Photos by Friedemann Bartels"),
        ],
    ),
    ("texlive-publishers-doc", f"{TEXDOC}/latex/mlacls/mla-example-image.jpg"): (
        "LPPL-1.3c",
        "Seth Price",
        "https://ctan.org/pkg/mlacls",
        [
            (
                f"{TEXDOC}/latex/mlacls/mla-example.tex",
                "And yes, I shamelessly used my own image.",
            ),
            (
                f"{TEXDOC}/latex/mlacls/README.md",
                "`mlacls` copyright 2019 Seth Price (sprice623 AT aol DOT com). Released under "
                "the [LaTeX Project Public License v1.3c]",
            ),
        ],
    ),
    (
        "texlive-publishers-doc",
        f"{TEXDOC}/latex/hagenberg-thesis/examples/HgbArticle/images/"
        "cola-public-domain-photo-p.jpg",
    ): (
        "Public-Domain",
        "Marion Post Wolcott (1940, Farm Security Administration / Office of War Information)",
        "https://www.loc.gov/pictures/item/2017877479/",
        [
            (
                f"{TEXDOC}/latex/hagenberg-thesis/examples/HgbArticle/main.tex.gz",
                "\\includegraphics[width=1.0\\columnwidth]{cola-public-domain-photo-p}",
            ),
            (
                f"{TEXDOC}/latex/hagenberg-thesis/examples/HgbArticle/references.bib.gz",
                "author={Wolcott, Marion Post},",
            ),
            (
                f"{TEXDOC}/latex/hagenberg-thesis/examples/HgbArticle/references.bib.gz",
                "Farm Security Administration/Office of War Information Color Photographs",
            ),
        ],
    ),
    ("texlive-lang-english", f"{TEXDOC}/latex/tlc3-examples/example-sources/longlife.jpg"): (
        "CC-BY-SA-4.0",
        "Frank Mittelbach",
        "https://ctan.org/pkg/tlc3-examples",
        [
            (
                f"{TEXDOC}/latex/tlc3-examples/README.md",
                "The files longlife.jpg and longlife-grayscale.jpg are by Frank Mittelbach and "
                "are licensed under CC BY-SA 4.0.",
            )
        ],
    ),
}


def _read_text(path: Path) -> str:
    """A file's text (decompressed if .gz; undecodable bytes, e.g. a JPEG's, replaced)."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def require_phrase(path: Path, phrase: str, shown: str) -> None:
    """Stop the build unless the file still states ``phrase`` (whitespace aside): a licence
    taken from a sentence is only as good as the sentence."""
    if " ".join(phrase.split()) not in " ".join(_read_text(path).split()):
        raise SystemExit(f"{shown}: no longer says {phrase!r} - check the licence")


def ctan_licence(pkgroot: Path, pkg: str, rel: str) -> str:
    """The CTAN package's licence as Debian's TeX Live Licenses.gz lists it ('' if absent)."""
    m = re.match(rf"{TEXDOC}/[^/]+/([^/]+)/", rel)
    lic_file = pkgroot / f"usr/share/doc/{pkg}/Licenses.gz"
    if not m or not lic_file.is_file():
        return ""
    hit = re.search(rf"^{re.escape(m.group(1))}: *(.*)$", _read_text(lic_file), re.M)
    return hit.group(1).strip() if hit else ""


def licence_from_statements(pkg: str, pkgroot: Path, rel: str):
    if (pkg, rel) not in PHOTO_STATEMENTS:
        return None
    lic, author, url, statements = PHOTO_STATEMENTS[(pkg, rel)]
    for name, phrase in statements:
        require_phrase(pkgroot / name, phrase, f"{pkg}:{name}")
    files = sorted({name.rsplit("/", 1)[-1] for name, _ in statements})
    info = {
        "licence": lic,
        "copyright": author,
        "licence_source": f"{', '.join(files)} (" + " / ".join(p for _, p in statements) + ")",
        "source_url": url,
        "licence_url_in_copyright": "",
    }
    ctan = ctan_licence(pkgroot, pkg, rel)
    if ctan:
        info["ctan_package_licence"] = f"{ctan} (usr/share/doc/{pkg}/Licenses.gz)"
    return info


def resolve_licence(pkg: str, pkgroot: Path, f: Path) -> dict:
    rel = f.relative_to(pkgroot).as_posix()
    if (pkg, rel) in PHOTO_STATEMENTS:
        info = licence_from_statements(pkg, pkgroot, rel)
    elif rel in PYPI_LICENCES:
        lic, cp, src, url = PYPI_LICENCES[rel]
        info = {
            "licence": lic,
            "copyright": cp,
            "licence_source": src,
            "source_url": url,
            "licence_url_in_copyright": "",
        }
    else:
        info = licence_from_spdx_sidecar(f)
        if info is None and pkg == "gcompris-qt-data":
            info = licence_from_gcompris_readme(f)
        if info is None and pkg == "palapeli-data":
            info = licence_from_palapeli_desktop(f)
        cfile = pkgroot / f"usr/share/doc/{pkg}/copyright"
        if info is None:
            info = licence_from_free_text(pkg, cfile)
        if info is None and cfile.is_file():
            # rcc-internal paths look like gcompris/src/activities/...; DEP-5 uses src/...
            # a photo taken out of an .edj file is covered by the .edj's stanza
            lic_rel = rel.split("gcompris-rcc/gcompris/")[-1]
            if lic_rel.startswith("edj-jpeg/"):
                lic_rel = f"data/backgrounds/{f.stem}.edj"
            info = licence_from_dep5(cfile, lic_rel)
    if not info or not info.get("licence"):
        raise SystemExit(f"no licence found for {pkg}:{rel} - refusing to add it to the pool")
    info["licence_url"] = LICENCE_URLS.get(info["licence"], "") or info["licence_url_in_copyright"]
    return info


# ------------------------------------------------------------------------- native copies
# Photos published by their authors with a licence stated beside them, given to this script as
# folders (``--extra DIR``): folder name -> where it comes from and under which licence.
EXTRA_SETS = {
    "budgie-cc0": {
        "package": "budgie-backgrounds",
        "package_version": "82067426f1dde366e9c9038fdbe457c2527525dd",
        "registry": "github:BuddiesOfBudgie/budgie-backgrounds",
        "licence": "CC0-1.0",
        "licence_url": LICENCE_URLS.get(
            "CC0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/"
        ),
        "copyright": "the photographers of budgie-backgrounds (CC0 dedication)",
        "licence_source": "LICENSE-CC0.txt beside the photos",
        "source_url": "https://github.com/BuddiesOfBudgie/budgie-backgrounds",
    },
    "kodak": {
        "package": "Kodak-Lossless-True-Color-Image-Suite",
        "package_version": "dd2e1105fe8d9afe1120cd7e4c0e5e41f509a81b",
        "registry": "github:MohamedBakrAli/Kodak-Lossless-True-Color-Image-Suite",
        "licence": "unrestricted use (Eastman Kodak)",
        "licence_url": "https://r0k.us/graphics/kodak/",
        "copyright": "Eastman Kodak Company, released for unrestricted use",
        "licence_source": "Kodak's release of the PhotoCD test suite (no licence file)",
        "source_url": "https://github.com/MohamedBakrAli/Kodak-Lossless-True-Color-Image-Suite",
    },
}
# Encodings kept byte for byte: their traces (JPEG grid, WebP blocks) are the photo's history.
KEEP_BYTES = {"JPEG": ".jpg", "WEBP": ".webp"}


def write_native(img: Image.Image, source: Path, folder: Path) -> tuple[str, str]:
    """The photo at its published resolution: original bytes for JPEG / WebP and plain RGB
    PNG, otherwise a lossless PNG of its RGB pixels. Returns (file name, how it was kept)."""
    fmt = img.format or ""
    for old in folder.glob("photo.*"):
        old.unlink()
    if fmt in KEEP_BYTES or (fmt == "PNG" and img.mode in ("RGB", "L")):
        name = "photo" + KEEP_BYTES.get(fmt, ".png")
        (folder / name).write_bytes(source.read_bytes())
        return name, "original bytes"
    img.convert("RGB").save(folder / "photo.png", optimize=False, compress_level=6)
    return "photo.png", f"lossless PNG of the {img.mode} {fmt or 'raw'} pixels"


def photo_record(pid: str, img: Image.Image, source: Path, folder: Path, mode: str) -> dict:
    name, kept = write_native(img, source, folder)
    w, h = img.size
    return {
        "id": pid,
        "file": f"{pid}/{name}",
        "stored_as": kept,
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "width": w,
        "height": h,
        "source_mode": mode,
    }


def add_extra_sets(
    dirs: list[Path], out: Path, min_side: int, seen_ids: set, photos: list, skipped: list
) -> None:
    for root in dirs:
        meta = EXTRA_SETS.get(root.name)
        if meta is None:
            print(
                f"warning: {root}: unknown photo set (known: {', '.join(EXTRA_SETS)}); skipped",
                file=sys.stderr,
            )
            continue
        for f in sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            try:
                img = Image.open(f)
                img.load()
            except Exception as exc:  # noqa: BLE001 - one bad file is one line, the rest goes on
                print(f"warning: {f}: not a readable image ({exc}); skipped", file=sys.stderr)
                skipped.append({"package": meta["package"], "path": f.name, "reason": str(exc)})
                continue
            if min(img.size) < min_side:
                skipped.append(
                    {
                        "package": meta["package"],
                        "path": f.name,
                        "reason": f"too small ({img.size[0]}x{img.size[1]})",
                    }
                )
                continue
            pid = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{root.name}__{f.stem}")
            seen_ids.add(pid)
            d = out / pid
            d.mkdir(parents=True, exist_ok=True)
            rec = photo_record(pid, img, f, d, img.mode)
            photos.append({**rec, **{k: v for k, v in meta.items()}, "path_in_package": f.name})
            print(f"{pid}: {img.size[0]}x{img.size[1]} {meta['licence']}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("cache", type=Path, help="cache folder filled by build_photo_pool.sh")
    ap.add_argument("out", type=Path, help="output folder (OUT_DIR)")
    ap.add_argument(
        "--min-side",
        type=int,
        default=384,
        help="photos whose short side is below this are skipped",
    )
    ap.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        help=f"a folder of published photos to add (known: {', '.join(EXTRA_SETS)})",
    )
    a = ap.parse_args()

    xdir = a.cache / "x"
    versions = {}
    for line in (a.cache / "versions.tsv").read_text().splitlines():
        if line.strip():
            p, v, reg = line.split("\t")
            versions[p] = (v, reg)
    prepare(xdir)

    a.out.mkdir(parents=True, exist_ok=True)
    old_manifest = a.out / "manifest.json"
    if old_manifest.is_file():  # remove folders of an earlier run (only those it listed)
        import shutil

        for p in json.loads(old_manifest.read_text()).get("photos", []):
            shutil.rmtree(a.out / p["id"], ignore_errors=True)
    photos, skipped, seen_ids, seen_sha = [], [], set(), {}
    for pkg, entries in SELECTION.items():
        if pkg not in versions:
            print(f"warning: {pkg} was not fetched; skipping", file=sys.stderr)
            continue
        root = xdir / pkg
        for pattern, excl in entries:
            # symlinks (e.g. KDE's per-resolution aliases) point at files listed anyway
            files = sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())
            if "/contents/images/" in pattern and files:  # KDE wallpaper: largest variant only
                files = [max(files, key=lambda p: Image.open(p).size[0] * Image.open(p).size[1])]
            if not files:
                print(f"warning: {pkg}: nothing matches {pattern}", file=sys.stderr)
            for f in files:
                rel = f.relative_to(root).as_posix()
                if f.name in excl:
                    skipped.append({"package": pkg, "path": rel, "reason": excl[f.name]})
                    continue
                img = Image.open(f)
                img.load()
                mode = img.mode
                if mode in ("RGBA", "LA", "P"):
                    img = img.convert("RGBA")
                    if img.getextrema()[3][0] < 255:
                        skipped.append({"package": pkg, "path": rel, "reason": "has transparency"})
                        continue
                w, h = img.size
                if min(w, h) < a.min_side:
                    skipped.append(
                        {
                            "package": pkg,
                            "path": rel,
                            "reason": f"too small ({w}x{h}, short side < {a.min_side})",
                        }
                    )
                    continue
                stem = f.stem
                if "/contents/images/" in rel:  # KDE wallpaper package: name of the wallpaper
                    stem = rel.split("/contents/images/")[0].rsplit("/", 1)[-1]
                pid = f"{pkg}__{stem}"
                if pkg == "gcompris-qt-data":
                    act = rel.split("/activities/")[1].split("/")[0]
                    pid = f"{pkg}__{act}__{stem}"
                elif pkg == "scribus-template":  # one folder per template
                    pid = f"{pkg}__{f.parent.name}__{stem}"
                elif rel.startswith(TEXDOC + "/"):  # TeX Live docs: name the CTAN package
                    pid = f"{pkg}__{rel.split('/')[5]}__{stem}"
                pid = re.sub(r"[^A-Za-z0-9_.-]+", "_", pid)
                base, k = pid, 2
                while pid in seen_ids:
                    pid, k = f"{base}__{k}", k + 1
                seen_ids.add(pid)
                sha = hashlib.sha256(f.read_bytes()).hexdigest()
                if sha in seen_sha:
                    skipped.append(
                        {"package": pkg, "path": rel, "reason": f"same file as {seen_sha[sha]}"}
                    )
                    seen_ids.discard(pid)
                    continue
                seen_sha[sha] = pid
                info = resolve_licence(pkg, root, f)
                d = a.out / pid
                d.mkdir(parents=True, exist_ok=True)
                ver, reg = versions[pkg]
                rec = photo_record(pid, img, f, d, mode)
                in_pkg = rel
                if pkg == "gcompris-qt-data":
                    in_pkg = (
                        f"usr/share/gcompris-qt/rcc/{rel.split('/activities/')[1].split('/')[0]}"
                        f".rcc:{rel.split('gcompris-rcc/')[1]}"
                    )
                elif rel.startswith("edj-jpeg/"):
                    entry = f.with_name(f.name + ".entry").read_text().strip()
                    in_pkg = f"{EDJ_DIR}/{f.stem}.edj:{entry}"
                photos.append(
                    {
                        **rec,
                        "package": pkg,
                        "package_version": ver,
                        "registry": reg,
                        "path_in_package": in_pkg,
                        **info,
                    }
                )
                print(f"{pid}: {w}x{h} {info['licence']} -> {rec['file']}", flush=True)

    add_extra_sets(a.extra, a.out, a.min_side, seen_ids, photos, skipped)
    manifest = {
        "description": "Authentic-photo pool for NCL Forensics at native resolution: one folder "
        "per source photo, each holding the photo as published.",
        "params": {"min_side": a.min_side, "extra": [p.name for p in a.extra]},
        "n_photos": len(photos),
        "photos": photos,
        "skipped_in_selected_sets": skipped,
        "rejected_sets": REJECTED_SETS,
    }
    (a.out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    print(f"done: {manifest['n_photos']} source photos -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
