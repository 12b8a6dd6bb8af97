"""The web reviewer's proposals view: ``extractor review serve QUEUE --proposals PROPOSALS.jsonl``.

A list of discovery's proposals (name, draft definition, quotes, interviews, the nearest
catalog entry and why it is not that entry) reviewed by keyboard: accept, rename, edit the
definition, merge into another proposal, mark as a sub-type of a catalog entry, reject, or
undo a decision. Every change is saved when it is made, into the proposals file itself
(:func:`extractor.proposals.update_proposal`: the file's writer lock, re-read inside it, atomic
rewrite), so a reload, a second tab or `discover-review` sees it; applying the decisions to the
catalog stays `extractor discover-review FILE`.

:func:`register` adds the view to the reviewer's Flask app (its Host/Origin guard covers it);
the page is ``extractor/data/review/proposals.html`` with its CSS and JS inlined under a
Content-Security-Policy of their hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.proposals import DECISIONS, Proposal, read_proposals, update_proposal
from extractor.review.page import render

MAX_NAME = 120
MAX_DEFINITION = 2000


def now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def proposal_json(p: Proposal, number: int) -> dict[str, Any]:
    """What the page shows of one proposal."""
    return {"number": number, "id": p.id, "name": p.name, "definition": p.definition, "size": p.size,
            "interviews": list(p.interviews), "keywords": list(p.keywords[:6]), "why_not": p.why_not,
            "nearest": dict(p.nearest[0]) if p.nearest else None, "decision": p.decision or "",
            "merge_into": p.merge_into, "subtype_of": p.subtype_of, "kind": p.kind,
            "quotes": [{"interview": q.interview, "turn": q.turn, "text": q.text} for q in p.quotes]}


class ProposalsState:
    """The proposals view's logic, independent of HTTP: listing, decisions, edits."""

    def __init__(self, path: str | Path, catalog: Catalog, reviewer: str = "",
                 clock: Callable[[], str] = now_iso):
        self.path, self.catalog, self.reviewer, self.clock = Path(path), catalog, reviewer, clock
        read_proposals(self.path)  # a bad file is reported before the server starts

    def state(self, message: str = "") -> dict[str, Any]:
        props = [p for _, p in read_proposals(self.path)]
        return {"proposals": [proposal_json(p, k) for k, p in enumerate(props, 1)],
                "entries": [{"id": e.id, "name": e.name} for e in self.catalog.categories],
                "progress": {"decided": sum(bool(p.decision) for p in props), "total": len(props)},
                "message": message}

    def target_of(self, decision: str, target: Any, pid: str) -> dict[str, str]:
        if decision == "merge":
            ids = {p.id: p for _, p in read_proposals(self.path)}
            if not isinstance(target, str) or target not in ids or target == pid:
                raise ValueError(f"target: expected the id of another proposal, found {target!r:.40}")
            if ids[target].decision == "merge":
                raise ValueError(f"target: expected a proposal not itself merged, found {target} merged into "
                                 f"{ids[target].merge_into}")
            return {"merge_into": target, "subtype_of": ""}
        if decision == "subtype":
            if target not in self.catalog.category_ids:
                raise ValueError(f"target: expected a catalog entry id, found {target!r:.40}")
            return {"merge_into": "", "subtype_of": target}
        return {"merge_into": "", "subtype_of": ""}

    def decide(self, pid: str, decision: Any, target: Any = None) -> dict[str, Any]:
        """Save a decision ("" = take it back) on proposal ``pid``."""
        if not isinstance(decision, str) or decision not in ("", *DECISIONS):
            raise ValueError(f"decision: expected one of {', '.join(DECISIONS)} or \"\", found {decision!r:.40}")
        changes: dict[str, Any] = {"decision": decision or None, **self.target_of(decision, target, pid),
                                   "decided_by": self.reviewer if decision else "",
                                   "decided_at": self.clock() if decision else ""}
        p = update_proposal(self.path, pid, changes)
        return self.state(f"saved: {p.name}: {decision or 'undecided'}"
                          + (f" ({p.merge_into or p.subtype_of})" if p.merge_into or p.subtype_of else ""))

    def edit(self, pid: str, name: Any = None, definition: Any = None) -> dict[str, Any]:
        """Save a new name and/or definition of proposal ``pid``."""
        changes: dict[str, str] = {}
        if name is not None:
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
                raise ValueError(f"name: expected 1-{MAX_NAME} characters, found {name!r:.40}")
            changes["name"] = " ".join(name.split())
        if definition is not None:
            if not isinstance(definition, str) or len(definition) > MAX_DEFINITION:
                raise ValueError(f"definition: expected at most {MAX_DEFINITION} characters of text")
            changes["definition"] = definition.strip()
        if not changes:
            raise ValueError("expected a name or a definition to save, found neither")
        p = update_proposal(self.path, pid, changes)
        return self.state(f"saved: {p.name}")


def render_proposals_page() -> tuple[str, str]:
    """The page (CSS and JS inlined) and its Content-Security-Policy."""
    return render("proposals.html", "proposals.css", "proposals.js")


def blueprint(state: ProposalsState) -> Any:
    """The Flask blueprint: ``/proposals`` (the page) and its JSON API under ``/api/proposals``."""
    from flask import Blueprint, abort, current_app, jsonify, request

    bp = Blueprint("proposals", __name__)
    page, csp = render_proposals_page()

    def run(fn: Callable[..., dict[str, Any]], *args: Any) -> Any:
        try:
            return jsonify(fn(*args))
        except LookupError as e:
            abort(404, str(e).strip("'\""))
        except ValueError as e:
            abort(400, str(e))

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            abort(400, 'expected a JSON object with a proposal "id"')
        return data

    @bp.get("/proposals")
    def index() -> Any:
        resp = current_app.response_class(page, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = csp  # the reviewer's app keeps a view's own policy
        return resp

    @bp.get("/api/proposals")
    def get_state() -> Any:
        return run(state.state)

    @bp.post("/api/proposals/decide")
    def post_decide() -> Any:
        data = body()
        return run(state.decide, data["id"], data.get("decision", ""), data.get("target"))

    @bp.post("/api/proposals/edit")
    def post_edit() -> Any:
        data = body()
        return run(state.edit, data["id"], data.get("name"), data.get("definition"))

    return bp


def register(app: Any, proposals: str | Path, catalog: Catalog, reviewer: str = "") -> ProposalsState:
    """Add the proposals view of the file ``proposals`` to the reviewer's Flask ``app``."""
    state = ProposalsState(proposals, catalog, reviewer)
    app.register_blueprint(blueprint(state))
    return state
