"""Scrubbing of everything that leaves the process: one set of rules for every backend.

Sentry events, OTLP/console spans and the local inbox all pass through here (spans through
``_scrubbing_exporter``, events in ``Runtime.submit``), so no backend sees what another would not.
Two kinds of rules:

* key rules: a value under a sensitive name (header, query key, attribute, variable, JSON key) is
  replaced, unless the name is on the safe list (``max_tokens`` is not a secret);
* value rules: credentials recognised inside any text wherever they appear: bearer/basic tokens,
  ``sk-``/``pk-``-style API keys, JWTs, AWS access keys, Luhn-valid card numbers, ``password=...``
  pairs (plain, URL-encoded or JSON), URL userinfo (DSN secrets), and base64 blobs hiding any of these.

What was scrubbed is named (never its value) in an audit list, so a missing field can be explained.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

REDACTED = "[REDACTED]"

# The seeds' AutoSentryMiddleware list, matched as substrings of the lower-cased header name.
SENSITIVE_HEADER_PARTS: tuple[str, ...] = (
    "authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "token",
    "x-auth-token",
    "secret",
    "password",
    "session",
    "signature",
)

# The seeds' auto_sentry `_contains_sensitive_data` keywords (plus cookies, sessions, DSNs), matched as
# substrings of the lower-cased name with '-' read as '_'.
SENSITIVE_NAME_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credit_card",
    "card_number",
    "ssn",
    "authorization",
    "cookie",
    "session",
    "dsn",
    "signature",
)

# Names that contain a sensitive part but hold no secret (LLM token counts, our own key id and hash).
SAFE_NAMES: tuple[str, ...] = (
    "max_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "tokens",
    "token_count",
    "token_usage",
    "api_key_id",
    "api_key_hash",
    "has_api_key",
    "session_id_hash",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.request.max_tokens",
    "otel_sentry.user.api_key_id",
    "otel_sentry.user.api_key_hash",
)

# The last word of a name that says it describes a secret rather than holds one (token_kind,
# password_length, secret_name, api_key_header): a kind, a size, a place or a flag is not a credential.
BENIGN_LAST_WORDS: frozenset[str] = frozenset(
    {
        "kind",
        "type",
        "types",
        "count",
        "counts",
        "len",
        "length",
        "size",
        "limit",
        "limits",
        "name",
        "names",
        "expires",
        "expiry",
        "expiration",
        "ttl",
        "url",
        "uri",
        "endpoint",
        "usage",
        "hint",
        "policy",
        "strength",
        "scope",
        "scopes",
        "format",
        "version",
        "field",
        "fields",
        "header",
        "enabled",
        "required",
        "valid",
        "present",
        "exists",
        "source",
        "path",
        "file",
        "env",
        "var",
        "label",
        "algorithm",
        "alg",
        "prefix",
        "timeout",
        "status",
    }
)
_CAMEL_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _describes_a_secret(name: str) -> bool:
    """True for token_kind, passwordLength, SECRET_NAME: several words, the last one benign."""
    parts = [part for part in re.split(r"[^A-Za-z0-9]+", name) if part]
    if not parts:
        return False
    last = parts[-1]
    words = _CAMEL_WORDS.findall(last) if last != last.upper() else [last]
    return (len(parts) > 1 or len(words) > 1) and words[-1].lower() in BENIGN_LAST_WORDS


_URL_USERINFO = re.compile(
    r"(?P<scheme>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,30}://)(?P<userinfo>[^/@\s\"'<>]{1,512})@"
)
_SEP = r"(?:\s*(?:[=:]|%3[dDaA])\s*)"
# Any name ending in one of these (user_token, db_password, stripe_secret...), but not token counts.
# Bounded and anchored at the start of a name, so a long run of letters cannot backtrack quadratically.
_PAIR_NAMES = (
    r"(?:password|passwd|pwd|passphrase|secret|api[_-]?key|apikey|private[_-]?key|secret[_-]?key"
    r"|access[_-]?key|token|credentials?|session(?:[_-]?id)?|sessid)"
)
_PAIR_KEYS = rf"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]{{0,40}}?{_PAIR_NAMES}"
# Each rule with the literal words one of which any text it matches must contain (case-folded when the
# rule ignores case): a rule runs only on a text holding one of them. A regex pass over a text costs
# microseconds per rule; a substring test is a memchr. Together they made a captured error's
# scrubbing a tenth of what it was (bench/overhead.py).
_PAIR_WORDS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "api_key",
    "api-key",
    "apikey",
    "private",
    "access",
    "token",
    "credential",
    "session",
    "sessid",
)
# A value in quotes after a name in quotes or not: dict, dataclass and pydantic reprs
# ({'password': 'x'}, User(api_key='x')), SQL (WHERE password = 'x', "secret"='x'), YAML, JSON.
_QUOTED_VALUE = (  # also quoted with escaped quotes, as a repr of a text holding it shows them
    r"(?:\\'[^'\\\n]{0,4096}\\'"
    r'|\\"[^"\\\n]{0,4096}\\"'
    r"|'(?:[^'\\\n]|\\.){0,4096}'"
    r'|"(?:[^"\\\n]|\\.){0,4096}")'
)
# The value's characters that make it look like a credential rather than a word ("password reset").
_LOOKS_SECRET = r"(?=[^\s'\",;<>]{0,200}?[0-9!@#$%^&*+/=~])"
_SPACE_NAMES = (
    r"(?<![A-Za-z0-9])[A-Za-z0-9_.-]{0,40}?"
    r"(?:password|passwd|passphrase|pwd|secret|api[_ -]?key|apikey|private[_ -]?key|secret[_ -]?key"
    r"|session[_ -]?id|sessid)"
)
_HEX_NAMES = r"(?:key|secret|token|password|passwd|signature|apikey|auth|sessionid|session_id|sessid)"


def _keep_quotes(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = 2 if value.startswith("\\") else 1
    return f"{match.group(1)}{value[:quote]}{REDACTED}{value[-quote:]}"


_VALUE_RULES: tuple[
    tuple[str, re.Pattern[str], Callable[[re.Match[str]], str], tuple[str, ...], bool], ...
] = (
    (
        "pem",
        re.compile(
            r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----.{0,20000}?(?:-----END [A-Z ]{0,40}PRIVATE KEY-----|$)",
            re.S,
        ),
        lambda m: REDACTED,
        ("PRIVATE KEY",),
        False,
    ),
    (
        "json_pair",
        re.compile(rf'(?i)("(?:{_PAIR_KEYS})"\s*:\s*")((?:[^"\\]|\\.)*)(")'),
        lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}",
        _PAIR_WORDS,
        True,
    ),
    (
        "quoted_pair",
        re.compile(
            rf"""(?i)(['"`]?\b{_PAIR_KEYS}['"`]?(?:{_SEP}|\s+(?:=|==|!=|<>|like|is)\s+))({_QUOTED_VALUE})"""
        ),
        _keep_quotes,
        _PAIR_WORDS,
        True,
    ),
    (
        "auth_scheme",
        re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]{8,}"),
        lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}",
        ("bearer", "basic", "token", "digest"),
        True,
    ),
    (
        "pair",
        re.compile(rf"(?i)\b({_PAIR_KEYS}){_SEP}([^\s&,;'\"<>]+)"),
        lambda m: m.group(0)[: len(m.group(0)) - len(m.group(2))] + REDACTED,
        _PAIR_WORDS,
        True,
    ),
    (
        "hex_key",  # a 32+ hex-digit key after a sensitive name, whatever separates them
        re.compile(rf"(?i)(\b[A-Za-z0-9_.-]{{0,40}}?{_HEX_NAMES}\b[^A-Za-z0-9\n]{{1,4}})[0-9a-f]{{32,}}\b"),
        lambda m: f"{m.group(1)}{REDACTED}",
        ("key", "secret", "token", "password", "passwd", "signature", "auth", "sessid", "session"),
        True,
    ),
    (
        "space_pair",  # "password hunter2!", "private key: x" in prose, when the value looks like one
        re.compile(
            rf"(?i)({_SPACE_NAMES}(?:\s+(?:is|was|to|of|=|:))?\s+){_LOOKS_SECRET}(?!{re.escape(REDACTED)})([^\s'\",;<>]{{6,}})"
        ),
        lambda m: f"{m.group(1)}{REDACTED}",
        ("password", "passwd", "passphrase", "pwd", "secret", "api", "private", "session", "sessid"),
        True,
    ),
    (
        "jwt",
        re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        lambda m: REDACTED,
        ("eyJ",),
        False,
    ),
    (
        "api_key",
        re.compile(r"\b(?:sk|pk|rk)[-_](?:[A-Za-z]{2,8}[-_])?[A-Za-z0-9_-]{16,}"),
        lambda m: REDACTED,
        ("sk-", "sk_", "pk-", "pk_", "rk-", "rk_"),
        False,
    ),
    (
        # glued to the word before it ("keysk-proj-..."): only with a key's mixed case and digits,
        # so "task-management-service-name" stays
        "api_key",
        re.compile(
            r"(?<=[A-Za-z0-9])(?:sk|pk|rk)[-_](?:[A-Za-z]{2,8}[-_])?"
            r"(?=[A-Za-z0-9_-]{0,200}?[0-9])(?=[A-Za-z0-9_-]{0,200}?[A-Z])(?=[A-Za-z0-9_-]{0,200}?[a-z])"
            r"[A-Za-z0-9_-]{16,}"
        ),
        lambda m: REDACTED,
        ("sk-", "sk_", "pk-", "pk_", "rk-", "rk_"),
        False,
    ),
    (
        "live_key",
        re.compile(r"\b[a-z]{2,12}_(?:live|test|prod)_[A-Za-z0-9_]{8,}"),
        lambda m: REDACTED,
        ("_live_", "_test_", "_prod_"),
        False,
    ),
    (
        "aws_key",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
        lambda m: REDACTED,
        ("AKIA", "ASIA"),
        False,
    ),
    ("url_userinfo", _URL_USERINFO, lambda m: f"{m.group('scheme')}{REDACTED}@", ("://",), False),
)
# Second gates for the rules whose regex tries a name prefix at every position (tens of microseconds
# on a text that merely mentions "session"): one cheap pass that any text they match must pass.
_PREFILTERS: dict[str, re.Pattern[str]] = {  # searched in the case-folded text: no (?i), much faster
    "space_pair": re.compile(
        r"(?:password|passwd|passphrase|pwd|secret|api[_ -]?key|apikey|private[_ -]?key|session[_ -]?id"
        r"|sessid)(?:\s+(?:is|was|to|of|=|:))?\s+\S{6}"
    ),
    "hex_key": re.compile(r"[0-9a-f]{32}"),
    "pair": re.compile(rf"{_PAIR_NAMES}{_SEP}"),
    "quoted_pair": re.compile(rf"""{_PAIR_NAMES}['"`]?(?:{_SEP}|\s+(?:=|==|!=|<>|like|is)\s+)\\?['"]"""),
}
_CARD = re.compile(r"(?<![\w.])(?:\d(?:[ +-]|%20)?){12,18}\d(?![\w.])")  # not inside ids (hex trace ids)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
# Gates for the two rules without a literal word, on the text's bytes (bytes.translate is one C pass;
# the regexes are ASCII-only, so every non-ASCII byte is a separator).
_AS_CARD = (
    bytes(48 if chr(b).isdigit() else 32 if chr(b) in " +-%" else 124 for b in range(128)) + b"|" * 128
)  # digits -> "0", separators -> " " (deleted below), anything else breaks a number
_AS_BASE64 = bytes(b if chr(b).isalnum() or chr(b) in "+/_-=" else 32 for b in range(128)) + b" " * 128


