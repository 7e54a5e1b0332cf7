//! An internally tagged enum (`{"reply": "status", "processes": [...]}`) read tag first.
//!
//! serde's derived reader for such an enum cannot know where the tag is, so it copies the
//! whole object into a buffer of its own, finds the tag there, and reads the variant from the
//! copy: a status of 100 processes was copied string by string before a field of it was read.
//! Kahi writes the tag first, so [`tagged!`] declares the enum with a twin that serde reads as
//! an externally tagged enum, and [`tag_first`] hands that twin the tag as the variant's name
//! and the rest of the object as the variant's fields: one pass, nothing copied. An object
//! whose tag comes later (JSON does not order keys) is read the slow way, through a
//! `serde_json::Value`, and means the same.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

/// Declares `$name`, an enum of struct variants that serializes internally tagged by `$tag`
/// (serde's `#[serde(tag = ...)]`, variant names in snake_case), and deserializes through
/// [`tag_first`]: written once, so the two cannot disagree.
macro_rules! tagged {
    (
        $(#[$attr:meta])*
        pub enum $name:ident tag $tag:literal {
            $(
                $(#[$vattr:meta])*
                $variant:ident { $( $(#[$fattr:meta])* $field:ident : $ty:ty ),* $(,)? }
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(serde::Serialize)]
        #[serde(tag = $tag, rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vattr])* $variant { $( $(#[$fattr])* $field: $ty ),* } ),*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                /// The twin: the same variants, externally tagged.
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "snake_case")]
                enum Twin {
                    $( $variant { $( $(#[$fattr])* $field: $ty ),* } ),*
                }
                let twin: Twin = $crate::api::tagged::tag_first(d, $tag)?;
                Ok(match twin {
                    $( Twin::$variant { $($field),* } => $name::$variant { $($field),* } ),*
                })
            }
        }
    };
}
pub(crate) use tagged;

/// Reads an object whose `tag` names a variant of `T`, an externally tagged enum, as that
/// variant: the tag's value is the variant's name, the object's other keys its fields.
pub fn tag_first<'de, D, T>(d: D, tag: &'static str) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    d.deserialize_map(Object { tag, to: std::marker::PhantomData })
}

struct Object<T> {
    tag: &'static str,
    to: std::marker::PhantomData<T>,
}

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for Object<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an object with a {:?}", self.tag)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::missing_field(self.tag));
        };
        if first == self.tag {
            let variant = map.next_value::<String>()?;
            return T::deserialize(Variant { name: variant, fields: map });
        }
        // The tag later on: the object whole, then as the externally tagged form.
        let mut fields = serde_json::Map::new();
        fields.insert(first, map.next_value()?);
        while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
            fields.insert(k, v);
        }
        let variant = match fields.remove(self.tag) {
            Some(serde_json::Value::String(v)) => v,
            Some(_) => return Err(de::Error::custom(format!("{:?} is not a string", self.tag))),
            None => return Err(de::Error::missing_field(self.tag)),
        };
        let external = serde_json::Value::Object([(variant, fields.into())].into_iter().collect());
        T::deserialize(external).map_err(de::Error::custom)
    }
}

/// A variant's name and the map its fields are read from, as an enum to deserialize.
struct Variant<A> {
    name: String,
    fields: A,
}

impl<'de, A: MapAccess<'de>> de::Deserializer<'de> for Variant<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for Variant<A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), A::Error> {
        let name: de::value::StringDeserializer<A::Error> = self.name.clone().into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        Err(de::Error::custom("a variant with fields"))
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, A::Error> {
        Err(de::Error::custom("a variant with fields"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("a variant with fields"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.fields)
    }
}

#[cfg(test)]
mod tests {
    use crate::api::{Reply, Request};

    #[test]
    fn a_reply_reads_the_same_whatever_the_place_of_its_tag() {
        let first = r#"{"reply":"log","data":"a\nb","offset":3,"skipped":0}"#;
        let last = r#"{"data":"a\nb","offset":3,"skipped":0,"reply":"log"}"#;
        let a: Reply = serde_json::from_str(first).unwrap();
        let b: Reply = serde_json::from_str(last).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), first);
    }

    #[test]
    fn every_reply_goes_and_comes_back() {
        let replies = [
            Reply::Status { processes: vec![], unknown: vec!["x".into()] },
            Reply::Pid { pid: 7 },
            Reply::Version { version: "1".into() },
            Reply::Ready { ready: false, not_ready: vec![] },
            Reply::Event {
                event: "e".into(),
                data: serde_json::json!({"k": [1, {"a": null}]}),
                lost: Some(2),
            },
        ];
        for r in replies {
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), r, "{line}");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(serde_json::from_value::<Reply>(v).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn what_is_not_a_reply_says_why() {
        let err = |s: &str| serde_json::from_str::<Reply>(s).unwrap_err().to_string();
        assert!(err(r#"{"reply":"nope"}"#).contains("unknown variant `nope`"));
        assert!(err(r#"{"reply":"pid"}"#).contains("missing field `pid`"));
        assert!(err(r#"{"error":"no","code":"NOT_FOUND"}"#).contains("missing field `reply`"));
        assert!(err(r#"{}"#).contains("missing field `reply`"));
        assert!(err(r#"{"reply":"pid","pid":"x"}"#).contains("invalid type"));
        assert!(err("[]").contains("invalid type"));
        // A request is not a reply, tag or not.
        let req = serde_json::to_string(&Request::Version {}).unwrap();
        assert!(serde_json::from_str::<Reply>(&req).is_err());
    }
}
