"""The skops type review: model classes load without trusted=True; functions and other callables never do."""

from __future__ import annotations

import functools
import importlib
import io
import json
import pkgutil
import shutil
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import make_column_transformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern, WhiteKernel
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from shipyard.errors import UntrustedArtifact
from shipyard.registry.flavors.sklearn import SklearnFlavor
from shipyard.registry.flavors.skops_types import (
    METHOD,
    approves,
    carriers,
    model_classes,
    refused_types,
)
from tests.registry import crafted_skops as crafted

sio = pytest.importorskip("skops.io", reason="skops is not installed (pip install skops)")

FLAVOR = SklearnFlavor()
LOADERS = [
    *crafted.NODE_KINDS,
    "DTypeNode",
    "SparseMatrixNode",
    "RandomGeneratorNode",
    "OperatorFuncNode",
    METHOD,
]
VICTIM_TEXT = "precious data\n"


def _load_crafted(directory: Path, root: crafted.Node, **options: Any) -> Any:
    directory.mkdir(exist_ok=True)
    (directory / "model.skops").write_bytes(crafted.skops_bytes(root))
    return FLAVOR.load(directory, {"format": "skops", "types": []}, **options)


# ------------------------------------------------------------------ crafted files from the issue and beyond
@pytest.fixture
def victim(tmp_path: Path) -> Path:
    folder = tmp_path / "victim"
    folder.mkdir()
    path = folder / "data.txt"
    path.write_text(VICTIM_TEXT)
    return path


def _attacks(target: str) -> dict[str, crafted.Node]:
    """Files that would write, delete, read or run something when skops builds them."""
    j = crafted.json_node
    return {
        # The file: numpy's open(path, "w") truncates the target when called.
        "numpy open, called": crafted.call_node("numpy.lib._datasource.open", j(target), j("w")),
        "numpy open, as a loss": crafted.loss_node("numpy.lib._datasource.open", j(target), j("w")),
        "numpy open, as a tree": crafted.tree_node("numpy.lib._datasource.open", j(target), j("w")),
        "numpy savetxt": crafted.call_node("numpy.lib._npyio_impl.savetxt", j(target), j([[1.0]])),
        "numpy savetxt public name": crafted.call_node("numpy.savetxt", j(target), j([[1.0]])),
        "numpy memmap (a class)": crafted.call_node(
            "numpy.memmap", j(target), j("uint8"), j("w+"), j(0), j([1])
        ),
        "numpy load": crafted.call_node("numpy.load", j(target)),
        "numpy open in a partial": crafted.inside_transformer(
            crafted.partial_node("numpy.lib._datasource.open", j(target), j("w"))
        ),
        "numpy open as a function": crafted.inside_transformer(
            crafted.function_node("numpy.lib._datasource.open")
        ),
        "numpy DataSource (a class)": crafted.object_node("numpy.lib._datasource.DataSource"),
        "scipy save_npz": crafted.call_node("scipy.sparse.save_npz", j(target), j([[1]])),
        "scipy save_npz private name": crafted.call_node(
            "scipy.sparse._matrix_io.save_npz", j(target), j([[1]])
        ),
        "scipy savemat": crafted.call_node("scipy.io.savemat", j(target), j({"a": 1})),
        "scipy FortranFile (a class)": crafted.call_node("scipy.io.FortranFile", j(target), j("w")),
        "sklearn export_graphviz": crafted.call_node(
            "sklearn.tree._export.export_graphviz", j(None), j(target)
        ),
        "sklearn dump_svmlight_file": crafted.call_node(
            "sklearn.datasets.dump_svmlight_file", j([[1]]), j([1]), j(target)
        ),
        "sklearn check_array in a list": crafted.list_node("sklearn.utils.validation.check_array", j(target)),
        "sklearn estimator's private method": crafted.method_node(
            "sklearn.linear_model._logistic.LogisticRegression", "_more_tags"
        ),
        "builtins open": crafted.call_node("builtins.open", j(target), j("w")),
        "builtins exec": crafted.call_node("builtins.exec", j(f"open({target!r}, 'w')")),
        "io open as a dict": crafted.dict_node(dotted="io.open"),
        "os remove": crafted.call_node("os.remove", j(target)),
        "posix system": crafted.call_node("posix.system", j(f"truncate -s 0 {target}")),
        "subprocess run": crafted.call_node("subprocess.run", j(["truncate", "-s", "0", target])),
        "shutil rmtree as an array": crafted.array_node("shutil.rmtree"),
        "pathlib Path write_text": crafted.call_node("pathlib.Path.write_text", j(target), j("")),
        "operator methodcaller": crafted.call_node("operator.methodcaller", j("write_text"), j("")),
        "a module outside the roots": crafted.call_node("antigravity.geohash", j(1), j(2), j(b"x".hex())),
    }