def _has_card_digits(text: str) -> bool:
    """Whether 13 digits follow each other, separators apart (over-inclusive: _CARD decides)."""
    return b"0" * 13 in text.encode("utf-8", "surrogatepass").translate(_AS_CARD).replace(b" ", b"")


def _has_base64_run(text: str) -> bool:
    words = text.encode("utf-8", "surrogatepass").translate(_AS_BASE64).split()
    return any(len(word) >= 24 for word in words)


def is_harmless(value: Any) -> bool:
    """Values that cannot be a credential even under a sensitive name: flags and small counts
    (``max_tokens=512``). Large numbers can be card or social-security numbers."""
    return value is None or isinstance(value, bool) or (isinstance(value, (int, float)) and abs(value) < 1e8)


_NUMBER_TEXT = re.compile(r"[-+]?\d{1,12}(?:\.\d{1,12})?")


def is_harmless_under(name: str, value: Any) -> bool:
    """is_harmless, and also a number written as text under a plural ``...tokens`` name: token counts
    and prices per token (``price_per_1k_tokens='0.002'``, frame variables are reprs). A secret
    under such a name is a list of tokens, never a short decimal number."""
    if is_harmless(value):
        return True
    if not isinstance(value, str) or not name.lower().endswith("tokens"):
        return False
    text = value.strip().strip("'\"")
    return _NUMBER_TEXT.fullmatch(text) is not None and abs(float(text)) < 1e8


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for index, char in enumerate(digits):
        value = ord(char) - 48
        if index % 2 == parity:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _scrub_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D|%20", "", match.group(0).replace("%20", ""))
    # Card brands start with 2-6 (Mastercard, Amex, Visa, Discover...); the prefix halves false hits
    # on other long numbers (order ids) that happen to pass Luhn.
    ok = 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits)
    return REDACTED if ok else match.group(0)


