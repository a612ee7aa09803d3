"""The demo's SDP-beside-analytic files: sound ordering, the report can read them, ``boundlab lipsdp --json`` too.

Catches: an SDP bound below the empirical lower bound (unsound), the attention SDP above the analytic bound it is
meant to improve on, and a result file the report cannot read (a format mismatch between writer and reader).
"""

import json

from boundlab.cli import main
from boundlab.empirical.sdp_comparison import write_sdp_comparison
from boundlab.reports.load import lipsdp_rows


def test_sdp_comparison_files_are_sound_and_readable(tmp_path):
    paths = write_sdp_comparison(tmp_path, seed=3)
    assert [p.name for p in paths] == ["demo_mlp.json", "demo_attention.json"]
    mlp, att = (json.loads(p.read_text()) for p in paths)
    neuron, layer = lipsdp_rows(mlp)
    assert mlp["empirical_lower"] <= neuron["certified"] <= layer["certified"] * (1 + 1e-5)
    assert layer["certified"] <= mlp["analytic"]["product of spectral norms (composition.product)"] * (1 + 1e-5)
    (row,) = lipsdp_rows(att)
    assert att["empirical_lower"] <= row["certified"] <= att["analytic"]["attention.bounded_dp"]
    assert "versions" in mlp and mlp["seed"] == 3


def test_cli_lipsdp_json_is_readable_by_the_report(tmp_path):
    from pathlib import Path

    mat = Path(__file__).parent / "data" / "lipsdp" / "random_weights.mat"
    out = tmp_path / "lipsdp" / "random.json"
    assert main(["lipsdp", str(mat), "--form", "layer", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    (row,) = lipsdp_rows(doc)
    assert abs(row["certified"] - 39.839) <= 1e-3 * 39.839
    assert doc["analytic"] and doc["network"] == [2, 10, 30, 20, 2]
