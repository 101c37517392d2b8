"""`dvc plots show` / `dvc plots diff` draw every plot of every dvc.yaml, with nothing fetched from the network.

A small fake run in a temporary git + DVC repo: this repo's dvc.yaml files, params.yaml, .dvc/config
and plot templates; tiny upstream reports; the `curves` stage run from its dvc.yaml command; the
page built by `python -m pipeline.plots_page` from the npm packages `make install` installs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from PIL import Image

from pipeline.plots_page import LIBRARIES, PlotsPageError, build_page, inline_script

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
# What a person looks at (issue 14): training curves per run and hardening phase, CALoR's p_y with
# p*, the GANs' losses, the trade-off; plus the stages' own per-epoch plots.
EXPECTED_PLOTS = {
    "natural_accuracy", "train_loss", "calor_confidence", "prior_gan_losses", "target_gan_losses",
    "reports/comparison/tradeoff.json", "reports/comparison/tradeoff.png",
    "reports/plots/train_baseline.json", "reports/plots/train_judge.json", "reports/plots/harden.json",
}  # fmt: skip
needs_npm_packages = pytest.mark.skipif(
    not (NODE_MODULES / "vega-embed" / "package.json").is_file(),
    reason="node_modules/ has no vega packages: run `make install` (it runs `npm ci`)",
)


class PageParser(HTMLParser):
    """Every tag's src/href, each plot div's id, and the inline scripts (the parser keeps <script> text whole)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.divs: dict[str, list[str]] = {}  # top-level div id -> the scripts and images inside it
        self.packages: list[str] = []
        self._div: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [value for key, value in attrs if key in ("src", "href") and value]
        if tag == "script" and "data-package" in found:
            self.packages.append(found["data-package"])
        if tag == "div":
            if self._div is None and found.get("id"):
                self._div, self._depth = found["id"], 0
                self.divs[self._div] = []
            self._depth += 1
        if tag == "img" and self._div:
            self.divs[self._div].append(f"img:{found.get('src')}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._div is not None:
            self._depth -= 1
            if self._depth == 0:
                self._div = None

    def handle_data(self, data: str) -> None:
        if self._div and "vegaEmbed" in data:
            self.divs[self._div].append(data)


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def spec_of(script: str) -> dict:
    return json.loads(re.search(r"var spec = (.*);\s*vegaEmbed", script, re.DOTALL).group(1))


def div_id(name: str) -> str:
    return re.sub(r"[!@#$%^&*()\[\]{};,<>?\\/:.|`~=_+ ]", "_", name)  # dvc_render's remove_special_chars


def epochs(n: int, phases: tuple[str, ...] = ()) -> list[dict]:
    rows = [{"epoch": i + 1, "train_loss": 1 / (i + 1), "train_acc": 0.5, "train_mean_true_prob": 0.3 + 0.05 * i,
             "val_natural_accuracy": 0.6 + 0.02 * i} for i in range(n)]  # fmt: skip
    return [{**row, "phase": phases[i * len(phases) // n]} for i, row in enumerate(rows)] if phases else rows


def write_fake_reports(root: Path) -> None:
    """What the upstream stages would write, tiny: per-epoch rows, the GANs' losses, p*, the trade-off."""
    files = {
        "reports/plots/train_baseline.json": epochs(3),
        "reports/plots/train_judge.json": epochs(2),
        "reports/plots/harden.json": epochs(4, ("low_rank", "confidence_adaptation")),
        "reports/harden.json": {"target_confidence": 0.7788, "baseline_train_mean_true_class_prob": 0.94},
        "reports/train_prior.json": {"d_loss": [1.2, 1.3, 1.3], "g_loss": [1.0, 0.8, 0.7], "seconds": 1.0},
        "reports/comparison/tradeoff.json": [
            {"setting": "baseline", "worst_case_acc1": 0.72, "natural_accuracy": 0.944},
            {"setting": "calor", "worst_case_acc1": 0.48, "natural_accuracy": 0.941},
        ],
    }
    losses = {"kedmi": ("d_loss", "d_soft", "g_loss"), "plgmi": ("d_loss", "g_adv", "g_inv")}
    for model in ("baseline", "hardened", "floor"):
        gans = {gan: {"history_mean_per_50_iterations": {n: [1.5, 1.0] for n in ns}} for gan, ns in losses.items()}
        files[f"reports/target_gan/{model}.json"] = {"model": model, "gans": gans}
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(content))
    Image.new("RGB", (40, 30), "white").save(root / "reports/comparison/tradeoff.png")


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("plots") / "repo"
    root.mkdir()
    env = {
        **os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root.parent / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@localhost",
        "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@localhost",
    }  # fmt: skip
    run(["git", "init", "-q"], root, env)
    run([sys.executable, "-m", "dvc", "init", "-q"], root, env)
    for dvcfile in [REPO / "dvc.yaml", *sorted(REPO.glob("*/dvc.yaml"))]:
        (root / dvcfile.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dvcfile, root / dvcfile.relative_to(REPO))
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    shutil.copy2(REPO / ".dvc/config", root / ".dvc/config")
    shutil.copytree(REPO / ".dvc/plots", root / ".dvc/plots", ignore=shutil.ignore_patterns("*.html"))
    write_fake_reports(root)
    stage_cmd = shlex.split(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["curves"]["cmd"])
    run([sys.executable, *stage_cmd[1:]], root, env)  # the curves stage, exactly as dvc.yaml runs it
    if NODE_MODULES.is_dir():  # the page .dvc/config names, as `make install` builds it
        build = ["-m", "pipeline.plots_page", "--repo", ".", "--node-modules", str(NODE_MODULES)]
        run([sys.executable, *build], root, env)
    return root, env


def test_the_curves_stage_writes_every_curve_from_the_reports(fake_run):
    root, _ = fake_run
    outs = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["curves"]["outs"]
    curves = {next(iter(out)): json.loads((root / next(iter(out))).read_text()) for out in outs}
    series = {name: {row["series"] for row in rows} for name, rows in curves.items()}
    assert series["reports/plots/curves/classifiers.json"] == {
        "baseline", "judge", "hardened (low_rank)", "hardened (confidence_adaptation)"}  # fmt: skip
    assert "p* = 0.779 (Confidence Adaptation's target)" in series["reports/plots/curves/confidence.json"]
    assert series["reports/plots/curves/prior_gan.json"] == {"d_loss", "g_loss"}
    panels = {row["panel"] for row in curves["reports/plots/curves/target_gans.json"]}
    assert panels == {f"{gan} vs {model}" for gan in ("plgmi", "kedmi") for model in ("baseline", "hardened", "floor")}


@needs_npm_packages
def test_dvc_plots_show_draws_every_plot_offline(fake_run):
    root, env = fake_run
    shown = json.loads(run([sys.executable, "-m", "dvc", "plots", "show", "--json"], root, env).stdout)
    assert not shown.get("errors"), shown["errors"]
    assert EXPECTED_PLOTS <= set(shown["data"])
    run([sys.executable, "-m", "dvc", "plots", "show"], root, env)  # the page .dvc/config names, no flag
    page = parse(root / "dvc_plots/index.html")

    external = [link for link in page.links if re.match(r"(https?:)?//", link)]
    assert not external, f"the page loads from the network: {external}"
    assert [p.split("@")[0] for p in page.packages] == list(LIBRARIES)  # inlined, in load order
    for name in shown["data"]:
        content = page.divs.get(div_id(name))
        assert content, f"plot {name!r} is missing from the page"
        if name.endswith(".png"):
            assert all(c.startswith("img:static/") for c in content), content
        else:
            assert spec_of(content[0])["data"]["values"], f"plot {name!r} has no data"


@needs_npm_packages
def test_dvc_plots_diff_draws_both_revisions_offline(fake_run):
    root, env = fake_run
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-q", "-m", "fake run"], root, env)
    curve = root / "reports/plots/curves/classifiers.json"
    rows = json.loads(curve.read_text())
    curve.write_text(json.dumps([{**row, "val_natural_accuracy": row["val_natural_accuracy"] - 0.1} for row in rows]))
    run([sys.executable, "-m", "dvc", "plots", "diff", "HEAD", "-o", "diff_plots"], root, env)
    page = parse(root / "diff_plots/index.html")
    assert not [link for link in page.links if re.match(r"(https?:)?//", link)]
    assert [p.split("@")[0] for p in page.packages] == list(LIBRARIES)
    revisions = {row["rev"] for row in spec_of(page.divs["natural_accuracy"][0])["data"]["values"]}
    assert revisions == {"HEAD", "workspace"}


def fake_package(root: Path, name: str, code: str) -> Path:
    package = root / name
    (package / "build").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "jsdelivr": "build/x.js"}))
    (package / "build/x.js").write_text(code)
    return package


