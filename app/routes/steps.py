"""GET /steps: the step registry, so that a page or a client names and shapes steps from it."""

from __future__ import annotations

from fastapi import APIRouter

from app.http.answers import StepInfo
from attention import REGISTRY

router = APIRouter(tags=["attention"])
STEP_INFOS = [StepInfo(**vars(step)) for step in REGISTRY]


@router.get("/steps", summary="Every step of the pipeline, in order: name, layout, shape, meaning")
async def steps() -> list[StepInfo]:
    return STEP_INFOS
