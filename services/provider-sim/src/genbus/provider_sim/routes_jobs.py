"""The provider protocol: submit, poll, look up and cancel jobs, download outputs."""

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from genbus.provider_sim.deps import ApiKeyDep, StateDep, hang_status_if_told, input_log
from genbus.provider_sim.errors import ErrorCode, SimError
from genbus.provider_sim.inputs import fetch_inputs
from genbus.provider_sim.jobs import MEDIA_TYPE, credits_left, render_job
from genbus.provider_sim.submits import answer_submission, post_submit

router = APIRouter(prefix="/v1", tags=["provider"])


@post_submit(router, "/jobs", status_code=201, operation_id="submit_job")
async def submit_job(request: Request, state: StateDep, api_key: ApiKeyDep) -> Response:
    try:
        body: object = json.loads(await request.body())
    except ValueError as exc:
        error = SimError(ErrorCode.INVALID_REQUEST, "the body is not valid JSON")
        state.count_rejection(api_key, error)
        raise error from exc
    if state.config.fetch_inputs:
        await fetch_inputs(body, input_log(request))
    submission = state.submit(api_key, body, request.headers.get("idempotency-key"))
    job = submission.job
    answer = JSONResponse(
        {"id": job.id, "status": job.status(state.now()).value},
        status_code=200 if submission.replayed else 201,
    )
    return await answer_submission(submission, answer)


@router.get("/jobs", operation_id="find_jobs")
async def find_jobs(
    client_reference: Annotated[str, Query()],
    request: Request,
    state: StateDep,
    api_key: ApiKeyDep,
) -> JSONResponse:
    jobs = state.find_by_reference(api_key, client_reference)
    now = state.now()
    files_url = _files_url(request)
    return JSONResponse({"data": [render_job(job, now, files_url) for job in jobs]})


@router.get("/jobs/{job_id}", operation_id="get_job")
async def get_job(
    job_id: str, request: Request, state: StateDep, api_key: ApiKeyDep
) -> JSONResponse:
    await hang_status_if_told(state, api_key)
    job = state.get_job(api_key, job_id)
    return JSONResponse(render_job(job, state.now(), _files_url(request)))


@router.post("/jobs/{job_id}/cancel", status_code=202, operation_id="cancel_job")
async def cancel_job(
    job_id: str, request: Request, state: StateDep, api_key: ApiKeyDep
) -> JSONResponse:
    job = state.cancel(api_key, job_id)
    return JSONResponse(render_job(job, state.now(), _files_url(request)), status_code=202)


@router.get("/balance", operation_id="get_balance")
async def get_balance(state: StateDep, api_key: ApiKeyDep) -> JSONResponse:
    """The key's credits left (null: unlimited)."""
    left = credits_left(state.stats(), state.config.credits_for(api_key), api_key)
    return JSONResponse({"credits_left": left})


@router.get("/files/{job_id}", operation_id="get_file")
async def get_file(job_id: str, state: StateDep) -> Response:
    # No key needed: the URL plays the part of a provider's signed CDN link.
    return Response(state.output_file(job_id), media_type=MEDIA_TYPE)


def _files_url(request: Request) -> str:
    return f"{request.base_url}v1/files/"
