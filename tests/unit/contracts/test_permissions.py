"""The NATS identities follow the topology: nothing more than what it says."""

from __future__ import annotations

from genbus.contracts import COMPLETED, SERVICES, SUBMITTED
from genbus.contracts.nats_config import password_env, render_authorization
from genbus.contracts.permissions import (
    PROVISIONER,
    STREAM_ADMIN,
    SUBSCRIBER,
    all_permissions,
    service_permissions,
    subscriber_permissions,
)


def test_each_service_publishes_exactly_the_events_the_topology_gives_it() -> None:
    for name, topology in SERVICES.items():
        allowed = set(service_permissions(topology).publish)
        events = {s for s in allowed if s.startswith("generations.")}
        assert events == {binding.wildcard for binding in topology.publishes}, name
    assert SUBMITTED.wildcard not in service_permissions(SERVICES["api"]).publish


def test_no_run_time_identity_has_the_stream_admin_api_or_wildcards() -> None:
    for identity in all_permissions():
        if identity.user == PROVISIONER:
            continue
        for subject in identity.publish:
            assert not subject.startswith(STREAM_ADMIN), (identity.user, subject)
            assert subject not in (">", "$JS.API.>", "$KV.>"), (identity.user, subject)
        assert ">" not in identity.subscribe
        assert all(
            s.startswith(("_INBOX_", "genbus.notify.", COMPLETED.subject_prefix))
            for s in identity.subscribe
        ), identity.user


def test_only_the_dispatcher_writes_the_account_directory() -> None:
    writers = {p.user for p in all_permissions() if any(s.startswith("$KV.") for s in p.publish)}
    assert writers == {"dispatcher"}  # and the provisioner, which may do anything


def test_the_subscriber_reads_completions_and_publishes_no_event() -> None:
    subscriber = subscriber_permissions()
    assert subscriber.user == SUBSCRIBER
    assert not any(s.startswith("generations.") for s in subscriber.publish)
    assert COMPLETED.wildcard in subscriber.subscribe
    creates = [s for s in subscriber.publish if ".CONSUMER.CREATE." in s]
    assert creates
    assert all(s.endswith(f".{COMPLETED.wildcard}") for s in creates)


def test_the_rendered_config_names_every_user_and_takes_passwords_from_the_env() -> None:
    rendered = render_authorization()
    for identity in all_permissions():
        assert f'user: "{identity.user}", password: ${password_env(identity.user)},' in rendered
    literal = render_authorization({p.user: "pw" for p in all_permissions()})
    assert 'password: "pw"' in literal
    assert "no_auth_user" not in literal
