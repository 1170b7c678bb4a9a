//! Request extractors that answer malformed input with problem+json and never echo the value
//! sent (it could be a victim's name typed into the wrong field).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON body: `application/json` only, size-limited (413), unknown fields rejected by the
/// target types, errors naming the field but not the value.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + utoipa::ToSchema + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
        let limit =
            req.app_data::<web::Data<crate::state::AppState>>().map(|s| s.settings.body_limit).unwrap_or(64 * 1024);
        let declared_too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|len| len > limit);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if declared_too_large {
                return Err(ApiError::PayloadTooLarge);
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let bytes = body.await.map_err(|e| match e.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
                _ => match e.as_response_error().status_code().as_u16() {
                    413 => ApiError::PayloadTooLarge,
                    _ => ApiError::BadRequest("The request body could not be read.".into()),
                },
            })?;
            if bytes.len() > limit {
                return Err(ApiError::PayloadTooLarge);
            }
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::BadRequest(format!("The body is not valid JSON (line {}, column {}).", e.line(), e.column()))
            })?;
            // A body without a schema of its own (free JSON) is still refused NUL here; a typed
            // one has it refused field by field by its schema.
            if json_has_nul(&bytes) && !crate::openapi::validate::has_schema(&T::name()) {
                return Err(nul_refused("body"));
            }
            from_value(value).map(ApiJson)
        })
    }
}

/// PostgreSQL text cannot hold U+0000: refused here, for every field at once, rather than failing
/// as a database error later. JSON can carry it only as the escape `\u0000`.
fn json_has_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                return true;
            }
            i += 2; // skip the escaped character, so `\\u0000` (a backslash, then text) passes
        } else {
            i += 1;
        }
    }
    false
}

fn nul_refused(field: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field.to_owned(), "must not contain the NUL character (U+0000)")])
}

/// Deserialises a parsed JSON body: first checked against the schema the API document gives `T`
/// (every problem at once), then read with the same field-naming, value-hiding errors.
pub fn from_value<T: DeserializeOwned + utoipa::ToSchema>(mut value: serde_json::Value) -> Result<T, ApiError> {
    let problems = crate::openapi::validate::problems(&T::name(), &value)?;
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let at = Located::of(err.path());
        ApiError::Validation(vec![describe(&at, &err.into_inner().to_string())])
    })
}

/// A number written with a fraction part that has none (`10.0`), as the integer it is; `None` for
/// integers as written, real fractions, and magnitudes a float cannot hold exactly.
pub fn whole_float(n: &serde_json::Number) -> Option<i64> {
    n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
}

/// JSON Schema counts `10.0` as an integer, and so does the document; serde's integer types do
/// not. Every number without a fraction is written as an integer before it is read (a float field
/// takes an integer as well).
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(whole) = whole_float(n) {
                *value = Value::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// Query parameters, with the same care.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(ApiQuery))
    }
}

/// A query string into `T`; refusals name the field, never the submitted value.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    if form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(nul_refused("query"));
    }
    let parsed = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(parsed).map_err(|err| {
        let at = Located::of(err.path());
        let mut problem = describe(&at, &err.into_inner().to_string());
        if problem.field == "body" {
            problem.field = "query".into();
        }
        ApiError::Validation(vec![problem])
    })
}

/// Field paths come from the client's keys; keep only characters a real field name has.
fn sanitize_path(path: &str) -> String {
    let clean: String =
        path.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')).take(64).collect();
    if clean.is_empty() || clean == "." { "body".into() } else { clean }
}

/// Where a serde error is: the field's path, and its parent's, both cleaned.
struct Located {
    path: String,
    parent: String,
}

impl Located {
    /// The parent is taken from the path's segments, not by splitting its text: a client's key
    /// (the last segment of an unknown field) may itself hold a `.`, and the part before it would
    /// be repeated as if it were a field (`?Maria.Lopez=1` named `Maria`).
    fn of(path: &serde_path_to_error::Path) -> Located {
        let segments: Vec<&serde_path_to_error::Segment> = path.iter().collect();
        let mut parent = String::new();
        for segment in &segments[..segments.len().saturating_sub(1)] {
            if !parent.is_empty() && !matches!(segment, serde_path_to_error::Segment::Seq { .. }) {
                parent.push('.');
            }
            parent.push_str(&segment.to_string());
        }
        let parent = if parent.is_empty() { "body".into() } else { sanitize_path(&parent) };
        Located { path: sanitize_path(&path.to_string()), parent }
    }
}

