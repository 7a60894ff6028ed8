"""The install layers: a light core, extras that say what to install, and the clash with Hugging Face's datasets."""
from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = """
import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, _Missing())
"""


def test_the_core_install_is_what_degrade_needs():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    core = {line.split(">")[0].split("=")[0].strip() for line in parser["options"]["install_requires"].split("\n")
            if line.strip() and not line.strip().startswith("#")}
    assert core == {"torch", "kornia", "numpy", "opencv-python-headless", "scikit-image"}
    extras = parser["options.extras_require"]
    assert "ray[data]" in extras["data"] and "timm" in extras["train"] and "pytest" in extras["dev"]


def _run(code: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    script = BLOCK.format(blocked=set(blocked)) + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_degrade_runs_without_the_data_and_train_stacks():
    result = _run("import degrade, torch\nx = torch.rand(2, 3, 32, 32)\n"
                  "print(degrade.apply_plans(x, degrade.sample_plans(2, 'arniqa')).shape)",
                  blocked=("ray", "webdataset", "timm", "yaml", "matplotlib", "tensorboard", "scipy", "openpyxl"))
    assert result.returncode == 0 and "torch.Size([2, 3, 32, 32])" in result.stdout, result.stderr


def test_a_missing_extra_says_which_to_install():
    result = _run("import pipelines.build", blocked=("ray",))
    assert result.returncode != 0 and "pip install 'dri-toolkit[data]'" in result.stderr
    result = _run("from dri.models import create_model", blocked=("timm",))
    assert result.returncode != 0 and "pip install 'dri-toolkit[train]'" in result.stderr


def test_hugging_face_datasets_in_the_same_environment_is_named(tmp_path):
    info = tmp_path / "site" / "datasets-9.9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: datasets\nVersion: 9.9.9\n")
    code = f"import sys, warnings\nsys.path.append({str(tmp_path / 'site')!r})\nwarnings.simplefilter('always')\nimport datasets"
    result = _run(code)
    assert result.returncode == 0 and "Hugging Face's 'datasets' 9.9.9 is installed" in result.stderr
    shadow = tmp_path / "shadow" / "datasets"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    result = _run(f"import sys\nsys.path.insert(0, {str(tmp_path / 'shadow')!r})\nimport pipelines")
    assert result.returncode != 0 and "is not this toolkit's" in result.stderr and "virtual environment" in result.stderr