ATTACKS = sorted(_attacks("/x"))


@pytest.mark.parametrize("attack", ATTACKS)
def test_crafted_file_is_refused_and_touches_nothing(tmp_path: Path, victim: Path, attack: str) -> None:
    root = _attacks(str(victim))[attack]
    before = sorted(p.name for p in victim.parent.iterdir())
    with pytest.raises(UntrustedArtifact, match="Pass trusted=True only if you trust the file's origin"):
        _load_crafted(tmp_path / "pkg", root)
    assert victim.read_text() == VICTIM_TEXT
    assert sorted(p.name for p in victim.parent.iterdir()) == before


def test_refusal_names_the_object_and_the_node_that_would_build_it(tmp_path: Path, victim: Path) -> None:
    root = _attacks(str(victim))["numpy open, called"]
    with pytest.raises(UntrustedArtifact) as info:
        _load_crafted(tmp_path / "pkg", root)
    assert "numpy.lib._datasource.open (as ConstructorFromReduceNode)" in str(info.value)
    assert "never a function or other callable" in str(info.value)


def test_deciding_imports_no_module_the_file_names(tmp_path: Path) -> None:
    # A module outside scikit-learn/NumPy/SciPy is refused by name; importing it could itself run code.
    assert "antigravity" not in sys.modules and "this" not in sys.modules
    for dotted in ("antigravity.geohash", "this.s"):
        with pytest.raises(UntrustedArtifact, match=dotted.replace(".", r"\.")):
            _load_crafted(tmp_path / "pkg", crafted.call_node(dotted))
    assert "antigravity" not in sys.modules and "this" not in sys.modules


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.InconsistentVersionWarning")  # a hand-made state
def test_trusted_true_builds_what_the_review_refuses(tmp_path: Path) -> None:
    root = crafted.inside_transformer(crafted.function_node("builtins.len"))  # harmless, but a callable
    with pytest.raises(UntrustedArtifact, match=r"builtins\.len \(as FunctionNode\)"):
        _load_crafted(tmp_path / "pkg", root)
    assert _load_crafted(tmp_path / "pkg", root, trusted=True).estimator.func is len


def test_a_name_approved_for_one_node_is_refused_when_another_node_would_call_it(tmp_path: Path) -> None:
    # Trust given to skops is per name, for every node: an estimator class next to a node that calls it with
    # the file's arguments must not ride on the approval.
    name = "sklearn.linear_model._logistic.LogisticRegression"
    root = crafted.tuple_node(crafted.object_node(name), crafted.call_node(name, crafted.json_node(1)))
    with pytest.raises(
        UntrustedArtifact, match="LogisticRegression \\(as ConstructorFromReduceNode, ObjectNode\\)"
    ):
        _load_crafted(tmp_path / "pkg", root)


