"""Conventions that keep the annotations app in one shape."""

from django.urls import URLPattern, URLResolver, get_resolver


def _views(patterns) -> list[type]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "view_class"):
            found.append(pattern.callback.view_class)
    return found


def test_every_annotations_view_is_named_view_and_lives_in_an_api_module():
    views = [
        v for v in _views(get_resolver().url_patterns) if v.__module__.startswith("annotations")
    ]
    assert len(views) > 20
    assert [v.__name__ for v in views if not v.__name__.endswith("View")] == []
    # One API module per area (api.py, review_api.py, export_api.py, ...), never a views.py mix.
    modules = {v.__module__ for v in views}
    assert {"annotations.review_api", "annotations.export_api"} <= modules
    assert [m for m in modules if not m.endswith("api")] == []