_MAX_BASE64_BLOB = 64 * 1024
_CLEAN_TEXTS_BUDGET = 1_000_000  # characters remembered, about 1 MB
_CLEAN_TEXT_MAX_LENGTH = 64_000


class Scrubber:
    """The process's scrubbing rules; ``configure`` extends the defaults from settings."""

    def __init__(self, extra_keys: Iterable[str] = (), safe_keys: Iterable[str] = ()) -> None:
        self.name_parts = SENSITIVE_NAME_PARTS + tuple(k.lower().replace("-", "_") for k in extra_keys)
        self.safe = frozenset(SAFE_NAMES) | {k.lower() for k in safe_keys}
        self._name_cache: dict[str, bool] = {}
        # Texts found clean, by value: an error event repeats the same source lines, file names and
        # header values event after event. Only clean texts are kept, so no credential stays in it.
        self._clean_texts: dict[str, None] = {}
        self._clean_chars = 0

    def is_sensitive_name(self, name: str) -> bool:
        cached = self._name_cache.get(name)
        if cached is None:
            lowered = name.lower().replace("-", "_")
            last = lowered.rsplit(".", 1)[-1]
            cached = (
                lowered not in self.safe
                and last not in self.safe
                and any(part in lowered for part in self.name_parts)
                and not _describes_a_secret(name)
            )
            if len(self._name_cache) < 10_000:
                self._name_cache[name] = cached
        return cached

    def scrub_text(self, text: str, found: Optional[set[str]] = None) -> str:
        """text with every credential recognised in it replaced; rule names added to found."""
        if len(text) < 8 or text in self._clean_texts:
            return text
        original = text
        lowered = text.casefold()  # as the rules' IGNORECASE matching folds (e.g. U+017F is s)
        for rule, pattern, replace, words, ignores_case in _VALUE_RULES:
            haystack = lowered if ignores_case else text
            if not any(word in haystack for word in words):
                continue
            prefilter = _PREFILTERS.get(rule)
            if prefilter is not None and prefilter.search(lowered) is None:
                continue
            new = pattern.sub(replace, text)
            if new != text:
                text = new
                lowered = text.casefold()
                if found is not None:
                    found.add(rule)
        if _has_card_digits(text):
            new = _CARD.sub(_scrub_card, text)
            if new != text:
                text = new
                if found is not None:
                    found.add("card")
        if len(text) >= 24 and _has_base64_run(text):
            text = _BASE64.sub(lambda m: self._scrub_base64(m, found), text)
        if "%" in text:
            text = self._scrub_percent_encoded(text, found)
        if text == original:
            self._remember_clean(original)
            return original
        return text

    def _scrub_percent_encoded(self, text: str, found: Optional[set[str]]) -> str:
        """A text URL-encoded whole (a query value, a logged URL): quotes and spaces are %27, %22,
        %20, so the pair rules see no pair. The decoded text is scrubbed; when it held a credential
        the decoded, scrubbed text replaces the encoded one."""
        try:
            decoded = urllib.parse.unquote(text, errors="strict")
        except UnicodeDecodeError:
            decoded = urllib.parse.unquote(text)
        if decoded == text or ("%" in decoded and decoded.count("%") >= text.count("%")):
            return text
        inner: set[str] = set()
        scrubbed = self.scrub_text(decoded, inner)
        if scrubbed == decoded:
            return text
        if found is not None:
            found.add("url_encoded")
        return scrubbed

    def _remember_clean(self, text: str) -> None:
        """Remember a clean text (a stack trace too: the same error repeats, with the same text)."""
        if len(text) <= _CLEAN_TEXT_MAX_LENGTH:
            if self._clean_chars + len(text) > _CLEAN_TEXTS_BUDGET:
                self._clean_texts = {}
                self._clean_chars = 0
            self._clean_texts[text] = None
            self._clean_chars += len(text)

    def _scrub_base64(self, match: re.Match[str], found: Optional[set[str]]) -> str:
        blob = match.group(0)
        if len(blob) > _MAX_BASE64_BLOB:  # a file, not an encoded credential: not decoded
            return blob
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(blob + "=" * (-len(blob) % 4)).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                continue
            inner: set[str] = set()
            if self.scrub_text(decoded, inner) != decoded:
                if found is not None:
                    found.add("base64")
                return REDACTED
        return blob

    def scrub(self, value: Any, found: Optional[set[str]] = None, path: Any = None, depth: int = 0) -> Any:
        """Recursively scrub JSON-like data: sensitive keys, credentials inside strings.

        found collects the dotted paths of what was replaced. ``path`` is the position as a chain of
        (parent, key) pairs, joined only when something is found: an event has hundreds of nodes."""
        if isinstance(value, str):
            scrubbed = self.scrub_text(value)
            if scrubbed is not value and found is not None:  # unchanged text: the same object
                found.add(_dotted(path) or "value")
            return scrubbed
        if depth > 20:
            return value
        if isinstance(value, dict):
            result: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and len(key) >= 8:
                    clean_key = self.scrub_text(key)  # a key can be a secret itself ({'sk-...': 1})
                    if clean_key is not key:
                        if found is not None:
                            found.add(_dotted((path, "[key]")))
                        key = _unique_key(result, clean_key)
                if (
                    isinstance(key, str)
                    and self.is_sensitive_name(key)
                    and not (is_harmless_under(key, item) or item in ("", REDACTED))
                ):
                    result[key] = REDACTED
                    if found is not None:
                        found.add(_dotted((path, key)))
                elif isinstance(item, (str, dict, list, tuple)):
                    result[key] = self.scrub(item, found, (path, key), depth + 1)
                else:
                    result[key] = item
            return result
        if isinstance(value, (list, tuple)):
            if len(value) == 2 and self._is_sensitive_pair_name(value[0]) and not is_harmless(value[1]):
                # (name, value) pairs, e.g. raw ASGI headers [(b'x-api-key', b'...')] in frame locals
                if found is not None:
                    found.add(_dotted(path) or "value")
                return [self.scrub(value[0], found, path, depth + 1), REDACTED]
            return [self.scrub(item, found, path, depth + 1) for item in value]
        return value

    def _is_sensitive_pair_name(self, name: Any) -> bool:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if not isinstance(name, str) or len(name) > 64:
            return False
        if name[:2] in ("b'", 'b"'):
            name = name[1:]
        name = name.strip("'\"")
        return bool(name) and _HEADER_NAME.fullmatch(name) is not None and is_sensitive_header(name)


