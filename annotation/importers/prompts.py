"""Prompts only, for responses generated later: ``{"prompt": str | messages}``.

>>> Prompts().parse({"prompt": [{"role": "system", "content": "Be brief."},
...                             {"role": "user", "content": "Hi"}]})
ImportRow(messages=[{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}], \
responses=[], preferred=None, notes=[])
"""

from annotation.importers.base import Format, ImportRow, RowError, check_prompt, messages_from, register


@register
class Prompts(Format):
    name = "prompts"
    label = "Prompts only"
    help = 'JSON Lines of {"prompt": text or a list of {"role", "content"} messages}; responses come later.'

    def parse(self, record: dict) -> ImportRow:
        if "prompt" not in record:
            raise RowError("prompt", "missing")
        return ImportRow(messages=check_prompt(messages_from(record["prompt"], "prompt"), "prompt"))
