"""Poll delays: quick at first, backing off to a cap, honouring the provider's hint."""

from __future__ import annotations

from genbus.poller.domain.schedule import next_poll_delay


def test_delays_double_up_to_the_cap() -> None:
    delays = [next_poll_delay(n, 0.05, 1.0) for n in range(1, 8)]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.4]
    assert delays[-1] == 1.0
    assert delays == sorted(delays)


def test_provider_hint_stretches_the_delay_but_is_bounded() -> None:
    assert next_poll_delay(1, 0.05, 1.0, provider_hint_s=3.0) == 3.0
    assert next_poll_delay(1, 0.05, 1.0, provider_hint_s=3600.0) == 4.0
    assert next_poll_delay(5, 0.05, 1.0, provider_hint_s=0.01) == 0.8