/// Turns a serde message into our own words; serde's messages can quote the submitted value.
fn describe(at: &Located, message: &str) -> FieldError {
    let path = at.path.as_str();
    let text = if message.starts_with("unknown field") {
        // The path ends with the client's key, which is not repeated: its parent is named.
        return FieldError::coded(
            at.parent.clone(),
            crate::error::FieldErrorCode::Unknown,
            crate::openapi::validate::unknown_fields(1),
        );
    } else if message.starts_with("missing field") {
        let field = message.split('`').nth(1).map(sanitize_path).unwrap_or_default();
        return FieldError::new(if path == "body" { field } else { format!("{path}.{field}") }, "is required");
    } else if message.starts_with("invalid type") {
        "has the wrong type"
    } else if message.starts_with("unknown variant") {
        "is not one of the allowed values"
    } else if message.starts_with("duplicate field") {
        "is given more than once"
    } else if message.starts_with("invalid length") {
        "has the wrong number of elements"
    } else if message.starts_with("must ") || message.starts_with("is ") || message.starts_with("uses ") {
        // Our own domain parsers' messages, which never include the value.
        return FieldError::new(path, message.split(" at line ").next().unwrap_or(message));
    } else {
        "is invalid"
    };
    FieldError::new(path, text)
}

/// Request id and client address for audit events.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub client_address: Option<IpAddr>,
}

impl RequestContext {
    /// No request: a command run on the machine itself.
    pub fn none() -> RequestContext {
        RequestContext { request_id: None, client_address: None }
    }

    pub fn of(req: &HttpRequest, settings: &crate::config::Settings) -> RequestContext {
        RequestContext {
            request_id: req.extensions().get::<tracing_actix_web::RequestId>().map(|id| id.to_string()),
            client_address: client_address(req, &settings.trusted_proxies),
        }
    }
}

/// The TCP peer, unless it is a trusted proxy: then the nearest untrusted address in
/// `X-Forwarded-For` (entries added by clients themselves are further left and ignored).
fn client_address(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    Some(nearest_untrusted(peer, forwarded, trusted))
}

/// Walks the hops from the nearest: each trusted proxy's entry names who it heard from. An entry
/// that is no address (`unknown`, an obfuscated name) ends the walk at the peer: skipping it would
/// believe whatever stands left of it, which the client may have written.
fn nearest_untrusted<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).filter(|e| !e.is_empty()).collect();
    for entry in entries.into_iter().rev() {
        match forwarded_ip(entry) {
            Some(address) if trusted.contains(&address) => continue,
            Some(address) => return address,
            None => return peer,
        }
    }
    peer
}

/// An entry as proxies write it: an address, with a port (`198.51.100.7:4711`, `[2001:db8::7]:443`)
/// or in brackets.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

impl FromRequest for RequestContext {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let context = match req.app_data::<web::Data<crate::state::AppState>>() {
            Some(state) => RequestContext::of(req, &state.settings),
            None => RequestContext::of(req, &crate::config::Settings::defaults()),
        };
        std::future::ready(Ok(context))
    }
}

/// `If-Match` (RFC 9110 section 13.1.1): `*`, or a list of the strong ETags this server gives
/// (`"3"`). Weak tags never match, as the strong comparison requires.
#[derive(Debug, Clone)]
pub enum IfMatch {
    /// `*`: true whenever the resource exists.
    Any,
    /// The versions the client accepts (empty: none can match).
    Versions(Vec<i32>),
}

impl IfMatch {
    /// The version to update from, if the condition holds for the record's `current` version. The
    /// update must still filter on it, so a change made meanwhile fails the condition.
    pub fn against(&self, current: i32) -> Result<i32, ApiError> {
        match self {
            IfMatch::Any => Ok(current),
            IfMatch::Versions(versions) if versions.contains(&current) => Ok(current),
            IfMatch::Versions(_) => Err(ApiError::PreconditionFailed),
        }
    }

    fn parse(value: &str) -> IfMatch {
        if value.trim() == "*" {
            return IfMatch::Any;
        }
        let versions = value
            .split(',')
            .map(str::trim)
            .filter_map(|tag| tag.strip_prefix('"')?.strip_suffix('"')?.parse::<i32>().ok())
            .collect();
        IfMatch::Versions(versions)
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sent: Vec<_> = req.headers().get_all(header::IF_MATCH).collect();
        // A value that is not visible ASCII is still a condition sent, one that names no ETag of
        // ours: it fails (412), it is not missing (428).
        let values: Vec<&str> = sent.iter().filter_map(|v| v.to_str().ok()).collect();
        std::future::ready(match sent.is_empty() {
            true => Err(ApiError::PreconditionRequired),
            false => Ok(IfMatch::parse(&values.join(","))),
        })
    }
}

