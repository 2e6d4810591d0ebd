//! OpenAPI glue for the domain types: each checked value (provider, name, client id, …) is a
//! poem-openapi type whose schema shows its limits and whose parse error names the field, so
//! the core receives only values that are already valid.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

use crate::domain::{
    AccountId, AccountKind, AccountStatus, AppId, AppName, BIDI_CONTROLS, ClientId, ClientSecret,
    INVISIBLE, Provider, Scopes, Timestamp, UserAgent,
};
use crate::error::Error;
use crate::providers;

/// JSON-Schema pattern: no control characters, and at least one non-space character.
const PRINTABLE_NOT_BLANK: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// JSON-Schema pattern for names, built from the domain's character tables so it says what
/// [`AppName::parse`] accepts: no control or bidirectional formatting character anywhere, and
/// at least one character that is neither whitespace nor invisible.
fn visible_name_pattern() -> String {
    let class = |ranges: &[(char, char)]| -> String {
        ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    format!(r"\u{:04X}", u32::from(lo))
                } else {
                    format!(r"\u{:04X}-\u{:04X}", u32::from(lo), u32::from(hi))
                }
            })
            .collect()
    };
    let banned = format!(r"\u0000-\u001F\u007F-\u009F{}", class(BIDI_CONTROLS));
    let blank = format!(r"\s{banned}{}", class(INVISIBLE));
    format!("^[^{banned}]*[^{blank}][^{banned}]*$")
}

/// The `Type` items of a value that is its own raw value (what validators look at).
macro_rules! own_raw_value {
    () => {
        type RawValueType = Self;
        type RawElementValueType = Self;

        fn as_raw_value(&self) -> Option<&Self::RawValueType> {
            Some(self)
        }

        fn raw_element_iter<'a>(
            &'a self,
        ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
            Box::new(self.as_raw_value().into_iter())
        }
    };
}

/// A domain value that travels as a JSON string or a path/query parameter.
pub trait ApiString: Sized + Send + Sync + 'static {
    /// Distinct per type: poem-openapi compares names when it wraps errors.
    const TYPE_NAME: &'static str;
    /// The field or parameter name, for "X is required".
    const FIELD: &'static str;
    fn describe(schema: &mut MetaSchema);
    fn parse_str(value: &str) -> Result<Self, Error>;
    fn to_api_string(&self) -> String;
}

/// Wraps a domain value so poem-openapi can parse, validate and document it.
#[derive(Debug, Clone)]
pub struct Checked<T>(pub T);

impl<T: ApiString> Type for Checked<T> {
    const IS_REQUIRED: bool = true;
    own_raw_value!();

    fn name() -> Cow<'static, str> {
        T::TYPE_NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        T::describe(&mut schema);
        MetaSchemaRef::Inline(Box::new(schema))
    }
}

impl<T: ApiString> ParseFromJSON for Checked<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None => Err(ParseError::custom(format!("`{}` is required", T::FIELD))),
            Some(Value::Null) => Err(ParseError::custom(format!(
                "`{}` must be a string, not null",
                T::FIELD
            ))),
            Some(Value::String(s)) => T::parse_str(&s).map(Checked).map_err(ParseError::custom),
            Some(_) => Err(ParseError::custom(format!(
                "`{}` must be a string",
                T::FIELD
            ))),
        }
    }
}

impl<T: ApiString> ParseFromParameter for Checked<T> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        // poem-openapi calls path parameters `param0`…: name the parameter here instead.
        T::parse_str(value)
            .map(Checked)
            .map_err(|e| ParseError::custom(format!("parameter `{}`: {e}", T::FIELD)))
    }
}

impl<T: ApiString> serde::Serialize for Checked<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_api_string())
    }
}

impl<T: ApiString> ToJSON for Checked<T> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.to_api_string()))
    }
}

impl ApiString for Provider {
    const TYPE_NAME: &'static str = "Provider";
    const FIELD: &'static str = "provider";
    fn describe(schema: &mut MetaSchema) {
        // Built from the registry once: a new provider shows up in the spec by itself.
        static DESCRIPTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let description = DESCRIPTION.get_or_init(|| {
            let names: Vec<&str> = providers::ids().map(Provider::as_str).collect();
            format!("The social network: {}.", names.join(" | "))
        });
        schema.description = Some(description.as_str());
        schema.enum_items = providers::ids().map(|p| Value::from(p.as_str())).collect();
        // No example: Swagger UI would pre-fill it into the optional `provider` filters,
        // hiding every other provider's rows. Object examples name a provider themselves.
    }
    fn parse_str(value: &str) -> Result<Self, Error> {
        value
            .parse()
            .map_err(|e: providers::UnknownProvider| Error::invalid(e.to_string()))
    }
    fn to_api_string(&self) -> String {
        self.as_str().to_owned()
    }
}

