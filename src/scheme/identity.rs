//! What identifies a delivery for replay protection ([`Identity`]): the id the sender signed,
//! or else the signed content itself.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

/// What identifies a verified delivery, for [replay protection](crate::replay).
///
/// Only what the signature covers may identify a delivery: an unsigned header (GitHub's
/// `X-GitHub-Delivery`) can be changed by whoever replays it, and a signature's text is not an
/// identity either (ECDSA signatures are malleable, base64 padding is lenient, and during a
/// rotation a header carries several).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity<'d> {
    /// An id the signature covers: a signed header (Standard Webhooks' `webhook-id`) or a field
    /// of the signed body (Stripe's event `id`). The sender keeps it across retries, so a retry
    /// signed again with a new timestamp is the same delivery.
    Id(Cow<'d, str>),
    /// No signed id: the delivery is its [signed content](super::Scheme::signed_content),
    /// timestamp and URL included where the scheme signs them.
    Content,
}

/// The string value of the top-level member `name` of the JSON object `body`, or `None` when
/// `body` is not a JSON object, has no such member, has it twice, or its value is not a string.
/// Used by schemes whose body carries the sender's event id (Stripe, Slack, Paddle).
pub(crate) fn json_member<'b>(body: &'b [u8], name: &str) -> Option<Cow<'b, str>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let found = Member(name).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    found
}

/// A seed reading one member of a JSON object and skipping the others.
struct Member<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 != self.0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value::<Text<'de>>()?;
            if found.replace(value.0).is_some() {
                return Err(de::Error::custom("member appears twice"));
            }
        }
        Ok(found)
    }
}

/// A JSON string, borrowed from the body unless it has escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_a_top_level_string_member() {
        let id = |body: &str| json_member(body.as_bytes(), "id").map(Cow::into_owned);
        assert_eq!(
            id(r#"{"object":"event","id":"evt_1","data":{"id":"x"}}"#),
            Some("evt_1".into())
        );
        assert_eq!(id(r#"{"id":"evt_\u0031"}"#), Some("evt_1".into()));
        assert_eq!(id(r#"{"data":{"id":"x"}}"#), None);
        assert_eq!(id(r#"{"id":1}"#), None);
        assert_eq!(id(r#"{"id":"a","id":"b"}"#), None);
        assert_eq!(id(r#"{"id":"a"} trailing"#), None);
        assert_eq!(id(r#"["id","a"]"#), None);
        assert_eq!(id("token=abc&id=1"), None);
    }
}