def test_inlined_code_cannot_end_its_script_element_early(tmp_path):
    script, label = inline_script(fake_package(tmp_path, "vega", 's="</script>";\n//# sourceMappingURL=x.js.map\n'))
    assert label == "vega@1.0.0"
    assert script.count("</script>") == 1 and '"<\\/script>"' in script
    assert "sourceMappingURL" not in script


def test_code_holding_a_dvc_placeholder_is_refused(tmp_path):
    with pytest.raises(PlotsPageError, match="plot_divs"):
        inline_script(fake_package(tmp_path, "vega", "s='{plot_divs}';"))


def test_packages_of_other_versions_than_the_lock_file_are_refused(tmp_path):
    for name in LIBRARIES:
        fake_package(tmp_path / "node_modules", name, "var x = 1;")
    locked = {"packages": {f"node_modules/{name}": {"version": "1.0.0"} for name in LIBRARIES}}
    (tmp_path / "package-lock.json").write_text(json.dumps(locked))
    page = build_page(tmp_path / "node_modules", tmp_path / "package-lock.json")
    assert "{plot_divs}" in page and "{refresh_tag}" in page and "{scripts}" not in page
    locked["packages"]["node_modules/vega-lite"]["version"] = "2.0.0"
    (tmp_path / "package-lock.json").write_text(json.dumps(locked))
    with pytest.raises(PlotsPageError, match="npm ci"):
        build_page(tmp_path / "node_modules", tmp_path / "package-lock.json")
