"""Request and response bodies of ``gavel serve`` (pydantic; the OpenAPI schema at ``/docs`` comes from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gavel.backends.base import Reply, Request
from gavel.backends.identity import ModelIdentity
from gavel.judge.records import JudgeRecord
from gavel.judge.result import JudgeResult, Mode
from gavel.labels import LABELS, Task
from gavel.settings import setting_type


class JudgeOptions(BaseModel):
    """Per-request judge settings; an absent field keeps the server's setting. Checked against its limits."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = None
    template: str | None = Field(None, description="A built-in template set (files are not read)")
    both_orders: bool | None = None
    max_new_tokens: setting_type("max_new_tokens") | None = None
    repetition_penalty: setting_type("repetition_penalty") | None = None
    retries: setting_type("retries") | None = None


class JudgeBody(BaseModel):
    """``POST /v1/judge``: one record (``record``) or several (``records``), optional settings."""

    model_config = ConfigDict(extra="forbid")

    record: JudgeRecord | None = None
    records: list[JudgeRecord] | None = None
    settings: JudgeOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_ids(cls, data: Any) -> Any:
        """A record without an id is numbered by its place (1-based), as a row of a file is."""
        if isinstance(data, dict):
            if isinstance(data.get("record"), dict):
                data = {**data, "record": {"id": "1", **data["record"]}}
            if isinstance(data.get("records"), list):
                data = {**data, "records": [{"id": str(i), **r} if isinstance(r, dict) else r
                                            for i, r in enumerate(data["records"], start=1)]}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> JudgeBody:
        if (self.record is None) == (self.records is None):
            raise ValueError("give either 'record' (one) or 'records' (a list)")
        return self

    @property
    def items(self) -> list[JudgeRecord]:
        return [self.record] if self.record is not None else list(self.records or [])


class JudgeResponse(BaseModel):
    """Results in the order of the records; an item that could not be judged has status ``error``."""

    results: list[JudgeResult]


class RewardBody(BaseModel):
    """OpenRLHF's remote reward-model request: ``query`` (prompt + response), ``prompts``, ``labels``.

    The response is ``query`` with its prompt cut off; a non-empty label is the reference answer. ``task``
    and ``rubric`` are gavel's additions (OpenRLHF sends neither): absolute 1-5 by default.
    """

    query: list[str]
    prompts: list[str]
    labels: list[str | None] | None = None
    task: Literal[Task.absolute, Task.classification] = Task.absolute
    rubric: str | dict[str, str] | None = None

    @model_validator(mode="after")
    def _same_lengths(self) -> RewardBody:
        if len(self.prompts) != len(self.query):
            raise ValueError(f"field 'prompts': {len(self.prompts)} prompts for {len(self.query)} queries")
        if self.labels is not None and len(self.labels) != len(self.query):
            raise ValueError(f"field 'labels': {len(self.labels)} labels for {len(self.query)} queries")
        return self


class RewardResponse(BaseModel):
    """One reward per query in [0, 1] (``null`` where no verdict could be read); ``scores`` is the same list
    (OpenRLHF filters on it)."""

    rewards: list[float | None]
    scores: list[float | None]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class BackendRequest(BaseModel):
    """One rendered request, as a gavel backend receives it (what the ``gavel+http`` client sends)."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1, max_length=8)
    labels: tuple[str, ...]
    critique: bool
    max_new_tokens: setting_type("max_new_tokens")
    temperature: float = Field(ge=0.0, le=2.0)
    repetition_penalty: setting_type("repetition_penalty")

    @model_validator(mode="after")
    def _known_labels(self) -> BackendRequest:
        if self.labels not in LABELS.values():
            known = "; ".join(", ".join(labels) for labels in LABELS.values())
            raise ValueError(f"field 'labels': not one of the verdict sets ({known})")
        return self

    def to_request(self) -> Request:
        return Request(messages=[m.model_dump() for m in self.messages], labels=self.labels,
                       critique=self.critique, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                       repetition_penalty=self.repetition_penalty)


class GenerateBody(BaseModel):
    """``POST /v1/generate``: rendered requests for the loaded model (the ``gavel+http`` backend's protocol)."""

    model_config = ConfigDict(extra="forbid")

    requests: list[BackendRequest]


class GenerateResponse(BaseModel):
    """The replies of ``POST /v1/generate``, as the backend produced them."""

    replies: list[Reply]


class ModelCard(BaseModel):
    """``GET /v1/models``: the loaded judge."""

    id: str
    spec: str
    kind: str
    identity: ModelIdentity | None = Field(None, description="the weights by content (gavel.backends.identity)")
    context_length: int | None = None


class ModelsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    settings: dict[str, Any]
    limits: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "stopping"]
    model_loaded: bool
    queue_depth: int


class ErrorBody(BaseModel):
    """Every error: one line for people, and the field at fault where there is one."""

    detail: str
    field: str | None = None
