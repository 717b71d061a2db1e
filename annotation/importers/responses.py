"""Unlabelled responses to compare: ``{"prompt": str | messages, "responses": [...]}``.

Each response is a string or ``{"text": str, "source": str?, "model": str?,
"generation_params": object?}``; ``source`` (or else ``model``) names where it came from.

Three or more responses become every pair of them (n·(n-1)/2 comparisons), not one n-way
comparison: the annotator page and ``Judgement.choice`` judge two responses at a time today.
The responses are stored once, so a ranking view can later build an n-way comparison from them
without re-importing. Duplicate texts within a row are compared once and noted.

>>> Responses().parse({"prompt": "Hi", "responses": ["Hello", {"text": "Hey", "model": "m1"}]})
ImportRow(messages=[{'role': 'user', 'content': 'Hi'}], responses=[ResponseIn(text='Hello', source='', \
generation_params={}), ResponseIn(text='Hey', source='m1', generation_params={})], preferred=None, notes=[])
"""

from annotation.importers.base import (
    Format,
    ImportRow,
    ResponseIn,
    RowError,
    Skip,
    check_prompt,
    messages_from,
    register,
    require,
    source_from,
    type_name,
)

MAX_RESPONSES = 10  # 45 pairs; more is almost certainly a malformed row


def _response(value: object, where: str) -> ResponseIn:
    if isinstance(value, str):
        return ResponseIn(value.strip())
    if not isinstance(value, dict):
        raise RowError(where, f"expected a string or an object with text, got {type_name(value)}")
    text = value.get("text")
    if not isinstance(text, str):
        raise RowError(
            f"{where}.text", "missing" if text is None else f"expected a string, got {type_name(text)}"
        )
    source = ""
    for key in ("source", "model"):
        if key in value and not source:
            source = source_from(value[key], f"{where}.{key}")
    params = value.get("generation_params", {})
    if not isinstance(params, dict):
        raise RowError(f"{where}.generation_params", f"expected an object, got {type_name(params)}")
    return ResponseIn(text.strip(), source=source, generation_params=params)


@register
class Responses(Format):
    name = "responses"
    label = "Prompt with responses to compare"
    help = 'JSON Lines of {"prompt": text or messages, "responses": [2+ strings or {"text", "source"}]}.'

    def parse(self, record: dict) -> ImportRow | Skip:
        if "prompt" not in record:
            raise RowError("prompt", "missing")
        prompt = check_prompt(messages_from(record["prompt"], "prompt"), "prompt")
        items = require(record, "responses", (list,), "a list")
        if not 2 <= len(items) <= MAX_RESPONSES:
            raise RowError("responses", f"expected 2 to {MAX_RESPONSES} responses, got {len(items)}")
        responses, seen, notes = [], set(), []
        for index, item in enumerate(items):
            response = _response(item, f"responses[{index}]")
            if response.text in seen:
                notes.append("a duplicate response in a row compared once")
                continue
            seen.add(response.text)
            responses.append(response)
        if len(responses) < 2:
            return Skip("fewer than two different responses")
        if any(not r.text for r in responses):
            notes.append("an empty reply kept")
        return ImportRow(messages=prompt, responses=responses, notes=notes)
