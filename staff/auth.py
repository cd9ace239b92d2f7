"""Staff accounts, sign-in with lockout, sessions and CSRF tokens.

A session is a random cookie value; the database keeps only its SHA-256,
with the session's CSRF token, which every form posts back. After
`max_failed_logins` wrong passwords in a row an account is locked for
`lockout_minutes`, even for the right password.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import List, Optional

import sqlalchemy as sa

from clinic import store
from staff import passwords

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
SESSION_COOKIE = "staff_session"
LOGIN_COOKIE = "staff_login"


class AccountError(ValueError):
    pass


@dataclass
class SignIn:
    ok: bool
    message: str = ""
    session_token: str = ""


@dataclass
class Session:
    username: str
    csrf_token: str
    expires_at: datetime


def _utc(moment: Optional[datetime]) -> Optional[datetime]:
    # SQLite gives back naive datetimes; everything here is stored in UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_account(username: str, password: str) -> None:
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError(
            "a user name is 2-64 lowercase letters, digits, dots, dashes or underscores"
        )
    try:
        passwords.check_strength(password)
    except passwords.WeakPassword as error:
        raise AccountError(str(error)) from None
    accounts = store.staff_accounts
    with store.engine().begin() as connection:
        exists = connection.execute(
            sa.select(accounts.c.id).where(accounts.c.username == username)
        ).first()
        if exists:
            raise AccountError(f"the account {username!r} already exists")
        connection.execute(
            accounts.insert().values(
                username=username,
                password_hash=passwords.hash_password(password),
                created_at=store.now(),
                failed_logins=0,
            )
        )


def set_password(username: str, password: str) -> None:
    """A new password; also unlocks the account and signs it out everywhere."""
    try:
        passwords.check_strength(password)
    except passwords.WeakPassword as error:
        raise AccountError(str(error)) from None
    with store.engine().begin() as connection:
        changed = connection.execute(
            store.staff_accounts.update()
            .where(store.staff_accounts.c.username == username)
            .values(password_hash=passwords.hash_password(password), failed_logins=0, locked_until=None)
        ).rowcount
        if not changed:
            raise AccountError(f"there is no account {username!r}")
        connection.execute(
            store.staff_sessions.delete().where(store.staff_sessions.c.username == username)
        )


def account_exists(username: str) -> bool:
    with store.engine().connect() as connection:
        return connection.execute(
            sa.select(store.staff_accounts.c.id).where(store.staff_accounts.c.username == username)
        ).first() is not None


def usernames() -> List[str]:
    with store.engine().connect() as connection:
        return [
            row.username
            for row in connection.execute(
                sa.select(store.staff_accounts.c.username).order_by(store.staff_accounts.c.username)
            )
        ]


def sign_in(username: str, password: str, max_failures: int, lockout_minutes: int, session_hours: int) -> SignIn:
    """Checks the password, counting failures; opens a session when right."""
    username = (username or "").strip().lower()
    accounts = store.staff_accounts
    now = store.now()
    wrong = SignIn(False, "Wrong user name or password.")
    with store.engine().begin() as connection:
        account = connection.execute(
            accounts.select().where(accounts.c.username == username)
        ).first()
        if account is None:
            passwords.verify_password(password or "", passwords.DUMMY_HASH)
            return wrong
        locked_until = _utc(account.locked_until)
        if locked_until and locked_until > now:
            minutes = max(1, round((locked_until - now).total_seconds() / 60))
            return SignIn(
                False,
                f"Too many wrong passwords: this account is locked for {minutes} more minute(s).",
            )
        if not passwords.verify_password(password or "", account.password_hash):
            failures = (account.failed_logins or 0) + 1
            values = {"failed_logins": failures}
            if failures >= max_failures:
                values = {"failed_logins": 0, "locked_until": now + timedelta(minutes=lockout_minutes)}
            connection.execute(accounts.update().where(accounts.c.id == account.id).values(**values))
            if "locked_until" in values:
                return SignIn(
                    False,
                    f"Too many wrong passwords: this account is locked for {lockout_minutes} minutes.",
                )
            return wrong
        connection.execute(
            accounts.update().where(accounts.c.id == account.id).values(failed_logins=0, locked_until=None)
        )
        token = secrets.token_urlsafe(32)
        connection.execute(
            store.staff_sessions.insert().values(
                token_hash=_token_hash(token),
                username=username,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(hours=session_hours),
            )
        )
        # old sessions are removed as new ones are made
        connection.execute(store.staff_sessions.delete().where(store.staff_sessions.c.expires_at < now))
    return SignIn(True, session_token=token)


def session_for(token: Optional[str]) -> Optional[Session]:
    if not token:
        return None
    sessions = store.staff_sessions
    with store.engine().connect() as connection:
        row = connection.execute(
            sessions.select().where(sessions.c.token_hash == _token_hash(token))
        ).first()
    if row is None or _utc(row.expires_at) <= store.now():
        return None
    return Session(row.username, row.csrf_token, _utc(row.expires_at))


def sign_out(token: Optional[str]) -> None:
    if token:
        with store.engine().begin() as connection:
            connection.execute(
                store.staff_sessions.delete().where(store.staff_sessions.c.token_hash == _token_hash(token))
            )


def csrf_matches(expected: Optional[str], given: Optional[str]) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