_HEADER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _unique_key(taken: Mapping[str, Any], key: str) -> str:
    """key, numbered when two redacted keys would collide ([REDACTED], [REDACTED] 2)."""
    candidate, number = key, 1
    while candidate in taken:
        number += 1
        candidate = f"{key} {number}"
    return candidate


def _dotted(path: Any) -> str:
    keys: list[str] = []
    while path is not None:
        path, key = path
        keys.append(str(key))
    return ".".join(reversed(keys))


_scrubber = Scrubber()


def configure(extra_keys: Iterable[str] = (), safe_keys: Iterable[str] = ()) -> Scrubber:
    """Install the process's rules (called once by the runtime from settings)."""
    global _scrubber
    _scrubber = Scrubber(extra_keys, safe_keys)
    return _scrubber


def scrubber() -> Scrubber:
    return _scrubber


def is_sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _scrubber.safe and (
        any(part in lowered for part in SENSITIVE_HEADER_PARTS) or _scrubber.is_sensitive_name(lowered)
    )


def is_sensitive_name(name: str) -> bool:
    return _scrubber.is_sensitive_name(name)


def scrub_text(text: str) -> str:
    return _scrubber.scrub_text(text)


def scrub_data(value: Any) -> Any:
    return _scrubber.scrub(value)


