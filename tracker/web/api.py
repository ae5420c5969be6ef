"""JSON API under /api/ (OpenAPI at /api/openapi.json, docs at /api/docs).

Bearer tokens (`tracker token create`) carry a role and, for staff, a site:
- admin: everything; staff: episodes, check-ins and alerts of their site;
- researcher: exports only.
Validation errors are 422 with, per problem, `loc`, `field` and `msg` (the reason).
Every call that reads identifiable data or changes something leaves an audit event.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tracker.app import App
from tracker.db.tables import Alert, CheckIn, Episode
from tracker.domain import AlertKind, AlertState, CheckInState, DomainError
from tracker.services import alert_actions, audit
from tracker.services.users import Role
from tracker.web.auth import Principal, require_token, tracker_app

router = APIRouter(prefix="/api", tags=["api"])

ENROL = require_token(Role.ADMIN, Role.STAFF)
READ = require_token(Role.ADMIN, Role.STAFF)
EXPORT = require_token(Role.ADMIN, Role.RESEARCHER)

MAX_BATCH = 1000
MAX_ID = 2**62
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL characters


# --- models -----------------------------------------------------------------------------


class EpisodeIn(BaseModel):
    """One discharged episode: the import CSV's columns, with the same validation."""

    model_config = ConfigDict(extra="forbid")

    episode_ref: str = Field(max_length=200)
    patient_ref: str = Field(max_length=200)
    phone: str | None = Field(None, max_length=64, description="UK mobile; E.164 or national")
    birth_year: int | None = None
    gender: str | None = Field(None, max_length=64)
    imd_quintile: int | None = None
    site: str = Field(max_length=200)
    referral_date: str = Field(max_length=32, description="YYYY-MM-DD")
    discharge_date: str = Field(max_length=32, description="YYYY-MM-DD")
    sessions: int
    connected_external: bool | str
    pattern: str | None = Field(None, max_length=32, description="rapid, anchored or with_only")
    consent_sms: bool | str
    baseline_life_satisfaction: int | None = None
    baseline_worthwhile: int | None = None
    baseline_happy: int | None = None
    baseline_anxious: int | None = None
    baseline_lonely: int | None = None
    baseline_gp_visits: int | None = None


class EpisodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episodes: list[EpisodeIn] = Field(min_length=1, max_length=MAX_BATCH)


class EnrolmentOut(BaseModel):
    episodes_created: int
    episodes_updated: int
    episodes_unchanged: int
    patients_created: int
    patients_updated: int
    checkins_scheduled: int
    checkins_missed: int
    checkins_cancelled: int
    checkins_rescheduled: int


class CheckInOut(BaseModel):
    id: int
    episode_ref: str
    site: str
    pattern: str
    wave: int
    state: str
    target_date: date
    due_at: datetime
    window_closes_at: datetime
    reminders_sent: int
    reason: str | None


class CheckInPage(BaseModel):
    items: list[CheckInOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null at the end")


class AlertOut(BaseModel):
    id: int
    kind: str
    state: str
    site: str | None
    patient_ref: str | None
    episode_ref: str | None
    detail: str | None
    raised_at: datetime
    target_hours: float
    overdue: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_after: int | None


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["acknowledge", "resolve"]
    note: str = Field("", max_length=2000, pattern=NO_NUL)


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "parquet", "stata", "spss", "fhir"] = "csv"
    study: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class ExportOut(BaseModel):
    id: str
    format: str
    path: str
    files: list[str]


def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- episodes ---------------------------------------------------------------------------


