"""The research agent: a person's words -> a DesignSpec the CAD agent can build.

It asks the LLM router (the only retry loop) for a structured answer, validates it against the
spec and the CAD pre-build checks, and feeds failures back to the same provider for up to
`llm.repair_rounds` rounds (on its larger model) before moving on to the next provider.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from printforge.agents.base import Agent, AgentContext
from printforge.llm.base import LLMMessage, LLMRequest, LLMResponse
from printforge.llm.prompt import design_schema, repair_message, system_prompt, user_message
from printforge.llm.router import LLMRouter
from printforge.models.printer import PrinterProfile
from printforge.models.request import PrintRequest
from printforge.models.spec import DesignSpec
from printforge.runtime.errors import InputError, NeedsInput, PrintforgeError
from printforge.runtime.health import HealthRecord, HealthRegistry, HealthState
from printforge.runtime.workers import run_cpu
from printforge.settings import Settings

__all__ = ["FEEDBACK_KEY", "ResearchAgent", "question_for", "spec_validator"]

# A stage that fails a design (the CAD printability check) may put its problems here and run
# research again; the model then sees them with the request.
FEEDBACK_KEY = "research_feedback"

log = logging.getLogger(__name__)


def _pydantic_problems(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


def spec_validator(profile: PrinterProfile) -> Any:
    """Schema validation, the CAD agent's pre-build checks for `profile`, and the requirement
    list's own consistency (every built requirement names a field that exists)."""
    from printforge.geometry import spec_problems
    from printforge.geometry.verify import requirement_problems

    def validate(data: dict[str, Any]) -> list[str]:
        try:
            spec = DesignSpec.model_validate(data)
        except ValidationError as err:
            return _pydantic_problems(err)
        return spec_problems(spec, profile) + requirement_problems(spec)

    return validate


def question_for(text: str, spec: DesignSpec) -> str:
    """One question for a design with not_built requirements: what cannot be built, and
    what would be built instead."""
    missing = [r for r in spec.requirements if r.status == "not_built"]
    listed = "; ".join(f"{r.text} ({r.note})" if r.note else r.text for r in missing[:6])
    if len(missing) > 6:
        listed += f"; and {len(missing) - 6} more"
    instead = spec.name + (f": {spec.description}" if spec.description else "")
    if len(instead) > 300:
        instead = instead[:297] + "..."
    return (
        f"{text!r} asks for what this design cannot do: {listed}. It would build {instead}."
        " Build that anyway (--accept-partial), or change the request?"
    )


def _mesh_problems(spec: DesignSpec, profile: PrinterProfile) -> list[str]:
    """The design built and measured against its own requirement list (blocking)."""
    from printforge.geometry import build_mesh
    from printforge.geometry.verify import check_mesh

    if not any(
        r.status == "built" and r.role in ("size", "hole", "wall") and r.value
        for r in spec.requirements
    ):
        return []  # nothing that can be measured: no need to build it twice
    try:
        mesh = build_mesh(spec, profile)
    except (ValueError, RuntimeError) as err:
        return [f"the design cannot be built: {err}"]
    return check_mesh(spec, mesh)


