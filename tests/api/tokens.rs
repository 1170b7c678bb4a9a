//! Every way an access token must be refused (all 401 problem+json).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use haven::domain::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{KEY_ID, KEY_SECRET, TestApp, spawn_app};
use crate::paths;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, alg: Algorithm, kid: Option<&str>, secret: &[u8]) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn good(claims: &Value) -> String {
    sign(claims, Algorithm::HS256, Some(KEY_ID), &KEY_SECRET)
}

fn with(claims: &Value, changes: Value) -> Value {
    let mut c = claims.clone();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn me_status(app: &TestApp, authorization: Option<&str>) -> StatusCode {
    let headers: Vec<(&str, &str)> = authorization.map(|a| vec![("authorization", a)]).unwrap_or_default();
    let resp = app.request_with(reqwest::Method::GET, paths::ME, None, None, &headers).await;
    if resp.status == StatusCode::UNAUTHORIZED {
        resp.assert_problem(401, "unauthorized");
        // RFC 6750: no token, no error code; a token refused, `invalid_token` (refresh or log in).
        let challenge = resp.header("www-authenticate").unwrap_or_default();
        match authorization.is_some_and(|a| a.starts_with("Bearer ") && a.len() > "Bearer ".len()) {
            true => assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}"),
            false => assert_eq!(challenge, "Bearer"),
        }
    }
    resp.status
}

#[tokio::test]
async fn every_defective_token_is_refused() {
    let app = spawn_app().await;
    let (access, refresh) = app.login(&app.host_admin).await;
    let claims = claims_of(&access);
    let now = chrono::Utc::now().timestamp();

    // Control: a token we forge correctly is accepted, so each refusal below is for its defect.
    assert_eq!(me_status(&app, Some(&format!("Bearer {}", good(&claims)))).await, StatusCode::OK);
    let later_expiry = good(&with(&claims, json!({ "exp": now + 300 })));
    assert_eq!(me_status(&app, Some(&format!("Bearer {later_expiry}"))).await, StatusCode::OK);

    let header_json =
        |alg: &str| URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT", "kid": KEY_ID }).to_string());
    let body_b64 = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = access.split('.').nth(2).unwrap();

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("empty bearer", Some("Bearer ".into())),
        ("other scheme", Some(format!("Basic {}", good(&claims)))),
        ("malformed", Some("Bearer not.a.jwt".into())),
        ("garbage", Some("Bearer xxxxxxxx".into())),
        (
            "bad signature",
            Some(format!(
                "Bearer {}",
                sign(&claims, Algorithm::HS256, Some(KEY_ID), b"another-key-of-thirty-two-bytes!")
            )),
        ),
        ("alg none", Some(format!("Bearer {}.{body_b64}.", header_json("none")))),
        ("alg none, original signature", Some(format!("Bearer {}.{body_b64}.{signature}", header_json("none")))),
        ("RS256 header on an HS256 signature", Some(format!("Bearer {}.{body_b64}.{signature}", header_json("RS256")))),
        (
            "other algorithm (HS512)",
            Some(format!("Bearer {}", sign(&claims, Algorithm::HS512, Some(KEY_ID), &KEY_SECRET))),
        ),
        ("wrong audience", Some(format!("Bearer {}", good(&with(&claims, json!({ "aud": "someone-else" })))))),
        ("wrong issuer", Some(format!("Bearer {}", good(&with(&claims, json!({ "iss": "evil" })))))),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                good(&with(&claims, json!({ "exp": now - 120, "iat": now - 1000, "nbf": now - 1000 })))
            )),
        ),
        ("not yet valid", Some(format!("Bearer {}", good(&with(&claims, json!({ "nbf": now + 600 })))))),
        ("missing exp", Some(format!("Bearer {}", good(&with(&claims, json!({ "exp": null })))))),
        ("missing sub", Some(format!("Bearer {}", good(&with(&claims, json!({ "sub": null })))))),
        ("missing kid", Some(format!("Bearer {}", sign(&claims, Algorithm::HS256, None, &KEY_SECRET)))),
        ("unknown kid", Some(format!("Bearer {}", sign(&claims, Algorithm::HS256, Some("nope"), &KEY_SECRET)))),
        ("refresh token as access token", Some(format!("Bearer {refresh}"))),
        ("typ other than access", Some(format!("Bearer {}", good(&with(&claims, json!({ "typ": "refresh" })))))),
        ("role claim tampered", Some(format!("Bearer {}", good(&with(&claims, json!({ "role": "auditor" })))))),
        ("stale token version", Some(format!("Bearer {}", good(&with(&claims, json!({ "ver": 0 })))))),
        ("unknown session", Some(format!("Bearer {}", good(&with(&claims, json!({ "sid": uuid::Uuid::new_v4() })))))),
    ];
    for (name, authorization) in cases {
        assert_eq!(me_status(&app, authorization.as_deref()).await, StatusCode::UNAUTHORIZED, "{name} was accepted");
    }
}

#[tokio::test]
async fn tokens_of_disabled_or_logged_out_users_are_refused() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    let auditor = app.caller(app.host_org, Role::Auditor).await;
    let forged_later = good(&claims_of(&auditor.token));
    admin.patch(&paths::user(auditor.id()), "\"1\"", json!({ "disabled": true })).await;
    assert_eq!(me_status(&app, Some(&format!("Bearer {}", auditor.token))).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, Some(&format!("Bearer {forged_later}"))).await, StatusCode::UNAUTHORIZED);

    let session = app.host_admin().await;
    session.request(reqwest::Method::POST, paths::LOGOUT, None).await;
    assert_eq!(me_status(&app, Some(&format!("Bearer {}", session.token))).await, StatusCode::UNAUTHORIZED);
}

/// A revocation made outside this process (another Haven process, or an operator in psql) is
/// honoured within HAVEN_SESSION_CACHE_MS; with 0, at once.
#[tokio::test]
async fn revocations_from_outside_the_process_apply_within_the_session_cache_ttl() {
    for ttl_ms in [0u64, 300] {
        let app = crate::helpers::spawn_app_with(|s| s.session_cache_ms = ttl_ms).await;
        let org = app.create_org().await;
        let caseworker = app.caller(org, Role::Caseworker).await;
        assert_eq!(caseworker.get(paths::ME).await.status, 200);
        let mut conn = app.pool.get().await.unwrap();
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(format!("UPDATE sessions SET revoked_at = now() WHERE user_id = '{}'", caseworker.id())),
            &mut conn,
        )
        .await
        .unwrap();
        if ttl_ms == 0 {
            assert_eq!(caseworker.get(paths::ME).await.status, 401, "no memory: refused at once");
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(ttl_ms + 200)).await;
            assert_eq!(caseworker.get(paths::ME).await.status, 401, "refused once the memory has lapsed");
        }
    }
}