@router.post(
    "/episodes",
    status_code=201,
    response_model=EnrolmentOut,
    responses={422: {"description": "validation errors: loc, field, msg per problem"}},
)
def create_episodes(request: Request, body: EpisodesIn, principal: Principal = ENROL) -> Any:
    """Enrol discharged episodes (all or nothing), validated exactly like the import CSV."""
    from tracker.importing import validate_row
    from tracker.services.enrolment import enrol_episodes, service_today

    app = tracker_app(request)
    today = service_today(app)
    rows = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(body.episodes):
        raw = item.model_dump()
        loc = ["body", "episodes", index]
        nul = [k for k, v in raw.items() if isinstance(v, str) and "\x00" in v]
        if nul:
            problems += [
                {"loc": [*loc, k], "field": k, "msg": "contains a NUL character; remove it"}
                for k in nul
            ]
            continue
        result = validate_row(
            {k: ("" if v is None else v) for k, v in raw.items()}, row=index, today=today
        )
        if isinstance(result, list):
            problems += [
                {"loc": [*loc, e.column] if e.column else loc, "field": e.column, "msg": e.message}
                for e in result
            ]
            continue
        if principal.site_scope is not None and result.site != principal.site_scope:
            problems.append(
                {
                    "loc": [*loc, "site"],
                    "field": "site",
                    "msg": f"this token may only enrol episodes for site {principal.site_scope}",
                }
            )
            continue
        if result.episode_ref in seen:
            problems.append(
                {
                    "loc": [*loc, "episode_ref"],
                    "field": "episode_ref",
                    "msg": f"appears twice in this request (first at index {seen[result.episode_ref]})",
                }
            )
            continue
        seen[result.episode_ref] = index
        rows.append(result)
    if problems:
        return _problem(422, problems)
    counts = enrol_episodes(app, rows, actor=principal.actor)
    with app.sessions() as session:
        audit.record(
            session,
            at=app.clock.now(),
            actor=principal.actor,
            action="api.episodes.create",
            entity="episode",
            detail={"rows": len(rows), **counts.as_dict()},
        )
        session.commit()
    return counts.as_dict()


# --- check-ins --------------------------------------------------------------------------


@router.get("/checkins", response_model=CheckInPage)
def list_checkins(
    request: Request,
    principal: Principal = READ,
    state: CheckInState | None = None,
    wave: Annotated[int | None, Query(ge=0, le=1200)] = None,
    site: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    episode_ref: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    due_from: datetime | None = None,
    due_to: datetime | None = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="cursor: last id seen")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Check-ins and their states, oldest id first; page with `after=next_after`."""
    app = tracker_app(request)
    query = (
        select(CheckIn, Episode.episode_ref, Episode.site, Episode.pattern)
        .join(Episode, Episode.id == CheckIn.episode_id)
        .order_by(CheckIn.id)
        .limit(limit + 1)
    )
    scope = principal.site_scope
    if scope is not None:
        if site is not None and site != scope:
            return {"items": [], "next_after": None}
        site = scope
    if site is not None:
        query = query.where(Episode.site == site)
    if state is not None:
        query = query.where(CheckIn.state == state)
    if wave is not None:
        query = query.where(CheckIn.wave == wave)
    if episode_ref is not None:
        query = query.where(Episode.episode_ref == episode_ref)
    if due_from is not None:
        query = query.where(CheckIn.due_at >= _as_utc(due_from))
    if due_to is not None:
        query = query.where(CheckIn.due_at < _as_utc(due_to))
    if after is not None:
        query = query.where(CheckIn.id > after)
    with app.sessions() as session:
        rows = session.execute(query).all()
        items = [
            {
                "id": c.id,
                "episode_ref": ref,
                "site": ep_site,
                "pattern": pattern,
                "wave": c.wave,
                "state": c.state,
                "target_date": c.target_date,
                "due_at": c.due_at,
                "window_closes_at": c.window_closes_at,
                "reminders_sent": c.reminders_sent,
                "reason": c.reason,
            }
            for c, ref, ep_site, pattern in rows[:limit]
        ]
        audit.record(
            session,
            at=app.clock.now(),
            actor=principal.actor,
            action="api.checkins.list",
            entity="checkin",
            detail={"count": len(items), "site": site, "state": state},
        )
        session.commit()
    next_after = items[-1]["id"] if len(rows) > limit else None
    return {"items": items, "next_after": next_after}


# --- alerts -----------------------------------------------------------------------------


def _target_hours(request: Request, kind: str) -> float:
    s = tracker_app(request).settings
    return s.risk_alert_target_hours if kind == AlertKind.RISK else s.other_alert_target_hours


def _alert_out(
    request: Request, alert: Alert, patient_ref: str | None, episode_ref: str | None
) -> dict[str, Any]:
    now = tracker_app(request).clock.now()
    target = _target_hours(request, alert.kind)
    return {
        "id": alert.id,
        "kind": alert.kind,
        "state": alert.state,
        "site": alert.site,
        "patient_ref": patient_ref,
        "episode_ref": episode_ref,
        "detail": alert.detail,
        "raised_at": alert.raised_at,
        "target_hours": target,
        "overdue": alert.state != AlertState.RESOLVED
        and now - alert.raised_at > timedelta(hours=target),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_by": alert.resolved_by,
        "resolved_at": alert.resolved_at,
    }


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    request: Request,
    principal: Principal = READ,
    state: Literal["unresolved", "open", "acknowledged", "resolved", "all"] = "unresolved",
    kind: AlertKind | None = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Alerts, risk first then oldest first when listing unresolved ones; page with `after`."""
    app = tracker_app(request)
    query = select(Alert).limit(limit + 1)
    if state == "unresolved":
        query = query.where(Alert.state != AlertState.RESOLVED)
    elif state != "all":
        query = query.where(Alert.state == state)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if principal.site_scope is not None:
        query = query.where(Alert.site == principal.site_scope)
    if after is not None:
        query = query.where(Alert.id > after)
    query = query.order_by(Alert.id)
    with app.sessions() as session:
        rows = session.scalars(query).all()
        items = [
            _alert_out(request, a, p, e)
            for a, p, e in alert_actions.with_refs(session, rows[:limit])
        ]
        audit.record(
            session,
            at=app.clock.now(),
            actor=principal.actor,
            action="api.alerts.list",
            entity="alert",
            detail={"count": len(items), "state": state},
        )
        session.commit()
    if state == "unresolved":
        items.sort(key=lambda a: (a["kind"] != AlertKind.RISK, a["raised_at"]))
    return {"items": items, "next_after": rows[limit - 1].id if len(rows) > limit else None}