def sanitize_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header name -> value with sensitive values replaced; repeated headers are joined."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        clean = REDACTED if is_sensitive_header(key) else scrub_text(value)
        result[key] = f"{result[key]}, {clean}" if key in result else clean
    return result


def sanitize_query(query: str) -> str:
    """Query string with the values of sensitive keys, and credentials in any value, replaced."""
    if not query:
        return query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    clean = [(k, REDACTED if is_sensitive_name(k) else scrub_text(v)) for k, v in pairs]
    return query if clean == pairs else urllib.parse.urlencode(clean, safe="[]")


def sanitize_url(url: str) -> str:
    """URL without userinfo and with its query sanitized."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return scrub_text(mask_url_secrets(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    # Servers never see fragments: a '#' here sits inside an unencoded query value (a password).
    query = parts.query + ("#" + parts.fragment if parts.fragment else "")
    query = sanitize_query(query) if query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, scrub_text(parts.path), query, ""))


def mask_url_secrets(text: str) -> str:
    """Replace the userinfo of any URL in text (DSN keys, basic-auth passwords)."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def scrub_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a flat mapping with the values of sensitive keys replaced."""
    return {key: (REDACTED if is_sensitive_name(str(key)) else value) for key, value in values.items()}


def hash_credential(credential: str) -> str:
    """The seeds' API key hash: sha256 of the credential, first 16 hex chars."""
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()[:16]