/// A bounded text field: 1 to `MAX_LEN` characters, no control characters, not blank.
macro_rules! bounded_text {
    ($ty:ident, $field:literal, $description:literal, |$this:ident| $text:expr, |$schema:ident| $extra:block) => {
        impl ApiString for $ty {
            const TYPE_NAME: &'static str = stringify!($ty);
            const FIELD: &'static str = $field;
            fn describe($schema: &mut MetaSchema) {
                $schema.description = Some($description);
                $schema.min_length = Some(1);
                $schema.max_length = Some($ty::MAX_LEN);
                $schema.pattern = Some(PRINTABLE_NOT_BLANK.into());
                $extra
            }
            fn parse_str(value: &str) -> Result<Self, Error> {
                $ty::parse(value)
            }
            fn to_api_string(&self) -> String {
                let $this = self;
                $text.to_owned()
            }
        }
    };
}

bounded_text!(
    AppName,
    "name",
    "1 to 120 characters after trimming; unique per provider.",
    |name| name.as_str(),
    |schema| {
        schema.pattern = Some(visible_name_pattern());
        schema.example = Some("My X App".into());
    }
);

bounded_text!(
    ClientId,
    "client_id",
    "Your app's client id (TikTok: client key).",
    |id| id.as_str(),
    |_schema| {}
);

// Only request bodies (and their documented example) carry a client secret; no response
// does, and the schema marks it write-only.
bounded_text!(
    ClientSecret,
    "client_secret",
    "Your app's client secret; stored sealed, never returned.",
    |secret| secret.expose(),
    |schema| {
        schema.write_only = true;
        schema.format = Some("password");
    }
);

bounded_text!(
    UserAgent,
    "user_agent",
    "The User-Agent of the app's calls to its provider: printable ASCII, 1 to 256 characters. \
     Reddit asks for `<platform>:<app id>:<version> (by /u/<username>)`.",
    |ua| ua.as_str(),
    |schema| {
        schema.pattern = Some(r"^[\x20-\x7E]*[\x21-\x7E][\x20-\x7E]*$".into());
        schema.example = Some("web:com.example.scheduler:1.4 (by /u/example)".into());
    }
);

/// A prefixed random id (`oa_…`, `acc_…`) in a path.
macro_rules! prefixed_id {
    ($ty:ident, $description:literal) => {
        impl ApiString for $ty {
            const TYPE_NAME: &'static str = stringify!($ty);
            const FIELD: &'static str = "id";
            fn describe(schema: &mut MetaSchema) {
                schema.description = Some($description);
                schema.pattern = Some($ty::PATTERN.into());
            }
            fn parse_str(value: &str) -> Result<Self, Error> {
                $ty::parse(value)
            }
            fn to_api_string(&self) -> String {
                self.as_str().to_owned()
            }
        }
    };
}

prefixed_id!(
    AppId,
    "An OAuth app id: `oa_` and 20 lowercase base32 characters."
);
prefixed_id!(
    AccountId,
    "A connected account id: `acc_` and 20 lowercase base32 characters."
);

/// The `status` filter of the account list: the statuses an account shows.
impl ApiString for AccountStatus {
    const TYPE_NAME: &'static str = "AccountStatusFilter";
    const FIELD: &'static str = "status";
    fn describe(schema: &mut MetaSchema) {
        schema.description = Some("active | expiring | needs_reauth");
        schema.enum_items = ["active", "expiring", "needs_reauth"]
            .into_iter()
            .map(Value::from)
            .collect();
    }
    fn parse_str(value: &str) -> Result<Self, Error> {
        AccountStatus::parse_filter(value)
    }
    fn to_api_string(&self) -> String {
        self.as_str().to_owned()
    }
}

/// An account's kind, in the list's `kind` filter and on the account object.
impl ApiString for AccountKind {
    const TYPE_NAME: &'static str = "AccountKind";
    const FIELD: &'static str = "kind";
    fn describe(schema: &mut MetaSchema) {
        schema.description = Some(
            "user (a connected account) | page (a Facebook Page it manages) | organization (a LinkedIn organization it administers) | channel (a YouTube channel it manages) | location (a Google Business Profile location it manages)",
        );
        schema.enum_items = AccountKind::ALL
            .into_iter()
            .map(|k| Value::from(k.as_str()))
            .collect();
    }
    fn parse_str(value: &str) -> Result<Self, Error> {
        AccountKind::parse_filter(value)
    }
    fn to_api_string(&self) -> String {
        self.as_str().to_owned()
    }
}

impl ApiString for Timestamp {
    const TYPE_NAME: &'static str = "Timestamp";
    const FIELD: &'static str = "timestamp";
    fn describe(schema: &mut MetaSchema) {
        schema.format = Some("date-time");
        schema.description = Some("RFC 3339, UTC, whole seconds.");
    }
    fn parse_str(value: &str) -> Result<Self, Error> {
        let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::invalid(format!("`{value}` is not an RFC 3339 time: {e}")))?;
        Ok(Timestamp::from_unix(t.unix_timestamp()))
    }
    fn to_api_string(&self) -> String {
        self.rfc3339()
    }
}

