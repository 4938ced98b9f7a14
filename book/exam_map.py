"""Render book/exam_map.yml: the exam-map page's tables and the intro's summary table.

The book's pages execute from book/, so they import this file as ``exam_map``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
MAP = yaml.safe_load((HERE / "exam_map.yml").read_text(encoding="utf-8"))
GUIDES = {g["id"]: g for g in MAP["guides"]}


def _notebook_link(stem: str) -> str:
    return f"[{stem.split('-', 1)[0]}](../notebooks/{stem}.ipynb)"


def _exercises(stems: list[str], exercise_ids: list[str]) -> list[str]:
    sections = {stem.split("-", 1)[0] for stem in stems}
    return [e for e in exercise_ids if e.split("-", 1)[0] in sections]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def guide_table(guide: str, exercise_ids: list[str]) -> str:
    """One markdown table: every sub-objective of ``guide`` and what covers it."""
    lines = [f"**{GUIDES[guide]['edition']}.**", "",
             "| objective | topic | notebooks | claims | exercises | gaps and notes |",
             "|---|---|---|---|---|---|"]
    for o in MAP["objectives"]:
        if o["guide"] != guide:
            continue
        notes = " ".join(x for x in (o.get("note", ""), f"**Gap:** {o['gap']}" if o.get("gap") else "") if x)
        row = [f"{o['code']} {o['title']}", o["topic"],
               ", ".join(_notebook_link(s) for s in o["notebooks"]) or "—",
               ", ".join(o["claims"]) or "—",
               ", ".join(f"`{e}`" for e in _exercises(o["notebooks"], exercise_ids)) or "—",
               notes or "—"]
        lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
    return "\n".join(lines)


def summary_table(notebook_stems: list[str]) -> str:
    """Per notebook: the objectives of each guide that it covers (the intro's table)."""
    header = " | ".join(GUIDES[g]["name"] for g in GUIDES)
    lines = [f"| notebook | {header} |", "|---|" + "---|" * len(GUIDES)]
    for stem in notebook_stems:
        row = [_notebook_link(stem) + " " + stem.split("-", 1)[1].replace("-", " ")]
        for g in GUIDES:
            codes = sorted({o["code"] for o in MAP["objectives"] if o["guide"] == g and stem in o["notebooks"]})
            row.append(", ".join(codes) or "—")
        lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
    return "\n".join(lines)
