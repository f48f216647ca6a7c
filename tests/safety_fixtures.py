"""Helpers of the safety tests: a pickle payload that proves whether a loader ran an attacker's code."""


class Payload:
    """Creates ``marker`` when unpickled (what an attacker's file would do with any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()',)
