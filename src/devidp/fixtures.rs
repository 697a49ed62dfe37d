//! The Graph emulator's data, in one place: each registered tool's Graph path with the
//! permission Graph checks for it, and the fixtures it serves per dev user. A new tool's
//! endpoint is one entry in [`PATHS`] and its fixtures here; `graph.rs` only serves them.

use std::time::{Duration, SystemTime};

use super::state::DevUser;
use crate::tools::{CALENDARS_READ, GraphPermission, USER_READ};

/// Each Graph path the tools call and the delegated permission its token's `scp` must hold
/// (as Graph answers 403 `ErrorAccessDenied` without it).
pub const PATHS: &[(&str, GraphPermission)] = &[
    ("/v1.0/me", USER_READ),
    ("/v1.0/me/calendarView", CALENDARS_READ),
];

/// The permission Graph requires for `path`.
pub fn permission_for(path: &str) -> Option<GraphPermission> {
    PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, perm)| *perm)
}

/// One calendar event, its times relative to when the emulator is asked.
struct Template {
    subject: &'static str,
    /// Hours from now to the start.
    starts_in_hours: u64,
    minutes: u64,
    location: &'static str,
    online: bool,
}

/// The events every dev user has, each personalised with the user's name (so two users'
/// calendars differ, and a test can tell whose it got).
const EVENTS: &[Template] = &[
    Template {
        subject: "Stand-up",
        starts_in_hours: 2,
        minutes: 15,
        location: "Teams",
        online: true,
    },
    Template {
        subject: "Design review",
        starts_in_hours: 26,
        minutes: 60,
        location: "Room 4.01",
        online: false,
    },
    Template {
        subject: "1:1",
        starts_in_hours: 50,
        minutes: 30,
        location: "Teams",
        online: true,
    },
    Template {
        subject: "Planning",
        starts_in_hours: 98,
        minutes: 90,
        location: "Room 2.12",
        online: false,
    },
    Template {
        subject: "Retrospective",
        starts_in_hours: 24 * 9,
        minutes: 45,
        location: "Teams",
        online: true,
    },
];

/// A calendar event of `user`'s, in Graph's shape (`Prefer: outlook.timezone="UTC"`).
#[derive(Debug, Clone)]
pub struct Event {
    pub start: SystemTime,
    pub end: SystemTime,
    pub body: serde_json::Value,
}

/// Graph's `dateTime` with `timeZone: "UTC"`: `2026-01-02T10:00:00.0000000`.
pub fn graph_date_time(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{}.0000000", text.trim_end_matches('Z'))
}

/// `user`'s events, sorted by start, times relative to `now`.
pub fn events(user: &DevUser, now: SystemTime) -> Vec<Event> {
    let first = user.name.split_whitespace().next().unwrap_or(&user.name);
    EVENTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let start = now + Duration::from_secs(t.starts_in_hours * 3600);
            let end = start + Duration::from_secs(t.minutes * 60);
            let id = format!("{}-{i}", user.id);
            let join = t
                .online
                .then(|| serde_json::json!({"joinUrl": format!("https://teams.contoso.dev/l/meetup-join/{id}")}));
            let body = serde_json::json!({
                "id": id,
                "subject": format!("{} ({first})", t.subject),
                "start": {"dateTime": graph_date_time(start), "timeZone": "UTC"},
                "end": {"dateTime": graph_date_time(end), "timeZone": "UTC"},
                "location": {"displayName": t.location},
                "organizer": {"emailAddress": {"name": user.name, "address": user.email}},
                "isOnlineMeeting": t.online,
                "onlineMeeting": join,
                "webLink": format!("https://outlook.contoso.dev/calendar/item/{id}"),
            });
            Event { start, end, body }
        })
        .collect()
}
