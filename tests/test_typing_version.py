"""The typed extracts' version is bumped on purpose, and this test fails when it was not.

Every extract ever received is typed again when the version kept with it changes
(``typing_version``), so the version is made of constants, never of the code's text: editing a
comment types nothing again. What the typing depends on is fingerprinted here, one fingerprint
per constant, and compared with the one recorded for the constant's current value:

- the SQL files, with comments and whitespace normalized (of macros.sql, only the macros the
  model's SQL or the Python covered calls, directly or not);
- the Python definitions (functions, classes, constants), as their AST without docstrings,
  comments or type annotations, each with the definitions of its own module that it uses;
- the model's and the source's settings that shape the typed rows.

When it fails after a change of what the typing produces: bump the constant it names, run it
again, and paste the line it prints into ``RECORDED``. Only when the typed rows cannot differ
(a reformatting that the normalization does not see through, a rename), you may record the new
fingerprint under the current value instead: then nothing is typed again.

Over 300 lines: the fingerprinting it needs (SQL normalized, ASTs without docstrings) is its
own, kept beside the table it checks.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from auto_refunds import card_numbers, file_lines, models, typing_version
from auto_refunds.landing import SOURCES

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"

# {constant: {value: fingerprint of what it covers at that value}}
RECORDED = {
    "TRANSACTIONS_TYPING_VERSION": {
        1: "c2007d1f96216918dcd8ead95704058e7353a046cfda931cb71b275a76265a4b",
        2: "c80d06b6841b6945a950ca88265846bfb8f916f1ae0d6c71401bcfe6417dc093",
        3: "0d35ce3181a11244f9c97fa6b9ab0a38578d907c2dec6f84d88742b3576073d6",
    },
    "LINES_VERSION": {
        1: "7e8ebf43a3e774efdfa4e52da2899ff0f1019490c0b966c2e25ebb7f68af099b",
        2: "3deab3b63dc3f06f9e830ea4316dc9000ac1b7ad79067dd6a60ae533c234d77f",
        3: "21c2894d8ede315fb605452eb8f7cf09f1c3d5c5722e8e7833d04271f4d62bf2",
    },
    "CARD_NUMBERS_VERSION": {
        1: "a5f20917c247ad13ba7075336255cdb617fa5849b61219a8a9f6e22384102329",
    },
}


@dataclass(frozen=True)
class Covered:
    """What one version constant covers."""

    module: str
    """Where the constant is."""
    sql: tuple[str, ...] = ()
    """SQL files under include/sql, whole."""
    python: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(module, names): its definitions, and those of the same module they use."""
    per_file_kind: str | None = None
    """The kind whose model (its SQL, macros and settings) and source settings it covers."""


COVERED = {
    "TRANSACTIONS_TYPING_VERSION": Covered(
        "typing_version",
        python=(("extract_typing", ("_type_file", "_create_table", "_supersede")),),
        per_file_kind="transactions",
    ),
    "LINES_VERSION": Covered(
        "file_lines",
        python=(
            ("file_lines", ("lines_query", "insertion_order")),
            ("pipe_feed", ("readable", "is_marked", "MARKS")),
            ("fingerprints", ("Reading", "reading_of", "MAX_LINE_BYTES")),
            ("csv_records", ("join_quoted_line_breaks", "split_fields", "quote_field")),
            ("field_masking", ("masked_line_sql", "mask_fields", "masking")),
            ("layout", ("is_identifier",)),
        ),
    ),
    "CARD_NUMBERS_VERSION": Covered(
        "card_numbers",
        sql=("warehouse/card_numbers.sql",),
        python=(
            (
                "card_numbers",
                ("contains", "mask", "register", "SQL_FUNCTIONS", "MAYBE_A_CARD_NUMBER"),
            ),
        ),
    ),
}

# What the covered definitions use from other modules of the package that no version covers,
# and why that cannot change a typed row.
NOT_COVERED = {
    ("file_lines", "InputFileError"): "the error of a file that cannot be typed at all",
    ("file_lines", "read_file"): "runs the statement it is given; only its error is its own",
    ("fingerprints", "fingerprint"): "checks the file is the one registered; types nothing",
    ("landing", "SOURCES"): "the source's header, masking and landed line are fingerprinted",
}


# --- SQL ---------------------------------------------------------------------------------