# --------------------------------------------------------------------------------- the rules, name by name
@pytest.mark.parametrize(
    ("loader", "name", "allowed"),
    [
        ("ObjectNode", "sklearn.ensemble._forest.RandomForestClassifier", True),
        ("ObjectNode", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("ObjectNode", "sklearn._loss.loss.HalfBinomialLoss", True),
        ("ObjectNode", "sklearn.gaussian_process.kernels.Matern", True),
        ("ObjectNode", "sklearn.neighbors._kd_tree.KDTree", True),
        ("ObjectNode", "sklearn.metrics._dist_metrics.PyFuncDistance64", False),
        ("ObjectNode", "numpy.memmap", False),
        ("ObjectNode", "mypkg.transformers.Clipper", False),
        ("TypeNode", "sklearn.linear_model._logistic.LogisticRegression", True),
        ("TreeNode", "sklearn.tree._tree.Tree", True),
        ("TreeNode", "numpy.lib._datasource.open", False),
        ("LossNode", "sklearn._loss._loss.CyHalfBinomialLoss", True),
        ("LossNode", "sklearn.linear_model._sgd_fast.Hinge", True),
        ("LossNode", "sklearn.linear_model._logistic.LogisticRegression", False),
        ("DictNode", "sklearn.utils._bunch.Bunch", True),
        ("DictNode", "collections.UserDict", False),
        ("DTypeNode", "numpy.dtype", True),
        ("SparseMatrixNode", "scipy.sparse._csr.csr_matrix", True),
        ("SparseMatrixNode", "scipy.sparse.save_npz", False),
        ("ConstructorFromReduceNode", "sklearn.linear_model._logistic.LogisticRegression", False),
        ("FunctionNode", "sklearn.feature_selection._univariate_selection.f_classif", False),
        (METHOD, "sklearn.linear_model._logistic.LogisticRegression.predict", True),
        (METHOD, "sklearn.linear_model._logistic.LogisticRegression._validate_params", False),
        (METHOD, "sklearn.linear_model._logistic.LogisticRegression.__class__", False),
        (METHOD, "sklearn.linear_model._logistic.LogisticRegression.nonexistent", False),
        (METHOD, "numpy.lib._datasource.DataSource.open", False),
        ("SomeFutureNode", "sklearn.ensemble._forest.RandomForestClassifier", False),
    ],
)
def test_approves(loader: str, name: str, allowed: bool) -> None:
    assert approves(loader, name) is allowed


def test_model_classes_are_all_classes_from_sklearn_or_scipy() -> None:
    classes = model_classes()
    assert len(classes) > 250
    for name, cls in classes.items():
        assert isinstance(cls, type), name
        assert name.split(".")[0] in ("sklearn", "scipy"), name


def test_walk_finds_nodes_under_any_key_and_derived_names() -> None:
    hidden = crafted.call_node("os.system", crafted.json_node("id"))
    root = crafted.object_node("sklearn.linear_model._ridge.Ridge")
    root["content"]["unexpected_key"] = [{"nested": hidden}]
    root["content"]["content"]["m"] = crafted.method_node("sklearn.linear_model._ridge.Ridge", "fit")
    found = set(carriers(root))
    assert ("ConstructorFromReduceNode", "os.system") in found
    assert (METHOD, "sklearn.linear_model._ridge.Ridge.fit") in found
    assert ("TreeNode", "sklearn.tree._tree.Tree") in set(carriers(crafted.tree_node("x.y")))


def test_flagged_name_no_node_carries_is_refused() -> None:
    assert refused_types(crafted.json_node(1), ["numpy.random.seed"]) == {"numpy.random.seed": []}


# -------------------------------------------------------- property: no public non-class callable gets through
_SKIP_PARTS = {"tests", "testing", "conftest", "setup", "f2py", "distutils"}
# Private modules an attacker reaches by their full name (the public walk skips underscored modules).
_PRIVATE_MODULES = (
    "numpy.lib._datasource",
    "numpy.lib._npyio_impl",
    "numpy.lib._format_impl",
    "scipy.sparse._matrix_io",
    "scipy.io._mmio",
    "sklearn.tree._export",
    "sklearn.datasets._svmlight_format_io",
    "sklearn.utils._testing",
)


@functools.cache
def public_callables() -> dict[str, bool]:
    """Every public callable that is not a class in NumPy, SciPy and scikit-learn, by each name it has.

    Maps each name to whether it is a ufunc (skops returns those from a FunctionNode by default).
    """
    modules = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for root in ("numpy", "scipy", "sklearn"):
            package = importlib.import_module(root)
            modules.append(package)
            for info in pkgutil.walk_packages(package.__path__, f"{root}.", onerror=lambda _: None):
                parts = info.name.split(".")[1:]
                if any(part.startswith("_") or part in _SKIP_PARTS for part in parts):
                    continue
                try:
                    modules.append(importlib.import_module(info.name))
                except Exception:  # an optional backend that is not installed (cupy, dask…)
                    continue
        for name in _PRIVATE_MODULES:
            try:
                modules.append(importlib.import_module(name))
            except ImportError:
                continue
        names: dict[str, bool] = {}
        for module in modules:
            for attr in dir(module):
                if attr.startswith("_"):
                    continue
                try:
                    value = getattr(module, attr)
                except Exception:
                    continue
                if not callable(value) or isinstance(value, type):
                    continue
                ufunc = isinstance(value, np.ufunc) or type(value).__name__ == "UFuncWrapper"
                names[f"{module.__name__}.{attr}"] = ufunc
                home, own = getattr(value, "__module__", None), getattr(value, "__name__", None)
                if isinstance(home, str) and isinstance(own, str):
                    names[f"{home}.{own}"] = ufunc
    return names


def test_every_public_callable_is_refused_by_every_loader() -> None:
    names = public_callables()
    assert len(names) > 3000  # the walk really covered the packages
    assert "numpy.lib._datasource.open" in names and "scipy.sparse.save_npz" in names
    allowed = [(loader, name) for name in names for loader in LOADERS if approves(loader, name)]
    assert allowed == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(sorted(crafted.NODE_KINDS)))
