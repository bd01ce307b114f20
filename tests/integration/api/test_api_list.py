"""Listing: newest first, filters, and cursor pages that neither skip nor repeat rows while new
generations are created between page fetches; `wait_reason` while pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_harness import Api, completed_event, submitted_event

from genbus.contracts import COMPLETED, SUBMITTED

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}
T2I = {"operation_type": "text_to_image", "provider_id": "sim", "params": {"prompt": "p"}}


async def _page(api: Api, path: str = "/api/v1/generations", **params: Any) -> dict[str, Any]:
    response = await api.client.get(path, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_pages_neither_skip_nor_repeat_while_generations_are_inserted(api: Api) -> None:
    existing = [(await api.create(**T2V))["id"] for _ in range(23)]
    seen: list[str] = []
    inserted: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = await _page(api, **params)
        seen += [g["id"] for g in page["items"]]
        # Inserted between two page fetches: newer than every row already listed.
        inserted.append((await api.create(**T2V))["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(existing))
    assert len(seen) == len(set(seen))
    assert not set(inserted) & set(seen)
    # A fresh listing shows the new ones first, then the rest.
    everything = await _page(api, limit=100)
    assert [g["id"] for g in everything["items"]] == list(reversed(existing + inserted))
    assert everything["next_cursor"] is None


async def test_rows_created_in_the_same_instant_are_paged_by_id(api: Api) -> None:
    ids = [(await api.create(**T2V))["id"] for _ in range(6)]
    # The same created_at for all: the id breaks the tie, so pages are still exact.
    await api.fetch("UPDATE api.generations SET created_at = '2030-01-01T00:00:00Z'")
    first = await _page(api, limit=4)
    second = await _page(api, limit=4, cursor=first["next_cursor"])
    listed = [g["id"] for g in first["items"] + second["items"]]
    assert sorted(listed) == sorted(ids)
    assert listed == sorted(ids, reverse=True)
    assert second["next_cursor"] is None


async def test_filters_combine(api: Api) -> None:
    video = await api.create(**T2V)
    image = await api.create(**T2I)
    done = await api.create(**T2V)
    await api.publish(SUBMITTED, submitted_event(done))
    await api.publish(COMPLETED, completed_event(done))
    await api.wait_status(done["id"], "completed")

    def ids(page: dict[str, Any]) -> list[str]:
        return [g["id"] for g in page["items"]]

    assert ids(await _page(api, status="pending")) == [image["id"], video["id"]]
    assert ids(await _page(api, status=["completed", "failed"])) == [done["id"]]
    assert ids(await _page(api, operation_type="text_to_image")) == [image["id"]]
    assert ids(await _page(api, operation_type="text_to_video", status="pending")) == [video["id"]]
    assert ids(await _page(api, provider_id="pixverse")) == []
    assert len(ids(await _page(api, provider_id="sim"))) == 3
    middle = image["created_at"]
    assert ids(await _page(api, created_after=middle)) == [done["id"], image["id"]]
    assert ids(await _page(api, created_before=middle)) == [video["id"]]
    assert ids(await _page(api, "/api/v1/jobs", status="completed")) == [done["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"status": "done"}, "status[0]"),
        ({"created_after": "2030-01-01T00:00:00"}, "created_after"),
        ({"created_before": "0001-01-01T00:00:00+05:00"}, "created_before"),
    ],
)
async def test_bad_list_parameters_are_422_naming_them(
    api: Api, params: dict[str, Any], field: str
) -> None:
    response = await api.client.get("/api/v1/generations", params=params)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_wait_reason_says_why_a_generation_is_pending(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    scheduled = await api.create(**T2V, scheduled_at=later)
    due = await api.create(**T2V)
    assert scheduled["wait_reason"] == "scheduled"
    assert due["wait_reason"] == "waiting_for_account"

    await api.publish(SUBMITTED, submitted_event(due))
    assert (await api.wait_status(due["id"], "processing"))["wait_reason"] is None
    # Once its time has come, a scheduled generation waits for an account like any other.
    await api.fetch("UPDATE api.generations SET scheduled_at = now() - interval '1 s'")
    assert (await api.get(scheduled["id"]))["wait_reason"] == "waiting_for_account"


async def test_an_unknown_query_parameter_is_422_naming_it(api: Api) -> None:
    created = await api.create(**T2V)
    item = f"/api/v1/generations/{created['id']}"
    for path, unknown in (
        ("/api/v1/generations", ["stauts"]),
        ("/api/v1/jobs", ["stauts"]),
        (item, ["limit", "stauts"]),  # a page size means nothing to one generation
    ):
        response = await api.client.get(path, params={"stauts": "failed", "limit": 5})
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [(u, "unknown_field") for u in unknown]
