"""The demo's SDP-beside-analytic files: sound ordering, the report can read them, ``boundlab lipsdp --json`` too.

Catches: an SDP bound below the empirical lower bound (unsound), the attention SDP above the analytic bound it is
meant to improve on, and a result file the report cannot read (a format mismatch between writer and reader).
"""

import json

from boundlab.cli import main
from boundlab.empirical.sdp_comparison import write_sdp_comparison
from boundlab.reports.load import comparison_rows


def _by_name(doc):
    return {r["name"]: r for r in comparison_rows(doc)}


def test_sdp_comparison_files_are_sound_and_readable(tmp_path):
    paths = write_sdp_comparison(tmp_path, seed=3)
    assert [p.name for p in paths] == ["demo_mlp.json", "demo_attention.json"]
    mlp, att = (json.loads(p.read_text()) for p in paths)
    rows = _by_name(mlp)
    lower = mlp["lower_bounds"]["l2"]["value"]
    neuron, layer = rows["sdp.lipsdp_neuron"]["value"], rows["sdp.lipsdp_layer"]["value"]
    assert lower <= neuron <= layer * (1 + 1e-5) <= rows["network.spectral_product"]["value"] * (1 + 2e-5)
    rows = _by_name(att)
    lower = att["lower_bounds"]["l2"]["value"]
    assert lower <= rows["attention.sdp_bounded_dp"]["value"] <= rows["attention.bounded_dp"]["value"]
    # the mean-field row is in the W2 norm: compared only with the W2 lower bound, never with the l2 one
    assert rows["attention.meanfield_w2"]["norm"] == "W2"
    assert rows["attention.meanfield_w2"]["tightness"] == att["lower_bounds"]["W2"]["value"] / rows[
        "attention.meanfield_w2"]["value"]
    assert "versions" in mlp and mlp["seed"] == 3


def test_cli_lipsdp_json_is_readable_by_the_report(tmp_path):
    from pathlib import Path

    mat = Path(__file__).parent / "data" / "lipsdp" / "random_weights.mat"
    out = tmp_path / "lipsdp" / "random.json"
    assert main(["lipsdp", str(mat), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = _by_name(doc)
    assert abs(rows["sdp.lipsdp_layer"]["value"] - 39.839) <= 1e-3 * 39.839
    assert abs(rows["sdp.lipsdp_neuron"]["value"] - 36.482) <= 1e-3 * 36.482
    assert doc["layer"]["widths"] == [2, 10, 30, 20, 2]