/// The callback's `{provider}`: documented as a `Provider`, but taken as any text, so that an
/// unknown one is answered with the callback's HTML page rather than a JSON parse error.
#[derive(Debug, Clone)]
pub struct CallbackProvider(pub String);

impl Type for CallbackProvider {
    const IS_REQUIRED: bool = true;
    own_raw_value!();

    fn name() -> Cow<'static, str> {
        "CallbackProvider".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        Checked::<Provider>::schema_ref()
    }
}

impl ParseFromParameter for CallbackProvider {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(CallbackProvider(value.to_owned()))
    }
}

/// The callback's `state`: documented as required (a callback without one is refused), but
/// taken when absent too, so that the refusal is the callback's HTML page rather than a JSON
/// parse error.
#[derive(Debug, Clone)]
pub struct CallbackState(pub Option<String>);

impl Type for CallbackState {
    const IS_REQUIRED: bool = true;
    own_raw_value!();

    fn name() -> Cow<'static, str> {
        "CallbackState".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }
}

impl ParseFromParameter for CallbackState {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(CallbackState(Some(value.to_owned())))
    }

    fn parse_from_parameters<I: IntoIterator<Item = A>, A: AsRef<str>>(
        iter: I,
    ) -> ParseResult<Self> {
        Ok(CallbackState(
            iter.into_iter().next().map(|v| v.as_ref().to_owned()),
        ))
    }
}

/// An optional body field that may be left out but not sent as `null`. With `Option<T>`
/// poem-openapi would read `null` as "left out", which the document (T's schema, not
/// `nullable`) does not allow: a client sending `null` would think it cleared the field.
#[derive(Debug, Clone)]
pub struct Omittable<T>(pub Option<T>);

impl<T: Type> Type for Omittable<T> {
    const IS_REQUIRED: bool = false;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("Omittable<{}>", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(Type::as_raw_value)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }

    fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Omittable<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None => Ok(Omittable(None)),
            // T refuses `null` with a sentence naming the field.
            Some(value) => T::parse_from_json(Some(value))
                .map(|v| Omittable(Some(v)))
                .map_err(ParseError::propagate),
        }
    }
}

impl<T: ToJSON> ToJSON for Omittable<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.as_ref().and_then(ToJSON::to_json)
    }
}

/// The optional scope list of a new app.
#[derive(Debug, Clone)]
pub struct ScopeList(pub Scopes);

impl Type for ScopeList {
    const IS_REQUIRED: bool = true;
    own_raw_value!();

    fn name() -> Cow<'static, str> {
        "ScopeList".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut item = MetaSchema::new("string");
        item.min_length = Some(1);
        item.max_length = Some(Scopes::MAX_LEN);
        item.pattern = Some(r#"^[^\s,"\\\u0000-\u001F\u007F-\u009F]+$"#.into());
        let mut schema = MetaSchema::new("array");
        schema.items = Some(Box::new(MetaSchemaRef::Inline(Box::new(item))));
        schema.min_items = Some(1);
        schema.max_items = Some(Scopes::MAX_COUNT);
        schema.description =
            Some("Replaces the provider's default scopes. Leave out to use the defaults.");
        MetaSchemaRef::Inline(Box::new(schema))
    }
}

impl ParseFromJSON for ScopeList {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let items = match value {
            Some(Value::Array(items)) => items,
            None => return Err(ParseError::custom("`scopes` is required")),
            Some(Value::Null) => {
                return Err(ParseError::custom(
                    "`scopes` must be an array of strings, not null: leave it out for the defaults",
                ));
            }
            _ => return Err(ParseError::custom("`scopes` must be an array of strings")),
        };
        let strings: Vec<String> = items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(ParseError::custom("`scopes` must be an array of strings")),
            })
            .collect::<Result<_, _>>()?;
        Scopes::parse(&strings)
            .map(ScopeList)
            .map_err(ParseError::custom)
    }
}

impl ToJSON for ScopeList {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0.as_slice().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented pattern and the server agree on which names are acceptable.
    #[test]
    fn the_name_pattern_matches_what_app_name_parse_accepts() {
        let pattern = regex::Regex::new(&visible_name_pattern()).unwrap();
        for name in [
            "My X App",
            "  padded  ",
            "🦀",
            "👨\u{200d}👩\u{200d}👧",
            "שלום عالم",
            "a\u{200b}b",
            "",
            "   ",
            "\u{200b}\u{200b}",
            " \u{feff}\u{2060} \u{3164}",
            "\u{00a0}\u{3000}",
            "abc\u{202e}def",
            "abc\u{2067}def",
            "\u{200e}x",
            "x\u{061c}",
            "bell\u{7}name",
            "a\u{9b}b",
            "a\u{7f}",
        ] {
            assert_eq!(
                pattern.is_match(name),
                AppName::parse(name).is_ok(),
                "{name:?} against {pattern}"
            );
        }
    }
}
