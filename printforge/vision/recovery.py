"""What to do after a detected failure: a bounded policy, decided from typed facts only.

1. On a plate of several objects where the failure sits on one of them: cancel that object
   (the printer's `cancel_object`) and let the others print on.
2. Otherwise the first failure of a design is retried as it was, once the bed is confirmed
   clear (a failed print is often chance: a draught, a speck on the bed).
3. A second failure of the same design is re-sliced with a change for the kind seen.
4. Past `max_attempts` prints the job fails and a person is told: the policy never loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RESLICE_CHANGES", "Decision", "decide"]

Action = Literal["cancel_object", "retry", "reslice", "give_up"]

# The slicer overrides (`SliceOverrides` fields) that address each kind of failure.
RESLICE_CHANGES: dict[str, dict[str, Any]] = {
    # Lost adhesion: a brim holds the part down.
    "detached": {"brim_width": 6.0},
    "spaghetti": {"brim_width": 6.0, "supports": True},
    # Lost steps: more walls make a stiffer part the nozzle cannot knock; a person should
    # also check the belts (said in the decision's reason).
    "layer_shift": {"perimeters": 3},
    # Not enough plastic: thicker layers are more forgiving of a partial clog.
    "under_extrusion": {"layer_height": 0.24},
    "clog": {"layer_height": 0.24},
    # Plastic gathering on the nozzle: more solid top layers, fewer loose infill ends.
    "blob": {"top_layers": 5, "infill_pattern": "grid"},
}


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    change: dict[str, Any] = field(default_factory=dict)
    object: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "change": self.change,
            "object": self.object,
        }


def decide(
    kind: str | None,
    *,
    failures: int,
    max_attempts: int,
    objects: list[str] | None = None,
    failed_object: str | None = None,
) -> Decision:
    """The next step after the `failures`-th detected failure of one design (1 = the first).

    Args:
        max_attempts: prints of the design allowed in all (the first one included).
        objects: the plate's labelled objects still printing, when known.
        failed_object: the object the failure was seen on, when the detector could tell.
    """
    if objects and len(objects) > 1 and failed_object in objects:
        return Decision(
            "cancel_object",
            f"{kind or 'a failure'} on {failed_object}: cancelled it, the other"
            f" {len(objects) - 1} print on",
            object=failed_object,
        )
    if failures >= max_attempts:
        return Decision(
            "give_up",
            f"{failures} failed prints of this design (at most {max_attempts}): a person"
            " should look at it",
        )
    if failures == 1:
        return Decision("retry", "first failure: printed again once the bed is clear")
    change = RESLICE_CHANGES.get(kind or "", {"brim_width": 6.0})
    words = ", ".join(f"{k} = {v}" for k, v in change.items())
    return Decision("reslice", f"failed {failures} times ({kind}): re-sliced with {words}", change)
