"""Which objects a skops file may have skops build without ``trusted=True``: model classes, never functions.

skops rebuilds a model from ``schema.json``, a tree of nodes. Each node names an object (``__module__`` +
``__class__``), and its ``__loader__`` decides what skops does with that object:

=============================================  =====================================================
loader                                         what skops does with the named object
=============================================  =====================================================
ObjectNode                                     ``cls.__new__(cls)``, then the file's state
TypeNode                                       imports it and returns it (a class as a parameter)
TreeNode                                       builds ``sklearn.tree._tree.Tree`` from the file
LossNode, ConstructorFromReduceNode            **calls** it with arguments from the file
List/Set/Tuple/DictNode, NdArrayNode,          **calls** it (with the items, the array, or nothing)
RandomStateNode, RandomGeneratorNode
FunctionNode, MethodNode, PartialNode,         returns a callable that the model calls later on
OperatorFuncNode                               your data
DTypeNode, SparseMatrixNode                    nothing: NumPy/SciPy parse the bytes (no pickle)
=============================================  =====================================================

skops trusts a fixed set of names per loader (builtin containers, NumPy arrays and dtypes, NumPy/SciPy ufuncs
as FunctionNode, scikit-learn's public estimators as ObjectNode…) and reports every other name
(:func:`skops.io.get_untrusted_types`). Whichever names are then passed to skops as trusted are trusted for
*every* node, so Shipyard reviews each reported name by **every** node that carries it
(:func:`refused_types`): it is accepted only if each of those nodes may build it (:func:`approves`):

* ObjectNode and TypeNode: a class from :func:`model_classes` — scikit-learn's estimators and the internal
  classes fitted estimators hold (trees, losses, links, kernels, distance metrics, optimizers, CV splitters…);
* TreeNode: ``Tree``; LossNode: scikit-learn's Cython loss classes; DictNode: scikit-learn's ``Bunch``;
  DTypeNode: ``numpy.dtype``; SparseMatrixNode: SciPy's sparse classes (the name is unused there);
* MethodNode: a public method of a class from :func:`model_classes`.

Anything else — a function (``numpy.lib._datasource.open``, ``scipy.sparse.save_npz``), a builtin, another
callable, a class outside the list, anything from the standard library — is refused. Deciding imports nothing
the file names: names are compared, as strings, with lists built from scikit-learn and SciPy themselves.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

TREE = "sklearn.tree._tree.Tree"
DTYPE = "numpy.dtype"
METHOD = "MethodNode.method"  # the pseudo-node for "owner.method", which skops reports for a MethodNode

# Classes that fitted estimators hold but `all_estimators` does not list; missing ones (other versions) are
# skipped.
# fmt: off
_INTERNAL_CLASSES = (
    TREE,
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn._loss.link.Interval",
    "sklearn.metrics._scorer._PassthroughScorer", "sklearn.metrics._scorer._MultimetricScorer",
    "scipy.interpolate._bsplines.BSpline",  # SplineTransformer's splines
)
# fmt: on
# Families: the classes defined in a module that derive from one of its base classes.
_FAMILIES = (
    ("sklearn._loss.loss", "BaseLoss"),
    ("sklearn._loss.link", "BaseLink"),
    ("sklearn.gaussian_process.kernels", "Kernel"),
    ("sklearn.metrics._dist_metrics", "DistanceMetric"),
    ("sklearn.metrics._scorer", "_BaseScorer"),  # a search's scorer (its metric function is reviewed apart)
    ("sklearn.model_selection._split", "BaseCrossValidator"),  # a search's or a CV estimator's splitter
    ("sklearn.model_selection._split", "BaseShuffleSplit"),
    ("sklearn.model_selection._split", "_RepeatedSplits"),
)
# Mappings a DictNode may create empty (``cls()``) and fill: voting and stacking estimators keep a Bunch.
_MAPPINGS = frozenset({"sklearn.utils._bunch.Bunch"})
# A PyFuncDistance wraps a Python function: it is a callable in disguise.
_EXCLUDED = frozenset({"PyFuncDistance", "PyFuncDistance32", "PyFuncDistance64"})
# Modules whose classes are all Cython loss functions, built by skops' LossNode (called with the file's args).
_LOSS_MODULES = ("sklearn._loss._loss", "sklearn.linear_model._sgd_fast")


def _name(cls: type) -> str:
    """The name skops writes for ``cls`` (its module, as ``pickle.whichmodule`` finds it, and its name)."""
    return f"{cls.__module__}.{cls.__name__}"


def _classes_defined_in(module_name: str) -> Iterator[type]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # another scikit-learn/SciPy version
        return
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == module_name and value.__name__ not in _EXCLUDED:
            yield value


@functools.cache
def model_classes() -> Mapping[str, type]:
    """The classes ObjectNode and TypeNode may build, by the name skops writes for them.

    scikit-learn's estimators (``sklearn.utils.all_estimators``), the internal classes fitted estimators hold,
    and the families above. Only scikit-learn and SciPy modules are imported to build it.
    """
    from sklearn.utils import all_estimators

    found: dict[str, type] = {}
    for _, cls in all_estimators():
        if cls.__module__.startswith("sklearn."):
            found[_name(cls)] = cls
    for dotted in _INTERNAL_CLASSES:
        module_name, _, attr = dotted.rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            value = None
        if isinstance(value, type):
            found[_name(value)] = value
    for module_name, base_name in _FAMILIES:
        classes = list(_classes_defined_in(module_name))
        base = next((c for c in classes if c.__name__ == base_name), None)
        for cls in classes if base is not None else ():
            if issubclass(cls, base):
                found[_name(cls)] = cls
    return found


@functools.cache
def loss_classes() -> frozenset[str]:
    """The Cython loss classes skops' LossNode may call (with the loss's parameters from the file)."""
    return frozenset(_name(cls) for module in _LOSS_MODULES for cls in _classes_defined_in(module))


@functools.cache
def sparse_classes() -> frozenset[str]:
    """SciPy's sparse matrix and array classes (a SparseMatrixNode reads its bytes with ``load_npz``)."""
    import scipy.sparse

    bases = tuple(b for b in (scipy.sparse.spmatrix, getattr(scipy.sparse, "sparray", None)) if b is not None)
    return frozenset(
        _name(value)
        for value in vars(scipy.sparse).values()
        if isinstance(value, type) and issubclass(value, bases)
    )


