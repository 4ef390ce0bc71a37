"""The one exception type that reaches the user as a sentence instead of a traceback.

Library code raises `UserError` for problems the user can fix (bad path, malformed line, unknown
config key); the CLI prints its message on one line and exits with code 2.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input, described in one sentence naming file, line and field."""