def test_crafted_file_naming_any_public_callable_is_refused(data: st.DataObject, kind: str) -> None:
    # Drawn inside, so that collecting this module does not import every NumPy/SciPy/sklearn module.
    name = data.draw(st.sampled_from(sorted(public_callables())), label="name")
    skops_file = crafted.skops_bytes(crafted.inside_transformer(crafted.NODE_KINDS[kind](name)))
    flagged = sio.get_untrusted_types(data=skops_file)
    with zipfile.ZipFile(io.BytesIO(skops_file)) as archive:
        refused = refused_types(json.loads(archive.read("schema.json")), flagged)
    # The one thing skops builds without asking: a ufunc returned by a FunctionNode (pure math, no I/O).
    skops_default = kind == "FunctionNode" and public_callables()[name] and name not in flagged
    assert bool(refused) is not skops_default
    if name in flagged:
        assert name in refused


# ------------------------------------------------------------------- real models still load untrusted
def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=90), "y": rng.normal(size=90), "tag": rng.choice(["a", "b", "c"], 90)}
    )
    return frame, rng.integers(0, 3, 90)


def _models() -> dict[str, tuple[Any, bool]]:
    """name -> (model, fit on the frame with its string column?)"""
    return {
        "pipeline scaler + logistic": (make_pipeline(StandardScaler(), LogisticRegression()), False),
        "column transformer + one-hot": (
            make_pipeline(
                make_column_transformer(
                    (OneHotEncoder(handle_unknown="ignore"), ["tag"]), remainder="passthrough"
                ),
                LogisticRegression(),
            ),
            True,
        ),
        "random forest": (RandomForestClassifier(n_estimators=5, random_state=0), False),
        "decision tree": (DecisionTreeClassifier(random_state=0), False),
        "gradient boosting": (GradientBoostingClassifier(n_estimators=5, random_state=0), False),
        "gradient boosting regressor": (GradientBoostingRegressor(n_estimators=5, random_state=0), False),
        "hist gradient boosting": (HistGradientBoostingClassifier(max_iter=5, random_state=0), False),
        "hist gradient boosting regressor": (HistGradientBoostingRegressor(max_iter=5), False),
        "ridge": (Ridge(), False),
        "linear regression": (LinearRegression(), False),
        "sgd": (SGDClassifier(random_state=0), False),
        "knn ball tree": (KNeighborsClassifier(algorithm="ball_tree", metric="manhattan"), False),
        "mlp": (MLPClassifier(max_iter=20, random_state=0), False),
        "gaussian process": (GaussianProcessRegressor(Matern() + WhiteKernel()), False),
        "grid search": (GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2), False),
        "voting": (VotingClassifier([("lr", LogisticRegression()), ("dt", DecisionTreeClassifier())]), False),
        "stacking": (StackingClassifier([("lr", LogisticRegression())], cv=2), False),
        "log transformer": (make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()), False),
    }


@pytest.mark.parametrize("name", sorted(_models()))
def test_models_the_project_saves_load_without_trusted(tmp_path: Path, name: str) -> None:
    model, with_strings = _models()[name]
    frame, labels = _frame()
    data = frame if with_strings else frame[["x", "y"]].abs().to_numpy()
    target = labels if not name.endswith(("regressor", "process", "ridge", "regression")) else data[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        model.fit(data, target)
    directory = tmp_path / "pkg"
    directory.mkdir()
    saved = FLAVOR.save(model, directory)
    loaded = FLAVOR.load(directory, saved.loader)
    np.testing.assert_array_equal(loaded.predict(data), model.predict(data))
    shutil.rmtree(directory)