class ResearchAgent(Agent[PrintRequest, DesignSpec]):
    name = "research"

    def __init__(
        self,
        settings: Settings,
        router: LLMRouter | None = None,
        health: HealthRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._health = health or HealthRegistry()
        self._owns_router = router is None
        self._router = router

    @property
    def router(self) -> LLMRouter:
        if self._router is None:
            self._router = LLMRouter(
                self.settings.llm, health=self._health, data_dir=self.settings.data_dir
            )
        return self._router

    async def start(self) -> None:
        # What the first design would otherwise build on the loop, in a thread: the prompt
        # (it parses the worked examples), the schema, and the response cache's client import.
        # On the loop it was one stall of 0.25-1.5 s (scripts/bench_loop_lag.py).
        await asyncio.to_thread(self._warm)

    def _warm(self) -> None:
        system_prompt()
        design_schema()
        self.router.cache.preload()

    async def stop(self) -> None:
        if self._owns_router and self._router is not None:
            await self._router.close()
            self._router = None

    async def health(self) -> HealthRecord | None:
        records = [r for r in self._health.records() if r.component == "llm"]
        order = self.settings.llm.providers
        usable = [r for r in records if r.name in order and r.state != HealthState.UNHEALTHY]
        # Research works while any provider in the order does; offline always does.
        state = HealthState.HEALTHY
        if records and not usable and "offline" not in order:
            state = HealthState.UNHEALTHY
        elif any(r.state != HealthState.HEALTHY for r in records):
            state = HealthState.DEGRADED
        return HealthRecord(
            name=self.name,
            state=state,
            detail={r.name: r.state.value for r in records},
        )

    async def run(self, inp: PrintRequest, ctx: AgentContext) -> DesignSpec:
        if inp.text is None:
            raise InputError("the research stage needs a text request")
        order = list(inp.providers or self.settings.llm.providers)
        if inp.llm_model and order and self.router.provider_settings(order[0]).kind == "offline":
            # The model is meant for the first provider; the offline parser has none, so the
            # name would be dropped without a word and the design come from the rules instead.
            raise InputError(
                f"model {inp.llm_model!r} applies to the first provider in the order, but that is"
                f" {order[0]!r} (the offline parser, which has no models); put the provider that"
                f" serves it first, e.g. --provider openai,{order[0]}"
            )
        # Problems a later stage found in an earlier design of this job (see FEEDBACK_KEY).
        feedback = [str(p) for p in ctx.report.get(FEEDBACK_KEY) or []]
        validate = spec_validator(ctx.profile)
        base = LLMRequest(
            system=system_prompt(),
            messages=[LLMMessage(role="user", content=user_message(inp.text, feedback))],
            json_schema=design_schema(),
            text=inp.text,
            model=inp.llm_model,
            model_provider=order[0] if inp.llm_model and order else None,
            # A design this job already built failed the CAD checks: ask the larger model.
            escalate=bool(feedback),
            max_tokens=self.settings.llm.max_tokens,
            job_id=ctx.job_id,
            printer=ctx.profile,
        )
        report: dict[str, Any] = {
            "provider": None,
            "model": None,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_usd": 0.0,
            "rounds": 0,
            "fallbacks": [],
            "cached": False,
        }
        ctx.report["research"] = report
        last_problems: list[str] = []
        remaining = order
        while remaining:
            response = await self.router.complete(base, order=remaining, validate=validate)
            report["fallbacks"] += response.fallbacks
            provider = response.provider
            spec, problems, rounds = await self._repair(base, response, validate, report, ctx)
            if spec is not None:
                log.info("research answered by %s/%s", report["provider"], report["model"])
                return self._accounted(inp, spec, ctx)
            last_problems = problems
            report["fallbacks"].append(
                f"{provider}: no valid design after {rounds} round(s): " + "; ".join(problems[:3])
            )
            remaining = remaining[remaining.index(provider) + 1 :] if provider in remaining else []
        raise InputError(
            f"no provider produced a printable design for {inp.text!r}: "
            + "; ".join(last_problems[:5])
        )

    def _accounted(self, inp: PrintRequest, spec: DesignSpec, ctx: AgentContext) -> DesignSpec:
        """Record the requirement list in the job report; a design that leaves some of them
        unbuilt stops here with a question unless the request accepts a partial design."""
        listed = [r.model_dump(mode="json") for r in spec.requirements]
        ctx.report["requirements"] = listed
        missing = [r for r in spec.requirements if r.status == "not_built"]
        if missing and not inp.accept_partial:
            question = question_for(inp.text or "", spec)
            ctx.report["question"] = question
            raise NeedsInput(question, requirements=listed)
        if missing:
            left = "; ".join(r.text for r in missing)
            spec = spec.model_copy(
                update={"description": f"{spec.description or spec.name}. Left out: {left}"[:2000]}
            )
        return spec

    async def _repair(
        self,
        base: LLMRequest,
        response: LLMResponse,
        validate: Any,
        report: dict[str, Any],
        ctx: AgentContext,
    ) -> tuple[DesignSpec | None, list[str], int]:
        """Rounds with one provider: (spec, [], rounds) or (None, the last problems, rounds)."""
        request = base
        rounds = 0
        while True:
            rounds += 1
            report["rounds"] += 1
            report["provider"], report["model"] = response.provider, response.model
            report["tokens_in"] += response.tokens_in
            report["tokens_out"] += response.tokens_out
            report["cost_usd"] = round(report["cost_usd"] + response.cost_usd, 6)
            report["cached"] = response.cached
            ctx.progress(None, f"research: {response.provider} answered (round {rounds})", None)
            kind = self.router.provider_settings(response.provider).kind
            if response.ok:
                assert response.data is not None
                spec = DesignSpec.model_validate(response.data)
                if kind == "offline":
                    return spec, [], rounds
                # A model's design is held to its own requirement list: what it says it built
                # is measured on the mesh, and what does not measure up goes back to it.
                problems = await run_cpu(_mesh_problems, spec, ctx.profile)
                if not problems:
                    return spec, [], rounds
            else:
                problems = [response.parse_error] if response.parse_error else response.problems
            if kind == "offline" or rounds > self.settings.llm.repair_rounds:
                return None, problems, rounds
            # Same provider, its larger model, with the failed answer and what is wrong with it.
            request = request.model_copy(
                update={
                    "messages": [
                        *request.messages,
                        LLMMessage(role="assistant", content=response.text or "{}"),
                        LLMMessage(role="user", content=repair_message(problems)),
                    ],
                    "escalate": True,
                }
            )
            try:
                response = await self.router.complete(
                    request, order=[response.provider], validate=validate
                )
            except PrintforgeError as err:
                if isinstance(err, InputError):
                    raise
                return None, [*problems, f"repair failed: {err.message}"], rounds
