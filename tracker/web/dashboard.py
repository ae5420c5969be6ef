"""Server-rendered dashboard pages under `/` (Jinja2, no JavaScript framework).

Who sees what:
- admin: every page, every site, the audit browser;
- staff: overview, alerts, patient timelines, survey preview and import, for their site only;
- researcher: the overview (counts under 5 shown as "<5") and the exports page; never a phone
  number, a patient reference or a timeline.
Every view of identifiable data and every change is written to the audit trail.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from tracker.app import App
from tracker.db import queries
from tracker.db.tables import Alert, AuditEvent, CheckIn, Episode, Patient
from tracker.domain import AlertKind, AlertState, CheckInState, ContactState, DomainError
from tracker.phone import mask
from tracker.services import alert_actions, audit, erasure
from tracker.services.contact import set_contact_state
from tracker.services.users import Role
from tracker.web.auth import CSRF, Forbidden, Principal, require_roles, tracker_app
from tracker.web.pages import render

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

ANY_ROLE = require_roles(Role.ADMIN, Role.STAFF, Role.RESEARCHER)
IDENTIFIABLE = require_roles(Role.ADMIN, Role.STAFF)
RESEARCH = require_roles(Role.ADMIN, Role.RESEARCHER)
ADMIN = require_roles(Role.ADMIN)

ALERTS_PAGE_SIZE = 100
AUDIT_PAGE_SIZE = 200
RESPONDED = (CheckInState.COMPLETED, CheckInState.PARTIAL)
CLOSED_AFTER_SENDING = (CheckInState.COMPLETED, CheckInState.PARTIAL, CheckInState.EXPIRED)


def _now(app: App) -> datetime:
    return app.clock.now()


# --- overview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    by_state: dict[str, int]
    by_wave_state: dict[int, dict[str, int]]
    by_pattern: dict[str, int]
    response: list[dict[str, Any]]
    upcoming: list[tuple[str, int]]
    alerts_open: dict[str, int]
    alerts_overdue: dict[str, int]
    episodes: int
    computed_at: datetime


def overview(session: Session, *, now: datetime, app: App, site: str | None) -> Overview:
    """Aggregates for the overview page, limited to one site when `site` is given.

    Counting millions of check-ins takes a noticeable fraction of a second, so the page serves
    these through `OverviewCache`; alert counts are always read fresh (`alert_counts`).
    """
    counts = select(CheckIn.wave, CheckIn.state, func.count()).group_by(CheckIn.wave, CheckIn.state)
    if site is not None:
        counts = counts.join(Episode, Episode.id == CheckIn.episode_id).where(Episode.site == site)
    by_wave_state: dict[int, dict[str, int]] = {}
    by_state: dict[str, int] = {s.value: 0 for s in CheckInState}
    for wave, state, n in session.execute(counts):
        by_wave_state.setdefault(wave, {})[state] = n
        by_state[state] = by_state.get(state, 0) + n

    patterns = select(Episode.pattern, func.count()).group_by(Episode.pattern)
    if site is not None:
        patterns = patterns.where(Episode.site == site)
    by_pattern = {p: n for p, n in session.execute(patterns)}

    response = []
    for wave in sorted(by_wave_state):
        states = by_wave_state[wave]
        responded = sum(states.get(s, 0) for s in RESPONDED)
        eligible = sum(states.get(s, 0) for s in CLOSED_AFTER_SENDING)
        response.append({"wave": wave, "responded": responded, "eligible": eligible})

    horizon = now + timedelta(days=7)
    zone = app.settings.zone
    upcoming_q = select(CheckIn.due_at).where(
        CheckIn.state == CheckInState.SCHEDULED, CheckIn.due_at >= now, CheckIn.due_at < horizon
    )
    if site is not None:
        upcoming_q = upcoming_q.join(Episode, Episode.id == CheckIn.episode_id).where(
            Episode.site == site
        )
    # Grouped by local day in Python: portable, and the 7-day slice is small next to the table.
    days: dict[str, int] = {}
    for offset in range(8):
        days[(now + timedelta(days=offset)).astimezone(zone).strftime("%a %d %b")] = 0
    for (due_at,) in session.execute(upcoming_q):
        key = due_at.astimezone(zone).strftime("%a %d %b")
        days[key] = days.get(key, 0) + 1
    upcoming = [(d, n) for d, n in days.items()]

    alerts_open, alerts_overdue = alert_counts(session, now=now, app=app, site=site)
    episodes = sum(by_pattern.values())
    return Overview(
        by_state, by_wave_state, by_pattern, response, upcoming, alerts_open, alerts_overdue,
        episodes, now,
    )  # fmt: skip


def alert_counts(
    session: Session, *, now: datetime, app: App, site: str | None
) -> tuple[dict[str, int], dict[str, int]]:
    """Unresolved alerts by kind, and how many of them are past their response target."""
    alerts_open: dict[str, int] = {k.value: 0 for k in AlertKind}
    alerts_overdue: dict[str, int] = {k.value: 0 for k in AlertKind}
    risk_cut = now - timedelta(hours=app.settings.risk_alert_target_hours)
    other_cut = now - timedelta(hours=app.settings.other_alert_target_hours)
    overdue = case(
        (and_(Alert.kind == AlertKind.RISK, Alert.raised_at < risk_cut), 1),
        (and_(Alert.kind != AlertKind.RISK, Alert.raised_at < other_cut), 1),
        else_=0,
    )
    alert_q = (
        select(Alert.kind, func.count(), func.sum(overdue))
        .where(Alert.state != AlertState.RESOLVED)
        .group_by(Alert.kind)
    )
    if site is not None:
        alert_q = alert_q.where(Alert.site == site)
    for kind, n, late in session.execute(alert_q):
        alerts_open[kind] = n
        alerts_overdue[kind] = int(late or 0)
    return alerts_open, alerts_overdue


class OverviewCache:
    """Stale-while-revalidate cache of the overview figures, per site scope.

    The first request for a scope computes the figures; later ones get the cached copy, and
    once it is older than `ttl_seconds` one background thread recomputes it while requests
    keep getting the previous figures (the page says how old they are). Alerts are not cached.
    """

    def __init__(self, app: App, ttl_seconds: float = 60.0) -> None:
        self.app = app
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str | None, tuple[float, Overview]] = {}
        self._refreshing: set[str | None] = set()
        self._lock = threading.Lock()

    def _compute(self, site: str | None) -> Overview:
        with self.app.sessions() as session:
            data = overview(session, now=self.app.clock.now(), app=self.app, site=site)
        with self._lock:
            self._entries[site] = (time.monotonic(), data)
            self._refreshing.discard(site)
        return data

    def _refresh_in_background(self, site: str | None) -> None:
        try:
            self._compute(site)
        except Exception:  # noqa: BLE001 - the next request retries; never kill the server
            log.exception("overview refresh failed")
            with self._lock:
                self._refreshing.discard(site)

    def clear(self) -> None:
        """Forget every cached figure (the next request recounts)."""
        with self._lock:
            self._entries.clear()

    def get(self, site: str | None) -> Overview:
        with self._lock:
            entry = self._entries.get(site)
            stale = entry is not None and time.monotonic() - entry[0] > self.ttl_seconds
            start_refresh = stale and site not in self._refreshing
            if start_refresh:
                self._refreshing.add(site)
        if entry is None:
            return self._compute(site)
        if start_refresh:
            threading.Thread(target=self._refresh_in_background, args=(site,), daemon=True).start()
        return entry[1]


def _overview_cache(request: Request) -> OverviewCache:
    state = request.app.state
    cache = getattr(state, "overview_cache", None)
    if cache is None:
        cache = state.overview_cache = OverviewCache(tracker_app(request))
    return cache  # type: ignore[no-any-return]


def response_rate(responded: int, eligible: int, *, suppressed: bool) -> str:
    """A percentage, or '-' when it would reveal a count under 5 to a researcher."""
    if eligible == 0:
        return "-"
    if suppressed and (0 < responded < 5 or 0 < eligible - responded < 5):
        return "suppressed"
    return f"{100 * responded / eligible:.0f}%"


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, user: Principal = ANY_ROLE) -> Response:
    app = tracker_app(request)
    now = _now(app)
    data = _overview_cache(request).get(user.site_scope)
    with app.sessions() as session:
        alerts_open, alerts_overdue = alert_counts(session, now=now, app=app, site=user.site_scope)
    data = replace(data, alerts_open=alerts_open, alerts_overdue=alerts_overdue)
    suppressed = user.role is Role.RESEARCHER
    rates = [
        {**r, "rate": response_rate(r["responded"], r["eligible"], suppressed=suppressed)}
        for r in data.response
    ]
    return render(
        request,
        "overview.html",
        {
            "data": data,
            "rates": rates,
            "suppressed": suppressed,
            "states": [s.value for s in CheckInState],
            "site": user.site_scope,
            "now": now.astimezone(app.settings.zone),
            "computed_at": data.computed_at.astimezone(app.settings.zone),
        },
    )


# --- alerts -----------------------------------------------------------------------------


def _alert_target_hours(app: App, kind: str) -> float:
    s = app.settings
    return s.risk_alert_target_hours if kind == AlertKind.RISK else s.other_alert_target_hours


def _age_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} days {hours % 24} h"


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    user: Principal = IDENTIFIABLE,
    page: int = Query(1, ge=1, le=10_000),
    show: str = Query("open", pattern="^(open|resolved)$"),
) -> Response:
    app = tracker_app(request)
    now = _now(app)
    with app.sessions() as session:
        query = select(Alert)
        if show == "open":
            query = query.where(Alert.state != AlertState.RESOLVED).order_by(
                case((Alert.kind == AlertKind.RISK, 0), else_=1), Alert.raised_at, Alert.id
            )
        else:
            query = query.where(Alert.state == AlertState.RESOLVED).order_by(
                Alert.resolved_at.desc(), Alert.id.desc()
            )
        if user.site_scope is not None:
            query = query.where(Alert.site == user.site_scope)
        rows = session.scalars(
            query.limit(ALERTS_PAGE_SIZE + 1).offset((page - 1) * ALERTS_PAGE_SIZE)
        ).all()
        more = len(rows) > ALERTS_PAGE_SIZE
        items = []
        for alert, patient_ref, episode_ref in alert_actions.with_refs(
            session, rows[:ALERTS_PAGE_SIZE]
        ):
            age = now - alert.raised_at
            target = _alert_target_hours(app, alert.kind)
            items.append(
                {
                    "alert": alert,
                    "patient_ref": patient_ref,
                    "episode_ref": episode_ref,
                    "age": _age_text(age),
                    "target": f"{target:g} h",
                    "overdue": alert.state != AlertState.RESOLVED and age > timedelta(hours=target),
                }
            )
        audit.record(
            session,
            at=now,
            actor=user.actor,
            action="alerts.view",
            entity="alert",
            detail={"show": show, "page": page, "count": len(items)},
        )
        session.commit()
        return render(
            request,
            "alerts.html",
            {
                "items": items,
                "page": page,
                "more": more,
                "show": show,
                "zone": app.settings.zone,
                "flash": request.query_params.get("done"),
            },
        )


def _alert_for(session: Session, alert_id: int, user: Principal) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or not user.may_see_site(alert.site):
        raise Forbidden("There is no such alert for your site.")
    return alert


def _act_on_alert(
    request: Request, alert_id: int, user: Principal, act: Callable[..., object], **kwargs: Any
) -> Response | None:
    """Run one alert action for `user`; returns an error page, or None when it was done."""
    app = tracker_app(request)
    with app.sessions() as session:
        alert = _alert_for(session, alert_id, user)
        try:
            act(session, alert, now=_now(app), actor=user.actor, **kwargs)
        except DomainError as exc:
            status = 409 if act is alert_actions.acknowledge else 422
            return render(request, "error.html", {"title": "Not done", "message": str(exc)}, status)
        session.commit()
    return None


@router.post("/alerts/{alert_id}/acknowledge", dependencies=[CSRF])
def acknowledge_alert(
    request: Request, alert_id: int, note: str = Form(""), user: Principal = IDENTIFIABLE
) -> Response:
    failed = _act_on_alert(request, alert_id, user, alert_actions.acknowledge, note=note)
    return failed or RedirectResponse(f"/alerts?done=acknowledged+{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/resolve", dependencies=[CSRF])
def resolve_alert(
    request: Request, alert_id: int, note: str = Form(""), user: Principal = IDENTIFIABLE
) -> Response:
    failed = _act_on_alert(request, alert_id, user, alert_actions.resolve, note=note)
    return failed or RedirectResponse(f"/alerts?done=resolved+{alert_id}", status_code=303)


# --- patient timeline -------------------------------------------------------------------


def _patient_for(session: Session, ref: str, user: Principal) -> Patient:
    patient = session.scalars(select(Patient).where(Patient.patient_ref == ref)).first()
    if patient is None or not queries.patient_visible(session, patient.id, site=user.site_scope):
        raise Forbidden("There is no patient with that reference for your site.")
    return patient


@router.get("/patients", response_class=HTMLResponse)
def find_patient(
    request: Request, ref: str = Query("", max_length=64), user: Principal = IDENTIFIABLE
) -> Response:
    ref = ref.strip()
    if not ref:
        return render(request, "find_patient.html", {"ref": "", "error": None})
    app = tracker_app(request)
    with app.sessions() as session:
        # Staff find only patients and episodes of their own site: another site's reference
        # neither redirects nor reveals which patient it belongs to.
        scope = user.site_scope
        patient = session.scalars(select(Patient).where(Patient.patient_ref == ref)).first()
        if patient is not None and not queries.patient_visible(session, patient.id, site=scope):
            patient = None
        if patient is None:
            episode_q = select(Episode).where(Episode.episode_ref == ref)
            if scope is not None:
                episode_q = episode_q.where(Episode.site == scope)
            episode = session.scalars(episode_q).first()
            patient = episode.patient if episode is not None else None
        if patient is None:
            return render(
                request,
                "find_patient.html",
                {"ref": ref, "error": "No patient or episode has that reference."},
                404,
            )
        return RedirectResponse(f"/patients/{patient.patient_ref}", status_code=303)


@router.get("/patients/{ref}", response_class=HTMLResponse)
def timeline_page(request: Request, ref: str, user: Principal = IDENTIFIABLE) -> Response:
    app = tracker_app(request)
    now = _now(app)
    zone = app.settings.zone
    with app.sessions() as session:
        patient = _patient_for(session, ref, user)
        phone = "-"
        if patient.phone_ciphertext is not None:
            phone = mask(app.crypto.decrypt_phone(patient.phone_ciphertext))
        # A patient may have episodes at two sites: staff see their own site's episodes,
        # check-ins, texts, answers and alerts, plus texts tied to no check-in (see
        # queries.patient_timeline, the one place that rule lives).
        shown = queries.patient_timeline(session, patient.id, site=user.site_scope)
        episodes = shown.episodes
        checkins = shown.checkins
        episode_refs = {e.id: e.episode_ref for e in episodes}
        checkin_labels = {
            c.id: f"{episode_refs.get(c.episode_id, '?')} / {c.wave} months" for c in checkins
        }
        audit.record(
            session,
            at=now,
            actor=user.actor,
            action="patient.view",
            entity="patient",
            entity_ref=patient.patient_ref,
        )
        session.commit()
        return render(
            request,
            "timeline.html",
            {
                "patient": patient,
                "phone": phone,
                "episodes": episodes,
                "episode_refs": episode_refs,
                "checkins": checkins,
                "checkin_labels": checkin_labels,
                "messages": shown.messages,
                "answers": shown.answers,
                "alerts": shown.alerts,
                "zone": zone,
                "flash": request.query_params.get("done"),
                "states": ContactState,
            },
        )


_CONTACT_ACTIONS = {
    "pause": ContactState.PAUSED,
    "resume": ContactState.ACTIVE,
    "withdraw": ContactState.WITHDRAWN,
}


@router.post("/patients/{ref}/contact", dependencies=[CSRF])
def change_contact(
    request: Request,
    ref: str,
    action: str = Form(...),
    reason: str = Form(""),
    user: Principal = IDENTIFIABLE,
) -> Response:
    app = tracker_app(request)
    state = _CONTACT_ACTIONS.get(action)
    if state is None:
        return render(
            request, "error.html", {"title": "Not done", "message": "Unknown action."}, 422
        )
    with app.sessions() as session:
        patient = _patient_for(session, ref, user)
        if patient.erased_at is not None:
            raise Forbidden("This patient's data was erased.")
        if action == "resume" and patient.contact_state == ContactState.STOPPED:
            return render(
                request,
                "error.html",
                {
                    "title": "Not done",
                    "message": "This patient texted STOP. Only the patient can restart texts "
                    "(by texting START); staff cannot override an opt-out.",
                },
                409,
            )
        set_contact_state(
            session,
            patient,
            state,
            now=_now(app),
            actor=user.actor,
            reason=(reason.strip() or f"{action} by staff")[:200],
            window=app.window,
        )
        session.commit()
    return RedirectResponse(f"/patients/{ref}?done={action}", status_code=303)


@router.post("/patients/{ref}/erase", dependencies=[CSRF])
def erase(
    request: Request, ref: str, confirm: str = Form(""), user: Principal = IDENTIFIABLE
) -> Response:
    app = tracker_app(request)
    if confirm.strip() != ref:
        return render(
            request,
            "error.html",
            {
                "title": "Not erased",
                "message": "To erase, type the patient reference exactly into the confirmation"
                " box. Nothing was changed.",
            },
            422,
        )
    with app.sessions() as session:
        _patient_for(session, ref, user)
        result = erasure.erase_patient(
            session, ref, now=_now(app), actor=user.actor, crypto=app.crypto
        )
        session.commit()
    return render(request, "erased.html", {"result": result})


# --- survey preview ---------------------------------------------------------------------


@router.get("/surveys/preview", response_class=HTMLResponse)
def survey_preview(request: Request, user: Principal = IDENTIFIABLE) -> Response:
    from tracker.web import preview

    app = tracker_app(request)
    return render(request, "preview.html", preview.page_context(app, None, None))


@router.post("/surveys/preview", response_class=HTMLResponse, dependencies=[CSRF])
def survey_try(
    request: Request,
    reply: str = Form("", max_length=1600),
    state: str = Form("", max_length=20_000),
    user: Principal = IDENTIFIABLE,
) -> Response:
    from tracker.web import preview

    app = tracker_app(request)
    return render(request, "preview.html", preview.page_context(app, state, reply))


# --- import -----------------------------------------------------------------------------

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, user: Principal = IDENTIFIABLE) -> Response:
    return render(request, "import.html", {"report": None})


@router.post("/import", response_class=HTMLResponse, dependencies=[CSRF])
async def import_upload(
    request: Request,
    file: UploadFile,
    skip_invalid: str = Form(""),
    user: Principal = IDENTIFIABLE,
) -> Response:
    from tracker.web import importing_page

    app = tracker_app(request)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return render(
            request,
            "import.html",
            {
                "report": None,
                "file_error": "The file is over 50 MB: split it or use `tracker import`.",
            },
            413,
        )
    result = importing_page.run_import(
        app, data, filename=file.filename or "upload.csv", skip_invalid=bool(skip_invalid),
        user=user,
    )  # fmt: skip
    status = 200 if result.get("imported") else 422
    return render(request, "import.html", {"report": result}, status)


# --- exports ----------------------------------------------------------------------------


@router.get("/exports", response_class=HTMLResponse)
def exports_page(request: Request, user: Principal = RESEARCH) -> Response:
    from tracker.web import exports

    app = tracker_app(request)
    return render(request, "exports.html", {"exports": exports.list_exports(app), "error": None})


@router.post("/exports", response_class=HTMLResponse, dependencies=[CSRF])
def start_export(
    request: Request,
    fmt: str = Form("csv"),
    study: str = Form("default", max_length=64),
    user: Principal = RESEARCH,
) -> Response:
    from tracker.web import exports

    app = tracker_app(request)
    try:
        exports.run_export(app, fmt=fmt, study=study, actor=user.actor)
    except exports.ExportUnavailable as exc:
        return render(
            request, "exports.html", {"exports": exports.list_exports(app), "error": str(exc)}, 422
        )
    return RedirectResponse("/exports", status_code=303)


@router.get("/exports/{export_id}/{filename}")
def download_export(
    request: Request, export_id: str, filename: str, user: Principal = RESEARCH
) -> Response:
    from tracker.web import exports

    app = tracker_app(request)
    path = exports.export_file(app, export_id, filename)
    if path is None:
        raise Forbidden("There is no such export file.")
    with app.sessions() as session:
        audit.record(
            session,
            at=_now(app),
            actor=user.actor,
            action="export.download",
            entity="export",
            entity_ref=export_id,
            detail={"file": filename},
        )
        session.commit()
    return FileResponse(path, filename=filename)


# --- audit browser ----------------------------------------------------------------------


def _audit_query(actor: str, action: str, entity_ref: str) -> Any:
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    if entity_ref:
        query = query.where(AuditEvent.entity_ref == entity_ref)
    return query


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: Principal = ADMIN,
    actor: str = Query("", max_length=254),
    action: str = Query("", max_length=64),
    entity_ref: str = Query("", max_length=64),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    app = tracker_app(request)
    with app.sessions() as session:
        rows = session.scalars(
            _audit_query(actor, action, entity_ref)
            .limit(AUDIT_PAGE_SIZE + 1)
            .offset((page - 1) * AUDIT_PAGE_SIZE)
        ).all()
        events = [
            {
                "at": e.at.astimezone(app.settings.zone),
                "actor": e.actor,
                "action": e.action,
                "entity": e.entity,
                "entity_ref": e.entity_ref,
                "detail": json.dumps(e.detail, sort_keys=True) if e.detail else "",
            }
            for e in rows[:AUDIT_PAGE_SIZE]
        ]
        audit.record(
            session, at=_now(app), actor=user.actor, action="audit.view", entity="audit_event"
        )
        session.commit()
    return render(
        request,
        "audit.html",
        {
            "events": events,
            "more": len(rows) > AUDIT_PAGE_SIZE,
            "page": page,
            "filters": {"actor": actor, "action": action, "entity_ref": entity_ref},
        },
    )


@router.get("/audit.csv")
def audit_csv(
    request: Request,
    user: Principal = ADMIN,
    actor: str = Query("", max_length=254),
    action: str = Query("", max_length=64),
    entity_ref: str = Query("", max_length=64),
) -> Response:
    app = tracker_app(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["at", "actor", "action", "entity", "entity_ref", "detail"])
    with app.sessions() as session:
        for e in session.scalars(_audit_query(actor, action, entity_ref)):
            writer.writerow(
                [
                    e.at.isoformat(),
                    _csv_safe(e.actor),
                    _csv_safe(e.action),
                    _csv_safe(e.entity or ""),
                    _csv_safe(e.entity_ref or ""),
                    _csv_safe(json.dumps(e.detail, sort_keys=True) if e.detail else ""),
                ]
            )
        audit.record(
            session, at=_now(app), actor=user.actor, action="audit.download", entity="audit_event"
        )
        session.commit()
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="audit.csv"'},
    )


def _csv_safe(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: prefix a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
