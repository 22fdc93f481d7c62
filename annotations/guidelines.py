"""A campaign's guidelines: Markdown rendered to safe HTML, and example clips per class.

The Markdown is parsed with raw HTML turned off (markdown-it-py, CommonMark) and the result goes
through an allow-list sanitiser (nh3, the Ammonia library) anyway: the guidelines are written by
an admin and read by every annotator, so a ``<script>`` or a ``javascript:`` link in them must
never run in an annotator's browser.
"""

from __future__ import annotations

import functools

import nh3

from clips.models import Clip
from labelstudio_ferv.errors import ValidationError
from labelstudio_ferv.expressions import CLASS_KEYS

from .models import Campaign, Task

# Example clips a class may list (each is a small player in the workspace).
MAX_EXAMPLES_PER_CLASS = 6
MAX_GUIDELINES_CHARS = 50_000


@functools.cache
def _markdown():
    # markdown-it (about 4 MB) loads with the first guidelines rendered, not with every process.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        "table"
    )


_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "img",
    "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "td": set(), "th": set()}


def guidelines_html(text: str) -> str:
    """Return the Markdown ``text`` as HTML safe to insert into a page."""
    if not text.strip():
        return ""
    return nh3.clean(
        _markdown().render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def examples_check(*, campaign: Campaign, examples: dict) -> dict[str, list[int]]:
    """Return ``examples`` as ``{class key: [clip ids]}`` once every clip is in the campaign.

    Raise ValidationError naming the field for an unknown class, too many clips or a clip that
    is not one of the campaign's.
    """
    if not isinstance(examples, dict):
        raise ValidationError(
            "guideline_examples: an object {class: [clip ids]}.",
            details={"guideline_examples": ["An object {class: [clip ids]}."]},
        )
    clean: dict[str, list[int]] = {}
    for key, ids in examples.items():
        if key not in CLASS_KEYS:
            message = f"{key!r} is not a class: one of {', '.join(CLASS_KEYS)}."
            raise ValidationError(
                f"guideline_examples: {message}", details={"guideline_examples": [message]}
            )
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            message = f"{key}: a list of clip ids."
            raise ValidationError(
                f"guideline_examples: {message}", details={"guideline_examples": [message]}
            )
        if len(ids) > MAX_EXAMPLES_PER_CLASS:
            message = f"{key}: at most {MAX_EXAMPLES_PER_CLASS} example clips."
            raise ValidationError(
                f"guideline_examples: {message}", details={"guideline_examples": [message]}
            )
        if ids:
            clean[key] = list(dict.fromkeys(ids))
    wanted = {i for ids in clean.values() for i in ids}
    if wanted and campaign.pk is not None:
        present = set(
            Task.objects.filter(campaign=campaign, clip_id__in=wanted).values_list(
                "clip_id", flat=True
            )
        )
    else:
        present = set()
    missing = sorted(wanted - present)
    if missing:
        message = f"Clips not in this campaign: {', '.join(map(str, missing[:10]))}."
        raise ValidationError(
            f"guideline_examples: {message}", details={"guideline_examples": [message]}
        )
    return clean


def examples_clips(*, campaign: Campaign) -> dict[str, list[Clip]]:
    """Return the campaign's example clips per class key (one query), ready ones only."""
    examples = campaign.guideline_examples or {}
    ids = {i for values in examples.values() for i in values}
    clips = {c.pk: c for c in Clip.objects.filter(pk__in=ids, status="ready")}
    return {
        key: [clips[i] for i in values if i in clips]
        for key, values in examples.items()
        if any(i in clips for i in values)
    }
