"""report.pdf: the report for printing, made with fpdf2 (pure Python, no Qt).

Text is drawn as text, never interpreted (no markdown, no HTML), so a hostile file name
prints as its characters. A Unicode TrueType font (DejaVu Sans where installed, plus a CJK
fallback font when a name needs one) shows non-Latin names; a character no font has is printed
as ``[U+XXXX]`` so nothing is lost silently. Without any TrueType font the built-in Helvetica
is used and characters outside Latin-1 become "?" rather than stopping the report.

The per-image pages use plain cells and paragraphs rather than fpdf2 tables: tables cost
about 1 ms per cell, which for a thousand images would dominate the whole batch.
"""

from __future__ import annotations

import io
import os
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from ncl_core.report import present, shared
from ncl_core.report.forensic_views import view_lines

REPORT_PDF = "report.pdf"

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu",  # Fedora, Arch
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    os.path.expanduser("~/Library/Fonts"),
    os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts"),
)
_FONT_FILES = (("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),)
# Fonts covering Chinese, Japanese and Korean, tried as fallbacks for the main font.
_FALLBACK_FILES = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts", "msyh.ttc"),
)
_RED = (176, 0, 32)
_BLACK = (0, 0, 0)
_GREY = (80, 80, 80)
_LABEL_W = 32.0  # mm, label column of the header table and of the per-image details
_COLORBAR_W = 5.0  # mm
# Per-image details: long ones get a labelled line (or several) each, above and below the
# short ones, which share lines. The labels are those of ``present.row_items``.
_ITEM_TOP = ("Path", "Finding", "Warnings", "Metadata")
_ITEM_BOTTOM = ("SHA-256 at start", "SHA-256 at end", "SHA-256 re-check", "Output files")
_ITEM_LINES = (
    ("Status", "Score", "Area at threshold", "Threshold"),
    ("Size", "Format", "Dimensions"),
    ("EXIF make", "EXIF model", "EXIF software"),
    ("EXIF date", "EXIF GPS present"),
    ("Analyzed (UTC)", "Model time", "Device"),
)
_WIDE_HEADER = frozenset({"Application", "Status", "Model", "Inputs", "Files", "Platform"})


def find_unicode_font() -> tuple[Path, Path] | None:
    """(regular, bold) paths of a Unicode TrueType font on this machine, or None."""
    dirs = list(_FONT_DIRS)
    if getattr(sys, "frozen", False):  # a PyInstaller bundle may ship its own copy
        dirs.insert(0, os.path.join(getattr(sys, "_MEIPASS", ""), "fonts"))
    for folder in dirs:
        for regular, bold in _FONT_FILES:
            reg, bld = Path(folder) / regular, Path(folder) / bold
            if reg.is_file():
                return reg, bld if bld.is_file() else reg
    return None


def find_fallback_font() -> Path | None:
    """A font with CJK glyphs, to fall back on for names the main font cannot show."""
    for name in _FALLBACK_FILES:
        if os.path.isfile(name):
            return Path(name)
    return None


def _code_points(path: Path) -> set[int]:
    with TTFont(str(path), fontNumber=0, lazy=True) as font:
        return set(font.getBestCmap())


class _ReportPDF(FPDF):
    def __init__(self, footer_text: str, font: tuple[Path, Path] | None, texts: Iterable[str]):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        self.covered: set[int] | None = None  # None: built-in font, Latin-1 only
        self.body_covered: set[int] | None = None  # the body font's own, without the fallback
        self.body_font = "Helvetica"
        if font is not None:
            self.add_font("Body", "", str(font[0]))
            self.add_font("Body", "B", str(font[1]))
            self.body_font = "Body"
            self.covered = _code_points(font[0])
            self.body_covered = set(self.covered)
            self._add_fallback_if_needed(texts)
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def _add_fallback_if_needed(self, texts: Iterable[str]) -> None:
        # Loading a CJK font costs about a second, so only when some text needs it.
        assert self.covered is not None
        missing = {ord(ch) for text in texts for ch in text} - self.covered
        fallback = find_fallback_font() if missing else None
        if fallback is not None:
            self.add_font("Fallback", "", str(fallback))
            self.set_fallback_fonts(["Fallback"], exact_match=False)
            self.covered |= _code_points(fallback)

    def clean(self, value: str, one_line: bool = False) -> str:
        """Text safe to draw: control characters as U+FFFD, glyphs no font has as [U+XXXX].

        ``one_line`` shows line breaks as "↵", for cells that cannot wrap.
        """
        if one_line:
            value = value.replace("\r\n", "\n").replace("\n", "↵")
        value = "".join(
            ch if ch == "\n" or unicodedata.category(ch)[0] != "C" else "\ufffd" for ch in value
        )
        if self.covered is None:
            value = value.replace("—", "-").replace("×", "x").replace("≥", ">=")
            return value.encode("latin-1", "replace").decode("latin-1")
        return "".join(
            ch if ch == "\n" or ord(ch) in self.covered else f"[U+{ord(ch):04X}]" for ch in value
        )

    def use(self, size: float, bold: bool = False, color: tuple[int, int, int] = _BLACK) -> None:
        self.set_font(self.body_font, "B" if bold else "", size)
        self.set_text_color(*color)

    def para(self, value: str, size: float = 9, bold: bool = False, color=_BLACK) -> None:
        self.use(size, bold, color)
        self._lines(self.clean(value), size * 0.5)

    def labelled(self, label: str, value: str, size: float = 7.5, color=_BLACK) -> None:
        """A bold label in the left column and its value wrapping in the rest of the line."""
        self.use(size, bold=True, color=color)
        self.text_cell(_LABEL_W, size * 0.48, self.clean(label))
        self.use(size, color=color)
        self.line(value, size)

    def line(self, value: str, size: float = 7.5) -> None:
        """``value`` from the current x to the right margin, wrapped only when it must be."""
        self._lines(self.clean(value), size * 0.48)

    def _lines(self, value: str, height: float) -> None:
        """Cleaned ``value`` from the current x to the right margin, one ``cell`` per line of
        ``wrapped``; the next line starts at the left margin.

        fpdf2's own line breaking (``multi_cell``) measured the text a character at a time, about
        4 ms a value and 27 ms of every image's page in a report; it is kept for text in the
        fallback font, whose widths the body font cannot measure.
        """
        x = self.x
        width = self.epw - (x - self.l_margin)
        if not self._body_font_draws(value.replace("\n", "")):
            self.multi_cell(0, height, value, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            return
        for text in self.wrapped(value, width):
            self._text_line(text, height, x)

    def _text_line(self, text: str, height: float, x: float) -> None:
        """``cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)`` from ``x`` (after a
        page break too), as ``text_cell`` draws it."""
        self.set_x(x)
        self.text_cell(0, height, text)
        self.set_xy(self.l_margin, self.y + height)

    def text_cell(self, width: float, height: float, text: str) -> None:
        """What ``cell(width, height, text)`` draws (no border, no fill, left-aligned, the
        current font; the next cell to the right), in the same place, without fpdf2's
        styled-fragment machinery: a quarter of the time, and a report's pages are mostly
        such cells."""
        if not self._body_font_draws(text):
            self.cell(width, height, text)  # its glyphs from the fallback font
            return
        x = self.x
        if self.will_page_break(height):
            self.add_page(same=True)
            self.x = x  # as cell keeps it
        self.text(x + self.c_margin, self.y + 0.5 * height + 0.3 * self.font_size, text)
        self.x = x + width

    def _body_font_draws(self, text: str) -> bool:
        """Whether the body font has a glyph for every character of ``text`` (else fpdf2's
        cells take them from the fallback font)."""
        return self.body_covered is None or all(ord(ch) in self.body_covered for ch in text)

    def wrapped(self, value: str, width: float) -> list[str]:
        """``value`` broken into lines no wider than ``width`` mm in the current font: at the
        last space that fits (the space dropped), else after the last character that fits (a
        hash, a long path); its own line breaks kept."""
        lines: list[str] = []
        for rest in value.split("\n"):
            while self.get_string_width(rest) > width:
                fits = max(self._longest_prefix(rest, width), 1)
                space = rest.rfind(" ", 0, fits + 1)
                if space > 0:
                    lines.append(rest[:space])
                    rest = rest[space + 1 :]
                else:
                    lines.append(rest[:fits])
                    rest = rest[fits:]
            lines.append(rest)
        return lines

    def _longest_prefix(self, value: str, width: float, suffix: str = "") -> int:
        """The length of the longest prefix of ``value`` that fits ``width`` with ``suffix``
        (0 when none does); by halving, since a width costs a pass over the text."""
        fits, too_long = 0, len(value)
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if self.get_string_width(value[:middle] + suffix) <= width:
                fits = middle
            else:
                too_long = middle
        return fits

    def fit(self, value: str, width: float) -> str:
        """``value`` cut with an ellipsis to fit ``width`` mm in the current font."""
        value = self.clean(value, one_line=True)
        if self.get_string_width(value) <= width:
            return value
        # Cutting a character at a time cost 20 ms a row in the summary. The built-in font
        # draws Latin-1 only: no "…" there.
        ellipsis = "…" if self.covered is not None else "..."
        return value[: self._longest_prefix(value, width, ellipsis)] + ellipsis

    def header_table(self, items: list[tuple[str, str]], size: float = 8) -> None:
        """The report's header block: two label/value pairs per line, long ones alone."""
        self.use(size)
        value_w = (self.epw - 2 * _LABEL_W) / 2
        with self.table(
            col_widths=(_LABEL_W, value_w, _LABEL_W, value_w),
            first_row_as_headings=False,
            line_height=size * 0.45,
            padding=0.8,
            text_align="LEFT",
        ) as table:
            short: list[tuple[str, str]] = []

            def flush() -> None:
                if short:
                    row = table.row()
                    for i, (label, value) in enumerate(short):
                        row.cell(self.clean(label))
                        row.cell(self.clean(value), colspan=3 if len(short) == 1 and i == 0 else 1)
                    short.clear()

            for label, value in items:
                if label in _WIDE_HEADER or len(value) > 40:
                    flush()
                    row = table.row()
                    row.cell(self.clean(label))
                    row.cell(self.clean(value), colspan=3)
                else:
                    short.append((label, value))
                    if len(short) == 2:
                        flush()
            flush()

    def footer(self) -> None:
        self.set_y(-10)
        self.use(7, color=(90, 90, 90))
        text = self.clean(f"{self.footer_text} — page {self.page_no()}/{{nb}}", one_line=True)
        self.cell(0, 4, text, align="C")


def _all_text(header: dict[str, Any], rows: list[dict[str, Any]]) -> Iterable[str]:
    yield from (value for _, value in present.header_items(header))
    for problem in header.get("scan_problems") or []:
        yield str(problem["path"])
    for row in rows:
        yield from (str(row.get(key) or "") for key in ("path", "error", "exif_make", "exif_model"))
        yield from (str(row.get(key) or "") for key in ("exif_software", "exif_datetime"))


def pdf_bytes(
    header: dict[str, Any],
    rows: list[dict[str, Any]],
    out_dir: Path,
    colorbar_path: str,
) -> bytes:
    """The whole report.pdf; pictures are read from ``out_dir`` by their relative paths."""
    case = header.get("case_id")
    title = present.TITLE + (f" — case {case}" if case else "")
    pdf = _ReportPDF(title, find_unicode_font(), _all_text(header, rows))
    pdf.set_title(pdf.clean(title, one_line=True))
    pdf.set_creator(f"NCL Forensics {header.get('app_version', '')}")
    if header.get("analyst"):
        pdf.set_author(pdf.clean(str(header["analyst"]), one_line=True))
    pdf.add_page()

    pdf.para(title, size=15, bold=True)
    pdf.ln(2)
    for line in present.banners(header):
        pdf.para(line, size=10, bold=True, color=_RED)
    pdf.para(present.DISCLAIMER, size=8, color=_GREY)
    pdf.ln(2)
    pdf.header_table(present.header_items(header))

    problems = header.get("scan_problems") or []
    if problems:
        pdf.ln(2)
        pdf.para("Paths not scanned", size=11, bold=True)
        for problem in problems:
            pdf.para(f"{problem['path']}: {problem['message']}", size=8)

    ordered = present.rows_by_score(rows)
    _summary(pdf, ordered)
    shared.pdf_section(pdf, header, out_dir)
    colorbar = (out_dir / colorbar_path).read_bytes()
    for rank, row in enumerate(ordered, start=1):
        _item(pdf, rank, row, out_dir, colorbar)
    return bytes(pdf.output())


def _summary(pdf: _ReportPDF, rows: list[dict[str, Any]]) -> None:
    """One line per image; long names are shortened here (the item section has them whole)."""
    pdf.ln(3)
    pdf.para("Summary (by score)", size=11, bold=True)
    widths = (10.0, pdf.epw - 10 - 16 - 18 - 50 - 16, 16.0, 18.0, 50.0, 16.0)
    line_h = 4.2
    pdf.use(7.5, bold=True)
    for width, label in zip(widths, ("#", "File", "Score", "Area", "Finding", "Status")):
        pdf.cell(width, line_h, label, border="B")
    pdf.ln(line_h)
    for rank, row in enumerate(rows, start=1):
        alert = present.row_alert(row) is not None
        failed = row.get("status") == "error"
        pdf.use(7.5, color=_RED if (alert or failed) else _BLACK)
        status = present.text(row.get("status")) + (" / HASH" if alert else "")
        cells = (
            str(rank),
            row["name"],
            present.score_text(row),
            present.area_text(row),
            present.text(row.get("finding")),
            status,
        )
        for width, value in zip(widths, cells):
            pdf.text_cell(width, line_h, pdf.fit(value, width - 1))
        pdf.ln(line_h)


def _item(pdf: _ReportPDF, rank: int, row: dict[str, Any], out_dir: Path, colorbar: bytes) -> None:
    # Start each item on a fresh page when its picture and details would not fit on this one.
    panel_h = 0.0
    if row.get("panel_path"):
        panel_h = _panel_height(pdf, out_dir / row["panel_path"])
    if pdf.get_y() + panel_h + 60 > pdf.page_break_trigger:
        pdf.add_page()
    else:
        pdf.ln(4)
    pdf.para(f"{rank}. {row['name']}", size=11, bold=True)
    alert = present.row_alert(row)
    if alert:
        pdf.para(alert, size=10, bold=True, color=_RED)
    if row.get("status") == "skipped":
        pdf.para(present.skipped_text(row), size=9)
    elif row.get("status") != "ok":
        pdf.para(f"Error: {present.text(row.get('error'))}", size=9, bold=True, color=_RED)
    elif row.get("panel_path"):
        _panel(pdf, row, out_dir, panel_h, colorbar)
    elif note := present.pictures_note(row):
        pdf.para(note, size=8, color=_GREY)
    if row.get("status") == "ok" and row.get("views"):
        _views(pdf, row, out_dir)
    items = dict(present.row_items(row))
    for label in _ITEM_TOP:
        pdf.labelled(label, items[label])
    pdf.use(7.5)
    for labels in _ITEM_LINES:
        pdf.line("    ".join(f"{label}: {items[label]}" for label in labels))
    for label in _ITEM_BOTTOM:
        color = _RED if label == "SHA-256 re-check" and alert else _BLACK
        pdf.labelled(label, items[label], color=color)


def _views(pdf: _ReportPDF, row: dict[str, Any], out_dir: Path) -> None:
    """The forensic views chosen for the report: their maps in one strip, one line each."""
    strip = row.get("views_panel_path")
    if strip:
        width = _panel_width(pdf)
        height = _panel_height(pdf, out_dir / strip)
        if pdf.get_y() + height + 20 > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.image(
            io.BytesIO((out_dir / strip).read_bytes()), x=pdf.l_margin, y=y, w=width, h=height
        )
        pdf.set_y(y + height + 1)
    for title, summary in view_lines(row):
        pdf.labelled(title, summary)


def _panel_width(pdf: _ReportPDF) -> float:
    return pdf.epw - _COLORBAR_W - 8


def _panel_height(pdf: _ReportPDF, path: Path) -> float:
    with Image.open(path) as im:
        width, height = im.size
    return _panel_width(pdf) * height / width


def _panel(
    pdf: _ReportPDF, row: dict[str, Any], out_dir: Path, height: float, colorbar: bytes
) -> None:
    x, y = pdf.l_margin, pdf.get_y()
    width = _panel_width(pdf)
    pdf.image(io.BytesIO((out_dir / row["panel_path"]).read_bytes()), x=x, y=y, w=width, h=height)
    bar_x = x + width + 1.5
    pdf.image(io.BytesIO(colorbar), x=bar_x, y=y, w=_COLORBAR_W, h=height)
    pdf.use(6)
    pdf.text(bar_x + _COLORBAR_W + 0.5, y + 2, "1")
    pdf.text(bar_x + _COLORBAR_W + 0.5, y + height, "0")
    pdf.set_y(y + height + 1)
    pdf.use(7, color=_GREY)
    third = width / 3
    captions = ("original (display copy)", "probability heatmap")
    captions += (f"overlay at threshold {present.text(row.get('threshold'))}",)
    for caption in captions:
        pdf.cell(third, 3.5, pdf.clean(caption, one_line=True), align="C")
    pdf.ln(5)
