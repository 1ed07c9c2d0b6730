"""`printforge providers`: each LLM provider's health, limits and spend; `--check` probes them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "providers",
        help="show the LLM providers: order, health, limits and spend",
        description="Show every configured LLM provider. Keys are never shown, only whether one"
        " is set.",
    )
    p.add_argument("--check", action="store_true", help="probe each provider with a free call")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_handle_providers)


async def _rows(settings: Any, check: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from printforge.llm.config import redact_url
    from printforge.llm.router import LLMRouter
    from printforge.llm.secrets import api_key_of

    router = LLMRouter(settings.llm, data_dir=settings.data_dir)
    try:
        if check:
            for name, cfg in settings.llm.provider.items():
                if cfg.enabled:
                    await router.probe(name)
            await router.cache.probe()
        rows = router.status()
        for row in rows:
            cfg = router.provider_settings(row["name"])
            row["key_set"] = cfg.kind in ("offline", "openai_compatible") or bool(api_key_of(cfg))
            # A proxy's URL may carry user:password; shown masked like the Redis URL.
            row["base_url"] = redact_url(cfg.base_url) if cfg.base_url else None
            row["checked"] = check
        totals = {
            "order": settings.llm.providers,
            "spent_today_usd": round(router.ledger.today_usd(), 6),
            "budget_per_day_usd": settings.llm.budget_per_day_usd,
            "budget_per_job_usd": settings.llm.budget_per_job_usd,
            # Set when the ledger file is unreadable: paid providers are refused until fixed.
            "spend_ledger_error": router.ledger.problem,
            # The Redis URL only with its password masked.
            "cache": router.cache.describe(),
        }
        return rows, totals
    finally:
        await router.close()


def _handle_providers(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings

    settings = load_cli_settings(args)
    rows, totals = asyncio.run(_rows(settings, args.check))
    if args.json:
        print(json.dumps({"providers": rows, **totals}))
        return 0
    out = [
        f"order: {', '.join(totals['order'])}   spent today ${totals['spent_today_usd']:.4f}"
        f" of ${totals['budget_per_day_usd']:.2f} (per job ${totals['budget_per_job_usd']:.2f})"
    ]
    for r in rows:
        limits = []
        if r["requests_per_minute"]:
            limits.append(f"{r['requests_per_minute']:g} req/min")
        if r["tokens_per_minute"]:
            limits.append(f"{r['tokens_per_minute']:g} tok/min")
        health = r["health"] if args.check else "not checked"
        if not r["enabled"]:
            health = "disabled"
        elif not r["key_set"]:
            health = "no API key"
        out.append(
            f"{'*' if r['in_order'] else ' '} {r['name']:<10} {r['kind']:<18}"
            f" {r['model'] or '-':<26} {health:<12} {', '.join(limits) or 'no limits':<28}"
            f" spent ${r['spend_usd']:.4f}"
        )
        if args.check and r["last_error"]:
            out.append(f"    {r['last_error']}")
        if r["unpriced_models"]:
            out.append(
                f"    no price under [llm.prices] for {', '.join(r['unpriced_models'])}:"
                " calls to it are refused (the budgets cannot count them)"
            )
    out.append(_cache_line(totals["cache"], args.check))
    if totals["spend_ledger_error"]:
        out.append(f"spend ledger: {totals['spend_ledger_error']}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _cache_line(cache: dict[str, Any], checked: bool) -> str:
    if not cache["enabled"]:
        return "cache: off"
    where = cache["url"] if cache["backend"] == "redis" else "in memory"
    line = f"cache: {where}, prefix {cache['key_prefix']}, ttl {cache['ttl_s']} s"
    if checked:
        line += f", {cache['state']}"
        if cache["last_error"]:
            line += f" ({cache['last_error']})"
    return line
