"""The exceptions that carry a message meant for the user.

The CLI turns any `HarnessError` into one line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""


class HarnessError(Exception):
    """Base class of every error caused by user input or the environment."""


class GrammarError(HarnessError):
    """An architecture string that does not parse, or names an unknown block."""


class ModelError(HarnessError):
    """A model that cannot be built: unknown timm name, input shape the stem cannot take."""


class DataError(HarnessError):
    """A dataset spec or file that cannot be read as asked."""


class ConfigError(HarnessError):
    """A configuration value, flag or search-space file that is not valid."""


class StoreError(HarnessError):
    """A results database that cannot be opened or is not in the expected shape."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type name when it has none.

    Library errors (PyTorch's, SQLAlchemy's) run to many lines; the user is shown one.
    """
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__
