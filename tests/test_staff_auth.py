"""Staff sign-in (staff/passwords.py, staff/auth.py) on a real SQLite database:
salted hashes, lockout after repeated failures, sessions and CSRF tokens."""

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from clinic import store
from staff import auth, passwords

PASSWORD = "a-long-enough-password"
MAX_FAILURES, LOCK_MINUTES, SESSION_HOURS = 5, 15, 8


# every test on a database of its own (conftest.py)
pytestmark = pytest.mark.usefixtures("database")


def sign_in(name: str, password: str) -> auth.SignIn:
    return auth.sign_in(name, password, MAX_FAILURES, LOCK_MINUTES, SESSION_HOURS)


def account(name: str):
    table = store.staff_accounts
    with store.engine().connect() as connection:
        return connection.execute(table.select().where(table.c.username == name)).first()


def test_a_hash_is_salted_and_verifies_only_the_right_password():
    first, second = passwords.hash_password(PASSWORD), passwords.hash_password(PASSWORD)
    assert first != second  # a new salt each time
    assert first.startswith("scrypt$") and PASSWORD not in first
    assert passwords.verify_password(PASSWORD, first) and passwords.verify_password(PASSWORD, second)
    assert not passwords.verify_password(PASSWORD + "x", first)
    assert not passwords.verify_password("", first)


def test_a_damaged_or_foreign_hash_never_verifies():
    good = passwords.hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = good.split("$")
    flipped = digest[:-3] + ("AAA" if digest[-3:] != "AAA" else "BBB")
    for stored in [f"{scheme}${n}${r}${p}${salt}${flipped}", "md5$" + hashlib.md5(PASSWORD.encode()).hexdigest(),
                   "", "scrypt$not$a$hash", good.replace(salt, "c2FsdA==")]:
        assert not passwords.verify_password(PASSWORD, stored)


def test_an_account_keeps_only_the_hash_and_refuses_weak_passwords_and_bad_names():
    auth.create_account("Reception", PASSWORD)
    stored = account("reception")
    assert stored is not None and PASSWORD not in stored.password_hash
    assert passwords.verify_password(PASSWORD, stored.password_hash)
    with pytest.raises(auth.AccountError, match="already exists"):
        auth.create_account("reception", PASSWORD)
    with pytest.raises(auth.AccountError, match="at least"):
        auth.create_account("frontdesk", "short")
    with pytest.raises(auth.AccountError, match="user name"):
        auth.create_account("no spaces allowed", PASSWORD)


def test_sign_in_opens_a_session_whose_token_is_not_stored():
    auth.create_account("reception", PASSWORD)
    assert not sign_in("reception", "wrong password!").ok
    result = sign_in("reception", PASSWORD)
    assert result.ok and len(result.session_token) >= 40
    session = auth.session_for(result.session_token)
    assert session.username == "reception" and len(session.csrf_token) >= 40
    with store.engine().connect() as connection:
        stored = [row.token_hash for row in connection.execute(store.staff_sessions.select())]
    assert stored == [hashlib.sha256(result.session_token.encode()).hexdigest()]
    assert auth.session_for(result.session_token + "x") is None
    assert auth.session_for("") is None


def test_sign_out_and_expiry_end_a_session():
    auth.create_account("reception", PASSWORD)
    first, second = sign_in("reception", PASSWORD), sign_in("reception", PASSWORD)
    auth.sign_out(first.session_token)
    assert auth.session_for(first.session_token) is None
    assert auth.session_for(second.session_token) is not None  # another device stays signed in
    with store.engine().begin() as connection:
        connection.execute(store.staff_sessions.update().values(expires_at=store.now() - timedelta(seconds=1)))
    assert auth.session_for(second.session_token) is None


def test_lockout_after_repeated_failures_even_for_the_right_password():
    auth.create_account("reception", PASSWORD)
    for attempt in range(MAX_FAILURES - 1):
        assert sign_in("reception", f"guess number {attempt}").message == "Wrong user name or password."
    locked = sign_in("reception", "the last guess")
    assert not locked.ok and "locked" in locked.message
    assert not sign_in("reception", PASSWORD).ok  # the right password is refused while locked
    assert "locked" in sign_in("reception", PASSWORD).message
    # once the lock has passed, the right password works and the count starts again
    with store.engine().begin() as connection:
        connection.execute(
            store.staff_accounts.update().values(locked_until=store.now() - timedelta(seconds=1))
        )
    assert sign_in("reception", PASSWORD).ok
    assert account("reception").failed_logins == 0 and account("reception").locked_until is None


def test_a_success_resets_the_failure_count():
    auth.create_account("reception", PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        sign_in("reception", "wrong password!")
    assert sign_in("reception", PASSWORD).ok
    for _ in range(MAX_FAILURES - 1):
        assert not sign_in("reception", "wrong password!").ok
    assert sign_in("reception", PASSWORD).ok  # never reached five in a row


def test_an_unknown_name_gets_the_same_answer_as_a_wrong_password():
    auth.create_account("reception", PASSWORD)
    assert sign_in("nobody", PASSWORD).message == sign_in("reception", "wrong password!").message


def test_a_new_password_unlocks_and_signs_out_everywhere():
    auth.create_account("reception", PASSWORD)
    session = sign_in("reception", PASSWORD)
    for _ in range(MAX_FAILURES):
        sign_in("reception", "wrong password!")
    auth.set_password("reception", "another-long-password")
    assert auth.session_for(session.session_token) is None
    assert sign_in("reception", "another-long-password").ok


def test_csrf_tokens_must_match_exactly():
    assert auth.csrf_matches("abc123", "abc123")
    for given in [None, "", "abc12", "abc1234", "ABC123"]:
        assert not auth.csrf_matches("abc123", given)
    assert not auth.csrf_matches(None, None) and not auth.csrf_matches("", "")


def test_staff_tables_hold_nothing_erase_sender_would_touch():
    # "forget me" deletes a visitor's rows from tables with a sender_id column;
    # the staff tables have none, so a visitor cannot erase the audit trail
    for table in (store.staff_accounts, store.staff_sessions, store.staff_audit, store.published_models):
        assert "sender_id" not in table.c
    assert sa.inspect(store.engine()).has_table("staff_audit")
