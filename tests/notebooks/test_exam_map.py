"""The exam-guide map (book/exam_map.yml) names only what exists, and covers every notebook and claim."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MAP = yaml.safe_load((ROOT / "book" / "exam_map.yml").read_text(encoding="utf-8"))
CLAIM_IDS = {c["id"] for c in yaml.safe_load((ROOT / "book" / "claims.yml").read_text(encoding="utf-8"))}
NOTEBOOKS = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
GUIDES = [g["id"] for g in MAP["guides"]]


def test_every_objective_names_existing_notebooks_and_claims():
    for o in MAP["objectives"]:
        assert o["guide"] in GUIDES, o
        assert o["topic"].strip() and o["title"].strip() and str(o["code"]).strip(), o
        for stem in o["notebooks"]:
            assert stem in NOTEBOOKS, f"{o['topic']}: no notebook {stem}"
        for claim_id in o["claims"]:
            assert claim_id in CLAIM_IDS, f"{o['topic']}: no claim {claim_id} in book/claims.yml"
        assert o["notebooks"] or o.get("gap"), f"{o['topic']}: covered by nothing, so it must name its gap"


def test_every_notebook_and_claim_appears_in_each_guide():
    for guide in GUIDES:
        objectives = [o for o in MAP["objectives"] if o["guide"] == guide]
        covered = {s for o in objectives for s in o["notebooks"]}
        assert NOTEBOOKS <= covered, f"the {guide} guide's map misses {sorted(NOTEBOOKS - covered)}"
    outline = {c for o in MAP["objectives"] if o["guide"] == "2020" for c in o["claims"]}
    assert CLAIM_IDS - outline <= {c for c in CLAIM_IDS if c[0] not in "BTESG"}, (
        f"claims of the outline missing from the 2020–21 map: {sorted(CLAIM_IDS - outline)}"
    )


def test_a_claim_is_mapped_only_with_a_notebook_that_proves_it():
    claims = {c["id"]: c for c in yaml.safe_load((ROOT / "book" / "claims.yml").read_text(encoding="utf-8"))}
    for o in MAP["objectives"]:
        for claim_id in o["claims"]:
            assert claims[claim_id]["notebook"] in o["notebooks"], (
                f"{o['topic']}: {claim_id} is proved in {claims[claim_id]['notebook']}, which the row does not list"
            )
