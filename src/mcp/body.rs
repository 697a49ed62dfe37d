//! A POST's body, read once and parsed once, for the layer that judges its tool calls
//! (`tool_access.rs`) and the stateless fast path that answers it (`direct.rs`). What goes
//! on to rmcp gets the same bytes back as its payload; rmcp parses them as it always does.
//!
//! The parse is lenient where judging needs it (a message it cannot read still counts as a
//! call) and strict where answering needs it: only a single request with exactly the members
//! `jsonrpc`, `id`, `method` and `params` may be answered by the fast path.

use std::borrow::Cow;
use std::fmt;

use actix_web::dev::Payload;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use rmcp::model::{
    CallToolRequestParams, JsonRpcVersion2_0, PaginatedRequestParams, RequestId, RequestMetaObject,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// `_meta` keys of the per-request (2026-07-28) lifecycle, which rmcp validates.
const LIFECYCLE_META: &str = "io.modelcontextprotocol/";

/// actix's boxed payload stream (not re-exported by actix-web).
pub(super) type BoxedPayload = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>,
>;

/// The whole body, or — past the limit or on a read error — a payload that replays what
/// was read followed by the rest, for rmcp to answer.
pub(super) async fn read(mut payload: Payload, max_body: usize) -> Result<Bytes, Payload> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len() + chunk.len() <= max_body => body.extend_from_slice(&chunk),
            other => {
                let read = futures_util::stream::iter([Ok(body.freeze()), other]);
                let replay: BoxedPayload = Box::pin(read.chain(payload));
                return Err(Payload::from(replay));
            }
        }
    }
    Ok(body.freeze())
}

/// A request the fast path answers.
pub(super) enum Call {
    List,
    Tool(Box<CallToolRequestParams>),
}

/// What a body says, as far as these layers need it.
pub(super) enum Parsed<'a> {
    /// A single `tools/list` or `tools/call` the fast path may answer, parsed in full.
    Direct { id: RequestId, call: Call },
    /// Anything else: its `tools/call`s, each message that cannot be read counted as one
    /// (what this layer cannot judge, rmcp might still run).
    Other(Vec<Called<'a>>),
}

/// One `tools/call` of a body that goes on to rmcp: its id and tool name as sent, `None`
/// when they cannot be read.
#[derive(Default)]
pub(super) struct Called<'a> {
    pub id: Option<&'a RawValue>,
    pub name: Option<Cow<'a, str>>,
}

/// Parses `body` once: for the fast path when `direct` (its headers allowed it), else only
/// for the calls it makes.
pub(super) fn parse(body: &[u8], direct: bool) -> Parsed<'_> {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if batch {
        return Parsed::Other(match serde_json::from_slice::<Vec<Message>>(body) {
            Ok(messages) => messages.into_iter().filter_map(Message::call).collect(),
            Err(_) => vec![Called::default()],
        });
    }
    let Ok(message) = serde_json::from_slice::<Message>(body) else {
        return Parsed::Other(vec![Called::default()]);
    };
    if direct && let Some((id, call)) = message.direct() {
        return Parsed::Direct { id, call };
    }
    Parsed::Other(message.call().into_iter().collect())
}

/// One JSON-RPC message's members, each kept raw; `unreadable` when it is not an object or
/// names a member twice.
#[derive(Default)]
struct Message<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    /// Another member, or `jsonrpc` twice: not a request the fast path may answer.
    other_members: bool,
    unreadable: bool,
}

impl<'a> Message<'a> {
    fn method(&self) -> Result<Option<Cow<'a, str>>, ()> {
        #[derive(Deserialize)]
        #[serde(transparent)]
        struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
        match self.method {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Text>(raw.get())
                .map(|t| Some(t.0))
                .map_err(|_| ()),
        }
    }

    /// The call this message makes: `None` when it is another method.
    fn call(self) -> Option<Called<'a>> {
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(borrow)]
            name: Option<Cow<'a, str>>,
        }
        let method = match self.method() {
            Ok(method) if !self.unreadable => method,
            _ => return Some(Called::default()),
        };
        if method.as_deref() != Some("tools/call") {
            return None;
        }
        let params = self.params.map(|p| serde_json::from_str::<Params>(p.get()));
        Some(Called {
            id: self.id,
            name: params.and_then(|p| p.ok()).and_then(|p| p.name),
        })
    }

    /// The request when it is a `tools/list` or `tools/call` as the fast path answers them:
    /// exactly the four members, `"2.0"`, an id, and no per-request protocol negotiation in
    /// its `_meta`.
    fn direct(&self) -> Option<(RequestId, Call)> {
        if self.unreadable || self.other_members {
            return None;
        }
        serde_json::from_str::<JsonRpcVersion2_0>(self.jsonrpc?.get()).ok()?;
        let id: RequestId = serde_json::from_str(self.id?.get()).ok()?;
        let meta_negotiates = |meta: Option<&RequestMetaObject>| {
            meta.is_some_and(|m| m.keys().any(|k| k.starts_with(LIFECYCLE_META)))
        };
        let call = match &*self.method().ok()?? {
            "tools/list" => {
                let params: Option<PaginatedRequestParams> = match self.params {
                    Some(p) => serde_json::from_str(p.get()).ok()?,
                    None => None,
                };
                if meta_negotiates(params.as_ref().and_then(|p| p.meta.as_ref())) {
                    return None;
                }
                Call::List
            }
            "tools/call" => {
                let params: CallToolRequestParams =
                    serde_json::from_str(self.params?.get()).ok()?;
                if meta_negotiates(params.meta.as_ref()) {
                    return None;
                }
                Call::Tool(Box::new(params))
            }
            _ => return None,
        };
        Some((id, call))
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Member {
    Jsonrpc,
    Id,
    Method,
    Params,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MessageVisitor)
    }
}

