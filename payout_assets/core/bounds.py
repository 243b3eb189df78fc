"""What one upstream answer may cost: past any bound the answer is refused, never trusted.

An answer is read by a process that fetches thousands of them; a single one must not be
able to take its memory (a huge body), its time (a huge number, a day-long `Retry-After`)
or its storage (a page of HTML copied into the reason of every id of a batch).
"""

from dataclasses import dataclass, field

ELLIPSIS = "…"


@dataclass(frozen=True)
class AnswerBounds:
    """The bounds, each a Goldsky resource setting (see the README's failure table).

        bounds = AnswerBounds(max_reason_chars=200, secrets=("the-api-key",))
        bounds.reason(str(error))  # short, and never holding a secret
    """

    max_body_bytes: int = 4 * 2**20  # a full 1,000-condition answer is ~250 KB
    max_reason_chars: int = 300
    max_number_digits: int = 100  # a UInt32 has 10; a 34-digit BigDecimal share needs 34
    max_decimal_exponent: int = 100  # |exponent| of a BigDecimal, so 10**exponent stays cheap
    max_retry_after_seconds: float = 300.0  # longer: the request fails; the sensor tries tomorrow
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def reason(self, text: str) -> str:
        """`text` without secrets, cut to `max_reason_chars` characters.

        Secrets go before the cut, so no cut leaves part of one behind; `text` is never
        longer than an answer body, so the replacements stay cheap."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        if len(text) > self.max_reason_chars:
            text = text[: self.max_reason_chars - len(ELLIPSIS)] + ELLIPSIS
        return text
