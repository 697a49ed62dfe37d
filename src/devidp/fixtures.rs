//! The Graph emulator's data: the fixtures it serves per dev user. A new tool's endpoint is
//! one entry in [`shapes::PATHS`] (with the permission Graph checks for it) and its fixtures
//! here; `graph.rs` only serves them, in the shapes `shapes.rs` writes.

use std::time::{Duration, SystemTime};

use super::shapes;
use super::state::DevUser;

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
            let join = format!("https://teams.contoso.dev/l/meetup-join/{id}");
            let body = shapes::event(&shapes::Event {
                id: &id,
                subject: &format!("{} ({first})", t.subject),
                start,
                end,
                location: t.location,
                organizer: (&user.name, &user.email),
                join_url: t.online.then_some(join.as_str()),
                web_link: &format!("https://outlook.contoso.dev/calendar/item/{id}"),
            });
            Event { start, end, body }
        })
        .collect()
}