def _act_on_alert(request: Request, alert_id: int, body: AlertAction, principal: Principal) -> Any:
    app = tracker_app(request)
    with app.sessions() as session:
        found = session.get(Alert, alert_id)
        if found is None or not principal.may_see_site(found.site):
            return _problem(404, f"no alert {alert_id} for this token")
        alert, patient_ref, episode_ref = alert_actions.with_refs(session, [found])[0]
        action = (
            alert_actions.acknowledge if body.action == "acknowledge" else alert_actions.resolve
        )
        try:
            action(session, alert, now=app.clock.now(), actor=principal.actor, note=body.note)
        except DomainError as exc:
            status = 422 if body.action == "resolve" and not body.note.strip() else 409
            return _problem(
                status, [{"loc": ["body", "note"], "field": "note", "msg": str(exc)}]
                if status == 422 else str(exc),
            )  # fmt: skip
        session.commit()
        return _alert_out(request, alert, patient_ref, episode_ref)


_ALERT_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such alert for this token"},
    409: {"description": "the alert is already in that state"},
}


@router.post("/alerts/{alert_id}", response_model=AlertOut, responses=_ALERT_RESPONSES)
def act_on_alert(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: AlertAction,
    principal: Principal = READ,
) -> Any:
    """Acknowledge an alert, or resolve it with a note (required)."""
    return _act_on_alert(request, alert_id, body, principal)


@router.patch("/alerts/{alert_id}", response_model=AlertOut, responses=_ALERT_RESPONSES)
def patch_alert(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: AlertAction,
    principal: Principal = READ,
) -> Any:
    """Same as POST /api/alerts/{alert_id}."""
    return _act_on_alert(request, alert_id, body, principal)


# --- exports ----------------------------------------------------------------------------


@router.post(
    "/exports",
    status_code=201,
    response_model=ExportOut,
    responses={503: {"description": "exports are not available in this installation"}},
)
def start_export(
    request: Request, body: Annotated[ExportIn, Body()] = ExportIn(), principal: Principal = EXPORT
) -> Any:
    """Run a pseudonymised export now into a server-side folder; returns its id, path, files."""
    from tracker.web import exports

    app = tracker_app(request)
    try:
        record = exports.run_export(app, fmt=body.format, study=body.study, actor=principal.actor)
    except exports.ExportUnavailable as exc:
        return _problem(503, str(exc))
    return exports.as_json(record)


# --- wiring -----------------------------------------------------------------------------


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str | None:
    names = [
        part for part in loc if isinstance(part, str) and part not in ("body", "query", "path")
    ]
    return names[-1] if names else None


def install(web: FastAPI, app: App) -> None:
    """Include the router; validation errors name the field (API) or show a page (dashboard)."""

    @web.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "loc": list(err.get("loc", ())),
                "field": _field_of(err.get("loc", ())),
                "msg": err.get("msg", "is not valid"),
                "type": err.get("type", "value_error"),
            }
            for err in exc.errors()
        ]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": errors}, status_code=422)
        from tracker.web.pages import render

        fields = ", ".join(sorted({e["field"] or "?" for e in errors}))
        return render(
            request,
            "error.html",
            {
                "title": "Form not accepted",
                "message": f"Some values were missing or not valid ({fields}). "
                "Go back, check the form and try again.",
            },
            422,
        )

    web.include_router(router)