struct MessageVisitor;

impl MessageVisitor {
    fn unreadable<'a, E>(self) -> Result<Message<'a>, E> {
        Ok(Message {
            unreadable: true,
            ..Message::default()
        })
    }
}

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<'de>, A::Error> {
        let mut m = Message::default();
        while let Some(member) = map.next_key::<Member>()? {
            let slot = match member {
                Member::Jsonrpc => &mut m.jsonrpc,
                Member::Id => &mut m.id,
                Member::Method => &mut m.method,
                Member::Params => &mut m.params,
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                    m.other_members = true;
                    continue;
                }
            };
            let value: Option<&'de RawValue> = map.next_value()?;
            if slot.is_some() {
                // A member named twice: which one counts is not this layer's to guess.
                match member {
                    Member::Jsonrpc => m.other_members = true,
                    _ => m.unreadable = true,
                }
            }
            *slot = value.or(*slot);
        }
        Ok(m)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Message<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.unreadable()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Message<'de>, E> {
        self.unreadable()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Message<'de>, E> {
        self.unreadable()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Message<'de>, E> {
        self.unreadable()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Message<'de>, E> {
        self.unreadable()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Message<'de>, E> {
        self.unreadable()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Message<'de>, E> {
        self.unreadable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(parsed: &Parsed<'_>) -> Vec<Option<String>> {
        match parsed {
            Parsed::Direct {
                call: Call::Tool(p),
                ..
            } => vec![Some(p.name.to_string())],
            Parsed::Direct {
                call: Call::List, ..
            } => Vec::new(),
            Parsed::Other(calls) => calls
                .iter()
                .map(|c| c.name.as_deref().map(str::to_owned))
                .collect(),
        }
    }

    #[test]
    fn a_plain_call_is_the_fast_paths_and_names_its_tool() {
        let body =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"Hello\u0054ool"}}"#;
        let parsed = parse(body, true);
        assert!(matches!(parsed, Parsed::Direct { .. }));
        assert_eq!(names(&parsed), [Some("HelloTool".to_owned())]);
        let parsed = parse(body, false);
        assert!(
            matches!(parsed, Parsed::Other(_)),
            "headers did not allow it"
        );
        assert_eq!(names(&parsed), [Some("HelloTool".to_owned())]);
    }

    #[test]
    fn anything_more_or_less_than_a_plain_request_goes_on_but_its_calls_still_count() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"A"},"x":1}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"A"}}"#,
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"A"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"A"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"A","arguments":5}}"#,
        ] {
            let parsed = parse(body.as_bytes(), true);
            assert!(matches!(parsed, Parsed::Other(_)), "{body}");
            assert_eq!(names(&parsed), [Some("A".to_owned())], "{body}");
        }
    }

    #[test]
    fn unreadable_messages_count_as_calls_without_a_name() {
        for body in [
            "not json",
            r#"{"id":1,"id":2,"method":"tools/call","params":{"name":"A"}}"#,
            r#"{"method":5}"#,
            "[1,2",
        ] {
            assert_eq!(names(&parse(body.as_bytes(), true)), [None], "{body}");
        }
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"A"}},
            {"jsonrpc":"2.0","id":2,"method":"tools/list"}, 7,
            {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"B"}}]"#;
        let parsed = parse(batch, true);
        assert!(matches!(parsed, Parsed::Other(_)), "a batch is rmcp's");
        assert_eq!(
            names(&parsed),
            [Some("A".to_owned()), None, Some("B".to_owned())]
        );
        assert!(names(&parse(b"[]", true)).is_empty());
    }

    #[test]
    fn lifecycle_meta_and_other_methods_are_not_the_fast_paths() {
        let negotiating = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        assert!(matches!(parse(negotiating, true), Parsed::Other(_)));
        let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        assert!(names(&parse(ping, true)).is_empty(), "not a call");
        let list = br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#;
        assert!(matches!(
            parse(list, true),
            Parsed::Direct {
                call: Call::List,
                ..
            }
        ));
    }
}
