"""The sim's Pixverse facade: Pixverse's envelope, codes and statuses over the same state."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from genbus.provider_sim.errors import ErrorCode, SimError
from genbus.provider_sim.forms import parse_form
from genbus.provider_sim.routes_pixverse import PIXVERSE_ERRORS, pixverse_error_response

from .helpers import KEY1, MakeSim, Sim

TEXT = "/openapi/v2/video/text/generate"
IMG = "/openapi/v2/video/img/generate"
UPLOAD = "/openapi/v2/image/upload"
RESULT = "/openapi/v2/video/result/"


def headers(key: str = "sim-key-1", trace_id: str | None = None) -> dict[str, str]:
    return {"API-KEY": key, "Ai-trace-id": trace_id or str(uuid4())}


def t2v_body(prompt: str = "a cat", **fields: Any) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "model": "v4.5",
        "quality": "720p",
        "duration": 5,
        "aspect_ratio": "16:9",
        **fields,
    }


async def generate(
    sim: Sim, prompt: str = "a cat", hdrs: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    return await sim.client.post(TEXT, json=t2v_body(prompt, **fields), headers=hdrs or headers())


async def video_id_of(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["ErrCode"], data["ErrMsg"]) == (0, "success")
    video_id: int = data["Resp"]["video_id"]
    return video_id


async def result(sim: Sim, video_id: object, key: str = "sim-key-1") -> httpx.Response:
    return await sim.client.get(f"{RESULT}{video_id}", headers=headers(key))


async def upload(sim: Sim, key: str = "sim-key-1", **fields: str) -> httpx.Response:
    files = {name: (None, value) for name, value in fields.items()}
    return await sim.client.post(UPLOAD, files=files, headers=headers(key))


def err_code(response: httpx.Response) -> int:
    code: int = response.json()["ErrCode"]
    return code


# -- happy path ------------------------------------------------------------------------------


async def test_text_to_video_lifecycle_in_pixverse_shape(sim: Sim) -> None:
    video_id = await video_id_of(await generate(sim, duration=8))

    generating = (await result(sim, video_id)).json()["Resp"]
    sim.clock.advance(10.0)
    done_response = await result(sim, video_id)
    done = done_response.json()["Resp"]

    assert isinstance(video_id, int)
    assert generating["status"] == 5
    assert (generating["url"], generating["outputWidth"]) == ("", 0)
    assert done_response.json()["ErrCode"] == 0
    assert done["id"] == video_id
    assert done["status"] == 1
    assert done["url"] == f"http://sim.test/v1/files/{video_id}"
    assert (done["outputWidth"], done["outputHeight"], done["duration"]) == (1280, 720, 8)
    file = await sim.client.get(done["url"])
    assert file.content.startswith(b"\x00\x00\x00\x18ftyp")


async def test_a_failing_prompt_ends_with_status_8(sim: Sim) -> None:
    video_id = await video_id_of(await generate(sim, "a [fail] cat"))
    sim.clock.advance(10.0)

    assert (await result(sim, video_id)).json()["Resp"]["status"] == 8


async def test_video_ids_are_increasing_integers_that_survive_a_reset(sim: Sim) -> None:
    first = await video_id_of(await generate(sim))
    second = await video_id_of(await generate(sim))
    assert (await sim.client.post("/_sim/reset")).status_code == 200
    third = await video_id_of(await generate(sim))

    assert first < second < third


async def test_image_to_video_needs_an_image_uploaded_with_the_same_key(sim: Sim) -> None:
    uploaded = await upload(sim, image_url="https://cdn.example.com/cat.png")
    img = uploaded.json()["Resp"]
    body = {"img_id": img["img_id"], "model": "v4.5", "quality": "540p", "duration": 5}

    created = await sim.client.post(IMG, json=body, headers=headers())
    foreign = await sim.client.post(IMG, json=body, headers=headers("sim-key-2"))
    unknown = await sim.client.post(
        IMG, json={**body, "img_id": img["img_id"] + 999}, headers=headers()
    )

    assert uploaded.status_code == 200
    assert isinstance(img["img_id"], int)
    assert img["img_url"] == "https://cdn.example.com/cat.png"
    assert isinstance(await video_id_of(created), int)
    assert (err_code(foreign), err_code(unknown)) == (400017, 400017)
    stats = await sim.stats()
    assert (stats["submissions"], stats["image_uploads"]) == (1, 1)


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({"image_url": (None, "https://cdn.example.com/a.png")}, None),
        ({"image": ("a.png", b"\x89PNG\r\n\x1a\n\x00", "image/png")}, None),
        (None, {"image_url": "https://cdn.example.com/a.png"}),
    ],
)
async def test_upload_accepts_a_url_or_a_file(
    sim: Sim, files: dict[str, Any] | None, data: dict[str, str] | None
) -> None:
    response = await sim.client.post(UPLOAD, files=files, data=data, headers=headers())

    assert response.status_code == 200
    assert response.json()["ErrCode"] == 0
    assert response.json()["Resp"]["img_id"] > 0


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"files": {"image_url": (None, "ftp://cdn.example.com/a.png")}},
        {"files": {"other": (None, "x")}},
        {"content": b"not a form", "headers": {"content-type": "text/plain"}},
        {"json": {"image_url": "https://cdn.example.com/a.png"}},
    ],
)
async def test_bad_uploads_are_invalid_parameters(sim: Sim, request_kwargs: dict[str, Any]) -> None:
    kwargs = dict(request_kwargs)
    kwargs["headers"] = {**headers(), **kwargs.get("headers", {})}

    response = await sim.client.post(UPLOAD, **kwargs)

    assert (response.status_code, err_code(response)) == (200, 400017)
    assert (await sim.stats())["image_uploads"] == 0


# -- the same state as the native protocol ---------------------------------------------------


async def test_both_protocols_share_jobs_and_counters(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_concurrency=2)
    native = await sim.submit()
    pixverse_id = await video_id_of(await generate(sim))
    third = await generate(sim)
    native_view = await sim.job(str(pixverse_id))

    assert native.status_code == 201
    assert (third.status_code, err_code(third)) == (200, 500044)
    assert native_view.json()["status"] == "queued"
    stats = await sim.stats()
    assert stats["submissions"] == 2
    assert stats["keys"]["sim-key-1"]["max_concurrent_seen"] == 2
    assert stats["concurrency_violations"] == 0
    assert stats["rejections"] == {"concurrency_limit": 1}


async def test_concurrency_violations_are_counted_when_not_enforced(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_concurrency=1, enforce_concurrency=False)

    await video_id_of(await generate(sim))
    await video_id_of(await generate(sim))

    assert (await sim.stats())["concurrency_violations"] == 1


async def test_the_same_trace_id_twice_is_two_jobs_and_a_duplicate_reference(sim: Sim) -> None:
    trace_id = str(uuid4())

    first = await video_id_of(await generate(sim, hdrs=headers(trace_id=trace_id)))
    second = await video_id_of(await generate(sim, hdrs=headers(trace_id=trace_id)))

    assert first != second
    stats = await sim.stats()
    assert (stats["submissions"], stats["idempotent_replays"]) == (2, 0)
    assert stats["duplicate_references"] == 1
    assert stats["duplicated_references"] == [trace_id]


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hdrs",
    [
        {"Ai-trace-id": str(uuid4())},
        {"API-KEY": "nope", "Ai-trace-id": str(uuid4())},
        {**KEY1, "Ai-trace-id": str(uuid4())},  # Pixverse knows no Bearer auth
    ],
)
async def test_unknown_or_missing_api_key_is_err_code_10002(sim: Sim, hdrs: dict[str, str]) -> None:
    created = await sim.client.post(TEXT, json=t2v_body(), headers=hdrs)
    status = await sim.client.get(f"{RESULT}1", headers=hdrs)
    uploaded = await sim.client.post(
        UPLOAD, files={"image_url": (None, "https://a.b/c.png")}, headers=hdrs
    )

    for response in (created, status, uploaded):
        assert (response.status_code, err_code(response)) == (200, 10002)
    assert (await sim.stats())["submissions"] == 0


@pytest.mark.parametrize("trace_id", [None, "", "not-a-uuid", "genbus-1-1"])
async def test_a_uuid_trace_id_is_required(sim: Sim, trace_id: str | None) -> None:
    hdrs = {"API-KEY": "sim-key-1"}
    if trace_id is not None:
        hdrs["Ai-trace-id"] = trace_id

    created = await sim.client.post(TEXT, json=t2v_body(), headers=hdrs)
    status = await sim.client.get(f"{RESULT}1", headers=hdrs)

    assert (err_code(created), err_code(status)) == (400017, 400017)
    assert (await sim.stats())["submissions"] == 0


@pytest.mark.parametrize(
    "body",
    [
        [],
        t2v_body(prompt=""),
        t2v_body(prompt="x" * 2049),
        t2v_body(negative_prompt=["x"]),
        t2v_body(model=""),
        t2v_body(quality="4k"),
        t2v_body(quality=["720p"]),
        t2v_body(duration=6),
        t2v_body(duration=True),
        t2v_body(motion_mode="warp"),
        t2v_body(seed=2**31),
        t2v_body(aspect_ratio=None),
    ],
)
async def test_invalid_bodies_are_err_code_400017(sim: Sim, body: Any) -> None:
    response = await sim.client.post(TEXT, json=body, headers=headers())

    assert (response.status_code, err_code(response)) == (200, 400017)
    stats = await sim.stats()
    assert stats["submissions"] == 0
    assert stats["rejections"] == {"invalid_request": 1}


async def test_a_body_that_is_not_json_is_err_code_400017(sim: Sim) -> None:
    response = await sim.client.post(TEXT, content=b"{", headers=headers())

    assert err_code(response) == 400017


async def test_moderation_credits_and_rate_limits(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_credits={"sim-key-2": 0})

    rejected = await generate(sim, "a [reject] cat")
    broke = await generate(sim, hdrs=headers("sim-key-2"))
    await sim.client.put("/_sim/config", json={"rate_limit_rate": 1.0, "retry_after_s": 3})
    limited = await generate(sim)

    assert (rejected.status_code, err_code(rejected)) == (200, 500063)
    assert (broke.status_code, err_code(broke)) == (200, 500090)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert (await sim.stats())["submissions"] == 0


async def test_simulated_server_faults(make_sim: MakeSim) -> None:
    sim = make_sim(error_5xx_rate=1.0)

    answers = [await generate(sim) for _ in range(12)]

    kinds = {
        (r.status_code, r.json()["ErrCode"] if r.status_code == 200 else None) for r in answers
    }
    assert kinds == {(500, None), (200, 500069)}
    assert (await sim.stats())["submissions"] == 0


@pytest.mark.parametrize("video_id", ["999", "abc", "\uff11\uff12"])
async def test_unknown_videos_are_err_code_500008(sim: Sim, video_id: str) -> None:
    response = await result(sim, video_id)

    assert (response.status_code, err_code(response)) == (200, 500008)


async def test_another_keys_video_is_not_found(sim: Sim) -> None:
    video_id = await video_id_of(await generate(sim))

    assert err_code(await result(sim, video_id, key="sim-key-2")) == 500008


def test_every_sim_error_has_a_pixverse_answer() -> None:
    assert set(PIXVERSE_ERRORS) == set(ErrorCode)
    answer = pixverse_error_response(SimError(ErrorCode.UNAVAILABLE, "busy", retry_after_s=2))
    assert answer.status_code == 200
    assert answer.headers["Retry-After"] == "2"
    assert b'"ErrCode":500069' in answer.body


# -- form parsing ----------------------------------------------------------------------------


def test_parse_form_reads_multipart_and_urlencoded() -> None:
    request = httpx.Request(
        "POST",
        "http://x/",
        files={"image_url": (None, "https://a.b/é.png"), "image": ("a.png", b"\x00\xff", "x/y")},
    )
    multipart = parse_form(request.headers["content-type"], request.read())
    urlencoded = parse_form("application/x-www-form-urlencoded", b"a=1&b=%C3%A9&c=")

    assert multipart == {"image_url": "https://a.b/é.png", "image": b"\x00\xff"}
    assert urlencoded == {"a": "1", "b": "é", "c": ""}


@pytest.mark.parametrize(
    ("content_type", "body", "match"),
    [
        ("", b"a=1", "not a form body"),
        ("application/json", b"{}", "not a form body"),
        ("multipart/form-data; boundary=zzz", b"no parts here", "no parts"),
    ],
)
def test_parse_form_refuses_what_it_cannot_read(content_type: str, body: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_form(content_type, body)