_SQL_TOKEN = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\s+|\w+|.""", re.DOTALL
)


def normalized_sql(text: str) -> str:
    """``text`` without comments, its tokens separated by one space where two words meet and by
    nothing elsewhere; string literals and quoted names as they are."""
    tokens = [
        token
        for token in _SQL_TOKEN.findall(text)
        if not (token.isspace() or token.startswith(("--", "/*")))
    ]
    out: list[str] = []
    for token in tokens:
        if out and _wordy(out[-1][-1]) and _wordy(token[0]):
            out.append(" ")
        out.append(token)
    return "".join(out)


def _wordy(char: str) -> bool:
    return char.isalnum() or char in "_'\""


def _macros(text: str) -> dict[str, str]:
    """The normalized statements of a macro file, by the name of the macro each creates."""
    found = {}
    for statement in normalized_sql(text).split(";"):
        created = re.match(r"create(?: or replace)?(?: temp| temporary)? macro (\w+)", statement)
        if created:
            found[created[1]] = statement
        elif statement.strip():
            found[f"statement {len(found)}"] = statement
    return found


def _macros_used(sql: str, macros: dict[str, str]) -> list[str]:
    """The macros ``sql`` calls, and those they call, as their normalized statements."""
    used: set[str] = set()
    todo = [sql]
    while todo:
        words = set(re.findall(r"\w+", todo.pop()))
        for name in sorted(words & macros.keys() - used):
            used.add(name)
            todo.append(macros[name])
    return [macros[name] for name in sorted(used)]


# --- Python ------------------------------------------------------------------------------


class _Semantic(ast.NodeTransformer):
    """Drops docstrings and type annotations (``from __future__ import annotations``: they run
    nothing). Comments are never in the AST."""

    def _body(self, node):
        self.generic_visit(node)
        body = node.body
        first = body[0].value if body and isinstance(body[0], ast.Expr) else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node):
        node.returns = None
        for arg in [
            *node.args.posonlyargs,
            *node.args.args,
            *node.args.kwonlyargs,
            node.args.vararg,
            node.args.kwarg,
        ]:
            if arg is not None:
                arg.annotation = None
        return self._body(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = _body


def _dump(node) -> str:
    """A dump of ``node`` that leaves out empty fields, alike on every Python version."""
    if isinstance(node, ast.AST):
        fields = [
            f"{name}={_dump(value)}"
            for name in node._fields
            if (value := getattr(node, name, None)) is not None and value != []
        ]
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return "[" + ", ".join(_dump(item) for item in node) + "]"
    return repr(node)


@dataclass
class _Module:
    name: str
    definitions: dict[str, ast.AST]
    # Names bound by imports from the package: to (module, name), or to a module (module, None).
    imported: dict[str, tuple[str, str | None]]


def _parse(name: str) -> _Module:
    tree = ast.parse(inspect.getsource(importlib.import_module(f"auto_refunds.{name}")))
    definitions: dict[str, ast.AST] = {}
    for node in tree.body:
        node = _Semantic().visit(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            definitions[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for bound in ast.walk(target):
                    if isinstance(bound, ast.Name):
                        definitions[bound.id] = node
    return _Module(name, definitions, _imports(tree))


def _imports(tree: ast.AST) -> dict[str, tuple[str, str | None]]:
    imported: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "auto_refunds":
            for alias in node.names:
                imported[alias.asname or alias.name] = (alias.name, None)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("auto_refunds."):
            module = node.module.removeprefix("auto_refunds.")
            for alias in node.names:
                imported[alias.asname or alias.name] = (module, alias.name)
    return imported


def python_covered(module_name: str, roots: tuple[str, ...]) -> tuple[list[str], set]:
    """The dumps of ``roots`` and of the definitions of their module they use, by name; and
    what they use from other modules of the package, as (module, name)."""
    module = _parse(module_name)
    missing = set(roots) - module.definitions.keys()
    assert not missing, f"auto_refunds.{module_name} has no {sorted(missing)}: update COVERED"
    covered: set[str] = set()
    outside: set[tuple[str, str]] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in covered:
            continue
        covered.add(name)
        node = module.definitions[name]
        local = {**module.imported, **_imports(node)}
        for used in ast.walk(node):
            if isinstance(used, ast.Name) and used.id in module.definitions:
                todo.append(used.id)
            elif isinstance(used, ast.Name) and local.get(used.id, (None, None))[1]:
                outside.add(local[used.id])
            elif (
                isinstance(used, ast.Attribute)
                and isinstance(used.value, ast.Name)
                and used.value.id in local
                and local[used.value.id][1] is None
            ):
                outside.add((local[used.value.id][0], used.attr))
    dumps, seen = [], set()
    for name in sorted(covered):
        node = module.definitions[name]
        if id(node) not in seen:
            seen.add(id(node))
            dumps.append(f"{module_name}.{name}: {_dump(node)}")
    return dumps, {(module_name, name) for name in covered} | {("uses", *o) for o in outside}


# --- The fingerprints --------------------------------------------------------------------


def _per_file_model(kind: str) -> models.Model:
    return next(
        model
        for model in (*models.DAILY_MODELS, *models.RECONCILIATION_MODELS)
        if model.per_file_kind == kind
    )


def covered_by(constant: str) -> tuple[list[str], set]:
    """What ``constant`` covers, as text; and the Python it covers and uses, as in
    ``python_covered``."""
    covered = COVERED[constant]
    parts = [f"{name}: {normalized_sql((SQL_DIR / name).read_text())}" for name in covered.sql]
    names: set = set()
    for module, roots in covered.python:
        dumps, found = python_covered(module, roots)
        parts += dumps
        names |= found
    if covered.per_file_kind:
        model = _per_file_model(covered.per_file_kind)
        model_sql = [
            normalized_sql(model.path(SQL_DIR, suffix).read_text())
            for suffix in (".sql", ".repeated_keys.sql", ".supersede.sql")
        ]
        macros = _macros((SQL_DIR / "warehouse" / "macros.sql").read_text())
        source = SOURCES[covered.per_file_kind]
        # The macros its SQL calls, and those the Python covered calls (line_id_hash).
        parts += _macros_used(" ".join(model_sql + parts), macros)
        parts += model_sql
        parts.append(repr((model.relation, model.per_file_key, model.per_file_uncompressed)))
        parts.append(repr((source.header, source.masked_by_staging, source.landed_line())))
    return parts, names


def fingerprint_of(constant: str) -> str:
    return hashlib.sha256("\n\0".join(covered_by(constant)[0]).encode()).hexdigest()


def _value(constant: str) -> int:
    module = importlib.import_module(f"auto_refunds.{COVERED[constant].module}")
    return getattr(module, constant)


@pytest.mark.parametrize("constant", sorted(COVERED))
def test_the_typing_did_not_change_without_a_bump_of_its_version(constant):
    value, found = _value(constant), fingerprint_of(constant)
    recorded = RECORDED[constant]
    where = f"plugins/auto_refunds/{COVERED[constant].module}.py"
    if value in recorded:
        assert recorded[value] == found, (
            f"the typing changed: bump {constant} in {where} (now {value}) and record the new "
            f"fingerprint here, in tests/test_typing_version.py, RECORDED[{constant!r}]: "
            f'{value + 1}: "{found}",'
        )
    else:
        pytest.fail(
            f"{constant} is {value}, whose fingerprint is not recorded: add to "
            f'RECORDED[{constant!r}] in tests/test_typing_version.py: {value}: "{found}",'
        )


def test_what_the_covered_code_uses_elsewhere_is_covered_or_cannot_change_a_typed_row():
    covered: set = set()
    used: set = set()
    for constant in COVERED:
        for entry in covered_by(constant)[1]:
            (used.add(entry[1:]) if entry[0] == "uses" else covered.add(entry))
    unaccounted = used - covered - NOT_COVERED.keys()
    assert not unaccounted, (
        f"the typing uses {sorted(unaccounted)}, which no version covers: add each to the "
        "COVERED of the version it changes, or to NOT_COVERED with why it cannot change a typed row"
    )


def test_every_model_typed_file_by_file_has_a_version():
    for model in (*models.DAILY_MODELS, *models.RECONCILIATION_MODELS):
        if model.per_file_kind:
            assert typing_version.typing_version(model.per_file_kind)
            assert any(c.per_file_kind == model.per_file_kind for c in COVERED.values())


@pytest.mark.parametrize(
    ("module", "constant"),
    [
        (typing_version, "TRANSACTIONS_TYPING_VERSION"),
        (file_lines, "LINES_VERSION"),
        (card_numbers, "CARD_NUMBERS_VERSION"),
    ],
)
def test_a_bump_of_any_version_types_the_extracts_again(module, constant, monkeypatch):
    before = typing_version.typing_version("transactions")
    monkeypatch.setattr(module, constant, getattr(module, constant) + 1)
    assert typing_version.typing_version("transactions") != before


def test_comments_and_layout_are_not_changes():
    assert normalized_sql("select a,  b -- why\nfrom t /* x */ where c = 'a  -- b'") == (
        normalized_sql("SELECT".lower() + " a , b\n\n  from t where c='a  -- b'")
    )
    assert normalized_sql("select 'a  b'") != normalized_sql("select 'a b'")

    def dumped(source: str) -> str:
        return _dump(_Semantic().visit(ast.parse(source)))

    assert dumped('def f(x: int) -> int:\n    """Doc."""\n    return x  # why\n') == dumped(
        "def f(x):\n    return x\n"
    )
    assert dumped("def f(x):\n    return x + 1\n") != dumped("def f(x):\n    return x + 2\n")


def test_a_definition_is_covered_with_what_it_uses_of_its_module():
    _, names = python_covered("pipe_feed", ("readable",))
    assert {("pipe_feed", "_escaped"), ("pipe_feed", "_FEED_JOIN_SECONDS")} <= names
    assert ("uses", "card_numbers", "mask") in names
