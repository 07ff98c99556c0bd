"""Logins kept across reloads: a token stands for its credentials only until it expires or is
forgotten, and never contains them."""

from dashboard.logins import Credentials, KeptLogins


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_holds_until_its_time_is_up_or_it_is_forgotten():
    clock = Clock()
    kept = KeptLogins(60, clock)
    alice, bob = Credentials("alice", "secret-a"), Credentials("bob", "secret-b")
    first, second = kept.keep(alice), kept.keep(bob)

    assert first != second and "secret" not in first + second
    assert (kept.redeem(first), kept.redeem(second), kept.redeem("made-up")) == (alice, bob, None)
    kept.forget(second)
    clock.now += 59
    assert (kept.redeem(first), kept.redeem(second)) == (alice, None)
    clock.now += 1
    assert kept.redeem(first) is None


def test_expired_tokens_leave_the_table_when_new_ones_come():
    clock = Clock()
    kept = KeptLogins(60, clock)
    for _ in range(100):
        kept.keep(Credentials("alice", "secret"))
    clock.now += 61
    latest = kept.keep(Credentials("bob", "secret"))

    assert len(kept) == 1 and kept.redeem(latest) is not None
