//! The identity-leak test: every operation of the spec, called by every non-caseworker role and by
//! a caseworker of an unrelated organisation, successes and refusals alike: no identity marker may
//! appear in any response body or header.

use haven::domain::Role;
use reqwest::Method;

use crate::paths;
use crate::victims::MARKERS;
use crate::world::{World, build, operations};

/// Calls every operation of the spec as `name` (holding `token`), successes and refusals alike,
/// and fails if an identity marker appears in any answer; returns the number of calls.
async fn sweep(world: &World, name: &str, token: &str) -> usize {
    let app = &world.app;
    let mut calls = 0;
    // Deleting removes the world's record, and logging out ends the caller's session: last.
    let mut ops = operations();
    ops.sort_by_key(|(method, path)| (path == paths::LOGOUT, method == "delete"));
    for (method, path) in ops {
        let concrete = world.concrete(&path);
        let mut headers = Vec::new();
        let version;
        if method == "patch" {
            version = world.version(&concrete).await;
            headers.push(("if-match", version.as_str()));
        }
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut body = world.body(&method, &path);
        if name.starts_with("cw_") && method == "post" && path == paths::VICTIMS {
            // Their own new record: what they send comes back to them, so it carries no marker.
            body.as_mut().unwrap()["identity"] = serde_json::json!({ "given_names": "Own Record" });
        }
        let mut answers = vec![app.request_with(m, &concrete, Some(token), body, &headers).await];
        // Every report's chart too.
        let report = method == "get" && path.starts_with(&format!("{}/", paths::REPORTS)) && !path.ends_with("/budget");
        if report && !path.ends_with("/csv") {
            answers.push(app.request(Method::GET, &paths::query(&concrete, "format=svg"), Some(token), None).await);
        }
        for resp in answers {
            let header_text: String =
                resp.headers.iter().map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or(""))).collect();
            for marker in MARKERS {
                assert!(
                    !resp.text.contains(marker) && !header_text.contains(marker),
                    "{name} {method} {path} ({}) leaked {marker}: {}",
                    resp.status,
                    resp.text
                );
            }
            calls += 1;
        }
    }
    calls
}

#[tokio::test]
async fn no_identity_reaches_anyone_but_entitled_caseworkers() {
    let world = build().await;
    let mut calls = 0;
    for (name, token) in world.tokens.iter().filter(|(name, _)| *name != "cw_own") {
        calls += sweep(&world, name, token).await;
    }
    assert!(calls >= 7 * 25, "only {calls} calls made");
    // The console's files, as anyone fetches them.
    for path in ["/console", "/console/console.js"] {
        let page = world.app.request(Method::GET, path, None, None).await;
        assert!(MARKERS.iter().all(|m| !page.text.contains(m)), "{path}");
    }
    // The entitled caseworker does see the identity: the markers are real.
    let own = world.app.request(Method::GET, &paths::victim(world.victim), Some(&world.tokens[0].1), None).await;
    assert!(own.text.contains("MARKERDOC123"));
}

/// A restricted case: a caseworker of the same organisation who is not assigned to it calls every
/// operation and meets no identity, note or reason of it.
#[tokio::test]
async fn a_restricted_case_shows_no_identity_to_an_unassigned_colleague() {
    let world = build().await;
    let app = &world.app;
    let owner = &world.tokens[0].1;
    let restrict = serde_json::json!({ "caseworkers": [world.caseworker], "restricted": true });
    let resp = app.request(Method::PUT, &paths::assignment(world.victim), Some(owner), Some(restrict)).await;
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text);
    let colleague = app.caller(world.org_a, Role::Caseworker).await;
    let calls = sweep(&world, "cw_colleague", &colleague.token).await;
    assert!(calls >= 25, "only {calls} calls made");
    let own = app.request(Method::GET, &paths::victim(world.victim), Some(owner), None).await;
    assert!(own.text.contains("MARKERDOC123"), "the assigned caseworker still reads it");
}
