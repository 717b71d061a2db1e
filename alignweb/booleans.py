"""The words that mean true or false in text: environment variables, form fields, command lines.

Plain Python, so the settings, the annotation app and the ML core (which imports no framework)
all read a boolean the same way.

>>> text_bool(" Yes ")
True
>>> text_bool("maybe") is None
True
"""

TRUE_TEXTS = frozenset({"true", "1", "yes", "on"})
FALSE_TEXTS = frozenset({"false", "0", "no", "off"})


def text_bool(raw: str) -> bool | None:
    """True or False for a boolean word (any case, outer spaces ignored); None for anything else."""
    word = raw.strip().lower()
    if word in TRUE_TEXTS:
        return True
    if word in FALSE_TEXTS:
        return False
    return None
