"""The strict schema every provider gets, reading answers back, and Retry-After headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from printforge.llm.openai import retry_after_header, translate_status
from printforge.llm.schema import parse_answer, strict_schema
from printforge.models.spec import DesignSpec
from printforge.runtime.errors import AuthError, PermanentError, RateLimited, TransientError


def _objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            found.append(node)
        for v in node.values():
            found += _objects(v)
    elif isinstance(node, list):
        for v in node:
            found += _objects(v)
    return found


def test_design_schema_is_strict_everywhere() -> None:
    schema = strict_schema(DesignSpec)
    text = json.dumps(schema)
    assert '"oneOf"' not in text and '"discriminator"' not in text and '"default"' not in text
    objects = _objects(schema)
    assert len(objects) > 10
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])


def test_property_names_that_look_like_keywords_survive() -> None:
    from pydantic import BaseModel

    class Odd(BaseModel):
        title: str
        default: int = 1

    schema = strict_schema(Odd)
    assert set(schema["properties"]) == {"title", "default"}


@pytest.mark.parametrize(
    ("text", "truncated", "ok", "why"),
    [
        ('{"a": 1}', False, True, None),
        ('```json\n{"a": 1}\n```', False, True, None),
        ('{"a": ', False, False, "invalid JSON"),
        ('{"a": ', True, False, "cut off"),
        ('{"a": 1}', True, False, "cut off"),
        ("[1, 2]", False, False, "not an object"),
        ("sure! here it is", False, False, "invalid JSON"),
    ],
)
def test_parse_answer(text: str, truncated: bool, ok: bool, why: str | None) -> None:
    data, error = parse_answer(text, truncated=truncated)
    assert (data is not None) is ok
    if why:
        assert error is not None and why in error


def test_retry_after_forms() -> None:
    assert retry_after_header({"retry-after": "7"}) == 7.0
    assert retry_after_header({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    now = 1445412480.0  # 10 s before that date
    assert retry_after_header({"retry-after": date}, now=now) == pytest.approx(10.0)
    assert retry_after_header({"retry-after": "soon"}) is None
    assert retry_after_header({}) is None


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (429, RateLimited, True),
        (401, AuthError, False),
        (403, AuthError, False),
        (500, TransientError, True),
        (529, TransientError, True),
        (400, PermanentError, False),
    ],
)
def test_status_translation(status: int, kind: type[Exception], transient: bool) -> None:
    err = translate_status(status, "msg", {"retry-after": "3"}, "openai")
    assert isinstance(err, kind) and isinstance(err, TransientError) is transient
    if status == 429:
        assert isinstance(err, RateLimited) and err.retry_after == 3.0
        assert "retry after 3 s" in err.message  # the fallback reason says how long


def test_design_schema_is_inside_openais_strict_subset() -> None:
    # The fake server applies these rules to every strict request, as the real API does; a
    # string-length keyword on `name` made OpenAI refuse the whole schema.
    from tests.fakes.llm_server import strict_schema_problems

    assert strict_schema_problems(strict_schema(DesignSpec)) == []
    bad = {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}, "n": {"type": "integer"}},
        "required": ["name"],
    }
    found = " ".join(strict_schema_problems(bad))
    assert "'minLength' is not permitted" in found and "additionalProperties" in found
    assert "['n']" in found
