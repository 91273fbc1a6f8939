"""String nodes with ComfyUI's names, inputs and behaviour (comfy_extras/nodes_string.py).

The regex nodes take Python's `re` syntax; an invalid pattern gives False or "" (Regex Match,
Regex Extract), as in ComfyUI, except in Regex Replace, where it is an error.
"""

from __future__ import annotations

import re

from sigmagraph.engine import Boolean, Combo, Int, String, node

from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

CATEGORY = "utils/string"
TEXT = String("", multiline=True)
CASE_MODES = {"UPPERCASE": str.upper, "lowercase": str.lower, "Capitalize": str.capitalize, "Title Case": str.title}
TRIM_MODES = {"Both": str.strip, "Left": str.lstrip, "Right": str.rstrip}
COMPARE_MODES = {"Starts With": str.startswith, "Ends With": str.endswith, "Equal": str.__eq__}
EXTRACT_MODES = ["First Match", "All Matches", "First Group", "All Groups"]
JOIN = "\n"  # how Regex Extract joins several results


def regex_flags(case_insensitive: bool, multiline: bool, dotall: bool) -> int:
    """The `re` flags of the regex nodes' three switches."""
    return ((re.IGNORECASE if case_insensitive else 0) | (re.MULTILINE if multiline else 0)
            | (re.DOTALL if dotall else 0))


def regex_extract(string: str, pattern: str, mode: str, flags: int, group_index: int) -> str:
    """Regex Extract's result: the first match, all matches, or group `group_index` of the first or all."""
    if mode == "First Match":
        match = re.search(pattern, string, flags)
        return match.group(0) if match else ""
    if mode == "All Matches":
        # findall gives tuples of groups for a pattern with several groups; ComfyUI keeps the first.
        return JOIN.join(m[0] if isinstance(m, tuple) else m for m in re.findall(pattern, string, flags))
    if mode == "First Group":
        match = re.search(pattern, string, flags)
        return match.group(group_index) if match and len(match.groups()) >= group_index else ""
    return JOIN.join(m.group(group_index) for m in re.finditer(pattern, string, flags)
                     if m.groups() and len(m.groups()) >= group_index)


@node(returns=["STRING"], category=CATEGORY, display_name="Concatenate")
def StringConcatenate(string_a: str = TEXT, string_b: str = TEXT, delimiter: str = String("")):
    """string_a, the delimiter, then string_b."""
    return delimiter.join((string_a, string_b))


@node(returns=["STRING"], category=CATEGORY, display_name="Substring")
def StringSubstring(string: str = TEXT, start: int = Int(0), end: int = Int(0)):
    """string[start:end], Python's slice (negative positions count from the end)."""
    return string[start:end]


@node(returns=[("INT", "length")], category=CATEGORY, display_name="Length")
def StringLength(string: str = TEXT):
    """The number of characters."""
    return len(string)


@node(returns=["STRING"], category=CATEGORY, display_name="Case Converter")
def CaseConverter(string: str = TEXT, mode=Combo(list(CASE_MODES))):
    """The string in upper, lower, capitalized or title case."""
    return CASE_MODES[mode](string)


@node(returns=["STRING"], category=CATEGORY, display_name="Trim")
def StringTrim(string: str = TEXT, mode=Combo(list(TRIM_MODES))):
    """The string without the whitespace at both ends, the left or the right."""
    return TRIM_MODES[mode](string)


@node(returns=["STRING"], category=CATEGORY, display_name="Replace")
def StringReplace(string: str = TEXT, find: str = TEXT, replace: str = TEXT):
    """Every occurrence of `find` replaced by `replace`."""
    return string.replace(find, replace)


@node(returns=[("BOOLEAN", "contains")], category=CATEGORY, display_name="Contains")
def StringContains(string: str = TEXT, substring: str = TEXT, case_sensitive: bool = Boolean(True)):
    """Whether `substring` occurs in the string."""
    return substring in string if case_sensitive else substring.lower() in string.lower()


@node(returns=["BOOLEAN"], category=CATEGORY, display_name="Compare")
def StringCompare(string_a: str = TEXT, string_b: str = TEXT, mode=Combo(list(COMPARE_MODES)),
                  case_sensitive: bool = Boolean(True)):
    """Whether string_a starts with, ends with, or equals string_b."""
    if not case_sensitive:
        string_a, string_b = string_a.lower(), string_b.lower()
    return COMPARE_MODES[mode](string_a, string_b)


@node(returns=[("BOOLEAN", "matches")], category=CATEGORY, display_name="Regex Match")
def RegexMatch(string: str = TEXT, regex_pattern: str = TEXT, case_insensitive: bool = Boolean(True),
               multiline: bool = Boolean(False), dotall: bool = Boolean(False)):
    """Whether the pattern matches somewhere in the string (False for an invalid pattern)."""
    try:
        return re.search(regex_pattern, string, regex_flags(case_insensitive, multiline, dotall)) is not None
    except re.error:
        return False


@node(returns=["STRING"], category=CATEGORY, display_name="Regex Extract")
def RegexExtract(string: str = TEXT, regex_pattern: str = TEXT, mode=Combo(EXTRACT_MODES),
                 case_insensitive: bool = Boolean(True), multiline: bool = Boolean(False),
                 dotall: bool = Boolean(False), group_index: int = Int(1, min=0, max=100)):
    """The matched text: first match, all matches (one per line), or a group of the first or of all matches."""
    try:
        return regex_extract(string, regex_pattern, mode, regex_flags(case_insensitive, multiline, dotall),
                             group_index)
    except re.error:
        return ""


@node(returns=["STRING"], category=CATEGORY, display_name="Regex Replace",
      description="Find and replace text using regex patterns.")
def RegexReplace(string: str = TEXT, regex_pattern: str = TEXT, replace: str = TEXT,
                 case_insensitive: bool = Boolean(True, optional=True), multiline: bool = Boolean(False, optional=True),
                 dotall: bool = Boolean(False, optional=True, tooltip="When enabled, the dot (.) character will match "
                                        "any character including newline characters."),
                 count: int = Int(0, min=0, max=100, optional=True,
                                  tooltip="Maximum number of replacements to make; 0 replaces all occurrences.")):
    """re.sub: matches replaced by `replace` (with \\1 group references), at most `count` times (0: all)."""
    return re.sub(regex_pattern, replace, string, count=count, flags=regex_flags(case_insensitive, multiline, dotall))