def approves(loader: str, name: str) -> bool:
    """Whether a node with this ``__loader__`` may have skops build the object called ``name``."""
    if loader in ("ObjectNode", "TypeNode", "MethodNode"):  # a MethodNode's own name is its instance's class
        return name in model_classes()
    if loader == "TreeNode":
        return name == TREE
    if loader == "DictNode":
        return name in _MAPPINGS
    if loader == "LossNode":
        return name in loss_classes()
    if loader == "DTypeNode":
        return name == DTYPE  # the dtype itself comes from an array child, read by numpy without pickle
    if loader == "SparseMatrixNode":
        return name in sparse_classes()
    if loader == METHOD:
        owner, _, method = name.rpartition(".")
        cls = model_classes().get(owner)
        if cls is None or not method.isidentifier() or method.startswith("_"):
            return False
        try:
            attribute = inspect.getattr_static(cls, method)
        except AttributeError:
            return False
        return inspect.isroutine(attribute) and not isinstance(attribute, (staticmethod, classmethod))
    return False  # every other loader calls what it names, or returns a callable: skops' defaults only


def carriers(schema: Any) -> Iterator[tuple[str, str]]:
    """``(loader, name)`` for each node of a parsed ``schema.json`` and for each name skops derives from one.

    The walk visits every mapping with a string ``__loader__``, wherever it sits, so no child escapes review
    whatever key holds it; it is iterative, so a deeply nested file cannot exhaust the stack.
    """
    stack: list[Any] = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        stack.extend(item.values())
        loader = item.get("__loader__")
        if not isinstance(loader, str):
            continue
        name = f"{item.get('__module__')}.{item.get('__class__')}"
        yield loader, name
        content = item.get("content")
        if loader == "TreeNode":
            yield loader, TREE  # its constructor, whatever the node's own name says
        elif loader == "FunctionNode" and isinstance(content, dict):
            # Protocol 0 names the function inside "content"; skops reports that name.
            yield loader, f"{content.get('module_path')}.{content.get('function')}"
        elif loader == "MethodNode" and isinstance(content, dict):
            yield METHOD, f"{name}.{content.get('func')}"


def refused_types(schema: Any, flagged: Iterable[str]) -> dict[str, list[str]]:
    """The names skops flagged that Shipyard will not let it build, each with the loaders that carry it.

    A flagged name is accepted only if at least one node carries it and every node that does may build it; a
    flagged name no node carries (skops derived it in a way this review does not know) is refused.
    """
    loaders: defaultdict[str, set[str]] = defaultdict(set)
    for loader, name in carriers(schema):
        loaders[name].add(loader)
    refused = {}
    for name in sorted(set(flagged)):
        kinds = loaders.get(name, set())
        if not kinds or not all(approves(kind, name) for kind in kinds):
            refused[name] = sorted(kinds)
    return refused
