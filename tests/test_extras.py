"""The optional extras: without one, its modules say which extra to install; nothing else needs them."""

import subprocess
import sys

import pytest


def _import_without(blocked: list[str], statement: str) -> subprocess.CompletedProcess:
    # sys.modules[name] = None makes `import name` fail as if the package were not installed
    code = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked) + statement
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("blocked", "statement", "extra"),
    [
        (["duckdb"], "import companion.warehouse", "warehouse"),
        (["pyarrow"], "from companion.warehouse import write_predictions_parquet", "warehouse"),
        (["fastapi"], "from companion.serving import batch_predict", "serving"),
        (["uvicorn"], "import companion.serving.online", "serving"),
        (["captum"], "from companion.explain import integrated_gradients", "explain"),
        (["skimage"], "import companion.explain.xrai", "explain"),
        (["peft"], "import companion.adapt", "adapt"),
        (["onnxruntime"], "import companion.serving.export", "export"),
        (["onnx"], "import companion.serving.export", "export"),
    ],
)
def test_a_missing_extra_names_the_extra_to_install(blocked, statement, extra):
    out = _import_without(blocked, statement)
    assert out.returncode != 0
    assert f"Expected the optional dependency `{blocked[0]}` to be installed" in out.stderr
    assert f"pip install 'companion[{extra}]'" in out.stderr


def test_everything_else_imports_without_the_extras():
    out = _import_without(
        ["duckdb", "pyarrow", "fastapi", "uvicorn", "captum", "skimage", "peft", "optuna", "onnx", "onnxruntime",
         "xgboost", "imblearn", "fairlearn"],
        "import pkgutil, importlib, companion\n"
        "skip = ('companion.warehouse', 'companion.serving', 'companion.explain', 'companion.adapt',\n"
        "        'companion.tuning')\n"
        "names = [m.name for m in pkgutil.walk_packages(companion.__path__, 'companion.')\n"
        "         if not m.name.startswith(skip)]\n"
        "for name in names: importlib.import_module(name)\n"
        "from companion.exercises import check, list_exercises\n"
        "print(len(names), len(list_exercises()))\n",
    )
    assert out.returncode == 0, out.stderr
    modules, exercises = map(int, out.stdout.split())
    assert modules > 40 and exercises >= 16


def test_the_sql_exercise_asks_for_the_warehouse_extra_when_duckdb_is_missing():
    out = _import_without(["duckdb"], "from companion.exercises import check\ncheck('4.4.3-bias-sql', 'SELECT 1')\n")
    assert "pip install 'companion[warehouse]'" in out.stdout + out.stderr  # check() reports what went wrong