/// The strong ETag of a record version.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// Reads a field a client may set to `null`, for a patch: with `#[serde(default)]`, an absent
/// field is `None` (left alone) and `null` is `Some(None)` (removed).
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_star_and_lists_of_strong_tags() {
        assert!(matches!(IfMatch::parse("*"), IfMatch::Any));
        assert_eq!(IfMatch::parse("\"3\"").against(3).unwrap(), 3);
        assert_eq!(IfMatch::parse("\"2\", \"3\"").against(3).unwrap(), 3);
        assert!(IfMatch::parse("\"2\"").against(3).is_err());
        assert!(IfMatch::parse("W/\"3\"").against(3).is_err(), "weak tags never match");
        assert!(IfMatch::parse("3").against(3).is_err(), "an ETag is quoted");
        assert_eq!(IfMatch::Any.against(7).unwrap(), 7);
    }

    #[test]
    fn an_if_match_that_is_not_ascii_fails_rather_than_being_missing() {
        let value = header::HeaderValue::from_bytes("Clínica Esperanza".as_bytes()).unwrap();
        let req = actix_web::test::TestRequest::default().insert_header((header::IF_MATCH, value)).to_http_request();
        let sent = IfMatch::extract(&req).into_inner().expect("a condition was sent");
        assert!(matches!(sent.against(1), Err(ApiError::PreconditionFailed)));
        let req = actix_web::test::TestRequest::default().to_http_request();
        assert!(matches!(IfMatch::extract(&req).into_inner(), Err(ApiError::PreconditionRequired)));
    }

    #[test]
    fn the_client_is_the_nearest_hop_no_trusted_proxy_vouches_for() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (proxy, inner) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let trusted = [proxy, inner];
        let seen = |peer: IpAddr, header: &str| nearest_untrusted(peer, std::iter::once(header), &trusted);
        assert_eq!(seen(ip("203.0.113.5"), "198.51.100.7"), ip("203.0.113.5"), "an untrusted peer is the client");
        assert_eq!(seen(proxy, "6.6.6.6, 198.51.100.7"), ip("198.51.100.7"));
        assert_eq!(seen(proxy, "6.6.6.6, 198.51.100.7, 10.0.0.2"), ip("198.51.100.7"), "past a trusted hop");
        assert_eq!(seen(proxy, "6.6.6.6, 198.51.100.7:4711"), ip("198.51.100.7"), "with a port");
        assert_eq!(seen(proxy, "6.6.6.6, [2001:db8::7]:443"), ip("2001:db8::7"));
        assert_eq!(seen(proxy, "6.6.6.6, [2001:db8::7]"), ip("2001:db8::7"));
        // A hop that could not say: nothing to its left is believed.
        assert_eq!(seen(proxy, "6.6.6.6, unknown"), proxy);
        assert_eq!(seen(proxy, "6.6.6.6, _hidden, 10.0.0.2"), proxy);
        assert_eq!(seen(proxy, ""), proxy);
        assert_eq!(seen(proxy, "198.51.100.7, "), ip("198.51.100.7"), "an empty entry is no hop");
    }

    #[test]
    fn whole_numbers_are_read_as_integers() {
        let mut v = serde_json::json!({ "age": 10.0, "rho": 0.5, "list": [3.0, -0.0, 1e300] });
        whole_numbers_as_integers(&mut v);
        assert_eq!(v, serde_json::json!({ "age": 10, "rho": 0.5, "list": [3, 0, 1e300] }));
        assert_eq!(serde_json::from_value::<i16>(v["age"].clone()).unwrap(), 10);
    }

    #[test]
    fn never_echoes_values() {
        let at = |path: &str| Located { path: path.into(), parent: "body".into() };
        let e = describe(&at("age"), "invalid type: string \"Maria Lopez\", expected u32");
        assert!(!e.message.contains("Maria"));
        let e = describe(&at("kind"), "unknown variant `Maria`, expected one of `ngo`");
        assert!(!e.message.contains("Maria"));
    }

    /// An unknown key is never repeated, not even the part of it before a `.` (which the text of
    /// serde's path cannot tell from a parent field).
    #[test]
    fn an_unknown_key_with_a_dot_is_not_repeated() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Page {
            limit: Option<u32>,
        }
        for query in ["Maria.Lopez=1", "limit=2&Maria.Lopez.Garcia=1", "Maria%2ELopez=1"] {
            let Err(ApiError::Validation(problems)) = parse_query::<Page>(query) else { panic!("{query} is refused") };
            let shown = format!("{problems:?}");
            assert!(!shown.contains("Maria") && !shown.contains("Lopez"), "{query}: {shown}");
            assert_eq!(problems[0].field, "query", "{query}: the unknown key's parent is the query itself");
        }
    }
}
