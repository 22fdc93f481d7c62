"""The import graph keeps its shape: media knows nothing of labelling, services never import
tasks (they enqueue by task name through labelstudio_ferv.queue)."""

import ast
from pathlib import Path

from tests.processes import django_snippet

ROOT = Path(__file__).resolve().parent.parent
APPS = ("annotations", "clips", "frontend", "labelstudio_ferv")
# Modules whose functions write (services) or read (selectors) and are called from tasks.
SERVICE_NAMES = {"services.py", "selectors.py", "pipeline.py", "intake.py", "exports.py"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Return every module a file imports (absolute names; relative ones resolved), anywhere
    in the file, with the line."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(p for p in [*parts, base] if p)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _sources(app: str) -> list[Path]:
    return sorted(p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts)


def test_the_parser_sees_relative_and_nested_imports(tmp_path):
    """The check can fail: it finds an import inside a function and a relative one."""
    module = ROOT / "clips" / "_probe_for_test.py"
    module.write_text("def f():\n    from annotations import services\nfrom . import tasks\n")
    try:
        names = [name for _, name in _imports(module)]
    finally:
        module.unlink()
    assert "annotations" in names and "clips.tasks" in names


def test_media_imports_nothing_of_labelling():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in _sources("clips")
        for line, name in _imports(path)
        if name == "annotations" or name.startswith("annotations.")
    ]
    assert offenders == []


def test_no_service_module_imports_a_tasks_module():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for app in APPS
        for path in _sources(app)
        if path.name in SERVICE_NAMES
        for line, name in _imports(path)
        if ".tasks." in f".{name}."
    ]
    assert offenders == []


def test_no_migration_of_clips_depends_on_annotations():
    """Media migrates on its own: no clips migration needs an annotations one, even indirectly."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    needed = {parent for node in graph.leaf_nodes("clips") for parent in graph.forwards_plan(node)}
    assert sorted(key for key in needed if key[0] == "annotations") == []


def test_every_json_body_goes_through_the_projects_parser():
    # DRF's own JSONParser turns deep nesting into a 500 and lets lone surrogates through;
    # labelstudio_ferv.parsers.JSONParser refuses both, so no API module may use DRF's.
    import re

    offenders = [
        str(path.relative_to(ROOT))
        for package in ("annotations", "clips", "frontend", "labelstudio_ferv")
        for path in (ROOT / package).rglob("*.py")
        if re.search(
            r"rest_framework\.parsers import[^\n]*\bJSONParser\b|parsers\.JSONParser\]",
            path.read_text(),
        )
    ]
    assert offenders == []


def test_loading_the_application_loads_no_numpy():
    # numpy costs each process about 20 MB: web processes serving annotators and the Celery
    # worker's main process never use it, so the application names it lazily (clips.lazy).
    # ffmpeg-python (transcoding) and markdown-it (guidelines) are loaded on first use too.
    lines = django_snippet(
        "import sys, labelstudio_ferv.urls, labelstudio_ferv.wsgi, annotations.tasks, clips.tasks\n"
        "for n in ('numpy', 'ffmpeg', 'markdown_it'):\n"
        "    print(n, type(sys.modules[n]).__name__ if sys.modules.get(n) else 'absent')"
    )
    loaded = dict(line.split() for line in lines)
    assert set(loaded) == {"numpy", "ffmpeg", "markdown_it"}
    assert all(kind == "absent" for kind in loaded.values()), loaded
