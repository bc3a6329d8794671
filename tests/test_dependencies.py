"""The declared dependencies match the imports.

Every third-party package that ``src/`` imports is declared in ``pyproject.toml``: a module-level import in the
core dependencies, an import through ``lensblur._optional.require(module, extra=E)`` (or ``_optional.cv2(...,
extra=E)``) in extra ``E``, any other import somewhere; nothing is declared in the core or a feature extra that
nothing imports; ``lensblur[all]`` holds every feature extra but the ones named here with their reason; and
what the tests import is installed by ``make test`` (``.[all,test]``). Found by reading the source's syntax
tree, so the check does not depend on which code paths a test run happens to take.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "lensblur"
TESTS = ROOT / "tests"

# Feature extras left out of "all", and why (pyproject.toml says the same).
NOT_IN_ALL = {"portrait": "mediapipe brings a second, GUI OpenCV build that collides with the headless one"}
# Extras that are not features of the package.
TOOL_EXTRAS = {"all", "test", "lint"}
# Distributions of modules that are not installed by make test (the portrait extra).
UNINSTALLED = {"mediapipe": "mediapipe"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[set[str], dict[str, set[str]], dict[str, list[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    raw = project["optional-dependencies"]
    extras = {name: {_name(r) for r in reqs if not r.startswith("lensblur[")} for name, reqs in raw.items()}
    return core, extras, raw


@functools.cache
def _providers() -> dict[str, str]:
    """Top-level module -> the installed distribution whose files hold it (extension modules included)."""
    out: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        listed = dist.read_text("top_level.txt")
        if listed is not None:
            tops = listed.split()
        else:   # RECORD lines are "path,hash,size"; only their first path component matters
            tops = [line.split("/", 1)[0].split(",", 1)[0] for line in (dist.read_text("RECORD") or "").splitlines()]
        for top in tops:
            if not top.endswith((".dist-info", ".egg-info", ".pth")) and top not in ("__pycache__", "..", "bin"):
                out.setdefault(top.split(".")[0], name)
    return out


def _distribution(module: str) -> str:
    found = _providers().get(module)
    if found:
        return found
    if module in UNINSTALLED:
        return UNINSTALLED[module]
    raise AssertionError(f"no installed distribution provides the module {module!r}")


def _third_party(module: str, local: set[str]) -> bool:
    top = module.split(".")[0]
    return top not in sys.stdlib_module_names and top not in local and top != "lensblur"


class _Imports(ast.NodeVisitor):
    """Third-party imports of one file: (module, line, at module level?, extra named by require)."""

    def __init__(self, local: set[str]):
        self.local, self.depth, self.found = local, 0, []

    def _add(self, module: str, node: ast.AST, extra: str | None = None) -> None:
        if _third_party(module, self.local):
            self.found.append((module.split(".")[0], node.lineno, self.depth == 0, extra))

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node):
        if node.level == 0 and node.module:
            self._add(node.module, node)

    def visit_Call(self, node):
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        extra = next((k.value.value for k in node.keywords if k.arg == "extra" and isinstance(k.value, ast.Constant)),
                     None)
        if name == "require" and node.args and isinstance(node.args[0], ast.Constant):
            self._add(node.args[0].value, node, extra)
        elif name == "cv2" and extra is not None:
            self._add("cv2", node, extra)
        self.generic_visit(node)


def _scan(folder: Path, *, also_local: tuple[Path, ...] = ()) -> list[tuple[str, str, int, bool, str | None]]:
    """Every import in ``folder``'s files, but of its own modules and those of ``also_local`` (folders the files
    put on ``sys.path`` themselves)."""
    local = {p.stem for where in (folder, *also_local) for p in where.rglob("*.py")}
    out = []
    for path in sorted(folder.rglob("*.py")):
        visitor = _Imports(local)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        out += [(str(path.relative_to(ROOT)), *found) for found in visitor.found]
    return out


def test_every_import_in_src_is_declared_where_it_is_needed():
    core, extras, _ = _declared()
    everywhere = core.union(*extras.values())
    problems = []
    for path, module, line, top_level, extra in _scan(SRC):
        dist = _distribution(module)
        where = f"{path}:{line} imports {module} ({dist})"
        if extra is not None:
            if dist not in core | extras.get(extra, set()):
                problems.append(f"{where} through require(extra={extra!r}), but lensblur[{extra}] does not declare it")
        elif top_level and dist not in core:
            problems.append(f"{where} when lensblur is imported, but it is not a core dependency")
        elif dist not in everywhere:
            problems.append(f"{where}, but no dependency or extra declares it")
    assert not problems, "\n".join(problems)


def test_nothing_is_declared_that_nothing_imports():
    core, extras, _ = _declared()
    used = {_distribution(module) for _, module, *_ in _scan(SRC)}
    unused = {f"{extra}: {dist}" for extra, dists in extras.items() if extra not in TOOL_EXTRAS
              for dist in dists if dist not in used}
    unused |= {f"core: {dist}" for dist in core if dist not in used}
    assert not unused, f"declared but imported nowhere in src/: {sorted(unused)}"


def test_all_holds_every_feature_extra():
    _, extras, raw = _declared()
    (spec,) = raw["all"]
    inside = set(re.fullmatch(r"lensblur\[(.*)\]", spec).group(1).split(","))
    features = set(extras) - TOOL_EXTRAS
    assert inside == features - set(NOT_IN_ALL)


def test_what_the_tests_import_is_installed_by_make_test():
    core, extras, _ = _declared()
    installed = core | extras["test"] | set().union(*(extras[e] for e in extras if e not in {*NOT_IN_ALL, "lint"}))
    missing = [f"{path}:{line} imports {module}" for path, module, line, *_ in _scan(TESTS, also_local=(ROOT / "bench",))
               if _distribution(module) not in installed]
    assert not missing, "\n".join(missing)
