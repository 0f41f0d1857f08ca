"""A check that source code touches no private attribute, method or module of Lightning, Hydra (with
OmegaConf), W&B or Optuna, whose private parts change between releases without notice.

:func:`private_uses` reads a source file's syntax tree and reports:

- imports of a private module or name of those packages (``from hydra._internal ...``);
- in a class deriving from one of their classes, ``def _x`` or ``_x = ...`` overriding a private member,
  and ``self._x`` / ``super()._x`` naming one of the library's private attributes (those of the bases' own
  source) or one that the class itself never assigns (so it comes from the base);
- elsewhere, ``x._y`` (and ``getattr(x, "_y")``) where ``x`` is a name imported from those packages, bound
  to one of their objects, or named like one (``trainer``, ``logger``, ``study``, ``self.trainer``, ...).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap

LIBRARIES = {
    "lightning",
    "pytorch_lightning",
    "lightning_fabric",
    "lightning_utilities",
    "hydra",
    "omegaconf",
}
LIBRARIES |= {"wandb", "optuna", "optuna_integration"}
#: variables and attributes named like the libraries' objects
LIBRARY_WORDS = re.compile(
    r"(^|_)(trainer|loggers?|experiment|study|trial|storage|sampler|pruner|strategy|accelerator|fit_loop|"
    r"epoch_loop|pl_module|lightning_module|datamodule|callbacks?|hydra|hydra_config|wandb|run|cfg|config)$"
)
#: underscore names that are public API: Hydra's config keys and namedtuple methods
PUBLIC = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_", "_self_"}
PUBLIC |= {"_asdict", "_replace", "_fields", "_make"}
#: Hydra factories whose results are the caller's own objects
FACTORIES = {"instantiate", "call", "get_class", "get_method", "get_object"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC


def _chain(node: ast.AST) -> list[str]:
    """The identifiers from the root of ``a.b(...)[i].c`` to its end (``["a", "b", "c"]``)."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        elif isinstance(node, ast.Name):
            return [node.id, *reversed(names)]
        else:
            return list(reversed(names))


def _imports(tree: ast.Module) -> dict[str, str]:
    """Names bound by imports from the libraries -> the dotted path they stand for."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in LIBRARIES:  # `import a.b` binds a, `import a.b as c` binds c to a.b
                    bound[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in LIBRARIES:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _bound_names(tree: ast.Module, imported: dict[str, str]) -> set[str]:
    """Imported names, and names assigned from (or annotated with) them, to a fixed point."""
    bound = set(imported)
    while True:
        before = len(bound)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                chain = _chain(node.value)
                if chain and chain[0] in bound and chain[-1] not in FACTORIES:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    bound |= {t.id for t in targets if isinstance(t, ast.Name)}
            elif (
                isinstance(node, ast.arg)
                and node.annotation is not None
                and any(isinstance(n, ast.Name) and n.id in bound for n in ast.walk(node.annotation))
            ):
                bound.add(node.arg)
        if len(bound) == before:
            return bound


def _resolve(dotted: str) -> object | None:
    """The object at a dotted path such as ``lightning.pytorch.loggers.CSVLogger``, or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part, None)
        return obj
    return None


def _library_privates(base: type) -> set[str]:
    """Private names of the library classes in ``base``'s MRO: members and ``self._x`` in their source."""
    names = set()
    for klass in inspect.getmro(base):
        if klass.__module__.split(".")[0] not in LIBRARIES:
            continue
        names |= {n for n in vars(klass) if _private(n)}
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        names |= {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and _private(n.attr)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
        }
    return names


def _is_self(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "self") or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _check_class(
    cls: ast.ClassDef, library: set[str], inherited_own: set[str]
) -> tuple[list[tuple[int, str]], set[str]]:
    """Findings in a class whose bases have the library private names ``library``, and the private names
    the class (with its own bases, ``inherited_own``) defines itself."""
    members = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in cls.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        members.update({t.id: node for t in targets if isinstance(t, ast.Name)})
    found = [
        (node.lineno, f"{cls.name} overrides {name}")
        for name, node in members.items()
        if _private(name) and name in library
    ]
    own = (
        inherited_own
        | set(members)
        | {
            n.attr
            for n in ast.walk(cls)
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and _is_self(n.value)
        }
    )
    for n in ast.walk(cls):
        used = isinstance(n, ast.Attribute) and _private(n.attr) and _is_self(n.value)
        if used and (n.attr in library or n.attr not in own):
            found.append((n.lineno, f"{cls.name} uses the library's self.{n.attr}"))
    return found, own


def _private_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Imports of a private module or name of the libraries."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] in LIBRARIES and any(_private(p) for p in parts):
                found.append((node.lineno, f"imports the private {module}"))
    return found


def _subclass_uses(tree: ast.Module, imported: dict[str, str]) -> list[tuple[int, str]]:
    """Private members used or overridden in classes deriving (directly or in this module) from the
    libraries' classes."""
    found = []
    classes: dict[str, tuple[set[str], set[str]]] = {}  # library subclasses: private names, own names
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        library, own, derived = set(), set(), False
        for base in cls.bases:
            chain = _chain(base)
            if chain and chain[0] in imported:
                obj = _resolve(".".join([imported[chain[0]], *chain[1:]]))
                library |= _library_privates(obj) if isinstance(obj, type) else set()
                derived = True
            elif chain and chain[0] in classes:
                library, own, derived = library | classes[chain[0]][0], own | classes[chain[0]][1], True
        if derived:
            in_class, own = _check_class(cls, library, own)
            found += in_class
            classes[cls.name] = (library, own)
    return found


def _attribute_uses(tree: ast.Module, bound: set[str]) -> list[tuple[int, str]]:
    """``x._y`` and ``getattr(x, "_y")`` where ``x`` is bound to the libraries or named like their objects."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _is_self(node.value):
            target, name = node.value, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and _private(str(node.args[1].value))
        ):
            target, name = node.args[0], str(node.args[1].value)
        else:
            continue
        chain = _chain(target)
        if chain and (chain[0] in bound or any(LIBRARY_WORDS.search(n) for n in chain)):
            found.append((node.lineno, f"uses {'.'.join(chain)}.{name}"))
    return found


def private_uses(source: str) -> list[tuple[int, str]]:
    """``(line, description)`` of every use of a library's private part in a module's source text."""
    tree = ast.parse(source)
    imported = _imports(tree)
    found = _private_imports(tree) + _subclass_uses(tree, imported)
    found += _attribute_uses(tree, _bound_names(tree, imported))
    return sorted(set(found))
