"""The SMS channel's settings, read once from the environment (never from
credentials.yml): the Twilio auth token, the signed webhook URL, the
per-number rate limit, and why the channel refuses to serve, when it does.

The signed URL: Twilio signs "the Webhook URL set in Twilio" with the POST
parameters ("Secure webhooks",
https://www.twilio.com/docs/usage/webhooks/webhooks-security). That URL may
end in connection overrides (#rc=3&rp=all...), a fragment Twilio reads and
never sends; its docs do not say whether the signed URL keeps it, and
twilio-python's RequestValidator, handed the URL with it, hashes it with
it. So SMS_WEBHOOK_URL is the URL exactly as set in Twilio, and a signature
over it with or without the fragment is accepted: both take the auth token.
"""

import os
from dataclasses import dataclass
from typing import List, Mapping, Optional
from urllib.parse import urlsplit

from channels import sms_state
from channels.settings import whole_number


@dataclass(frozen=True)
class SmsSettings:
    """The channel's settings, read once from the environment."""

    auth_token: Optional[str]
    webhook_url: Optional[str]
    allow_unsigned: bool
    rate_limit: int
    rate_window: int
    # Why the channel refuses to serve, when it does.
    problem: Optional[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "SmsSettings":
        token = env.get("TWILIO_AUTH_TOKEN", "").strip() or None
        url = env.get("SMS_WEBHOOK_URL", "").strip() or None
        allow_unsigned = env.get("SMS_ALLOW_UNSIGNED", "").strip().lower() in ("1", "true", "yes")
        problem = None
        try:
            limit = whole_number(env, "SMS_RATE_LIMIT", 20, 10_000)
            window = whole_number(env, "SMS_RATE_WINDOW", 600, int(sms_state.KEEP_REPLIES.total_seconds()))
        except ValueError as error:
            limit, window, problem = 20, 600, str(error)
        if token and not url:
            problem = (
                "SMS_WEBHOOK_URL is not set: it must be the exact public URL configured in "
                "Twilio, which Twilio's signature covers"
            )
        elif url and not _is_web_url(url):
            problem = f"SMS_WEBHOOK_URL must be the http(s) URL set in Twilio, not {url!r}"
        elif not token and not allow_unsigned:
            problem = (
                "TWILIO_AUTH_TOKEN is not set, so Twilio's signature cannot be checked "
                "(SMS_ALLOW_UNSIGNED=true runs it unchecked, for local development only)"
            )
        return cls(token, url, allow_unsigned and not token, limit, window, problem)

    def signed_urls(self) -> List[str]:
        """The URL Twilio may have signed: as set, and without its fragment
        of connection overrides (see the module's docstring)."""
        url = self.webhook_url or ""
        bare = url.split("#", 1)[0]
        return [url] if bare == url else [url, bare]


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False
