//! Hostile clients, bounded and on loopback: a flood of bad logins locks the account and is
//! answered without starving other requests; slow clients that never finish a request are cut
//! off and do not block anyone. (Latency under these loads is measured by bench/run.sh, not
//! asserted here.)

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app_with};
use crate::paths;

#[tokio::test]
async fn bad_login_flood_locks_the_account_and_others_are_still_served() {
    // The production throttling defaults, not the relaxed test ones.
    let defaults = haven::config::Settings::defaults();
    let app = spawn_app_with(|s| {
        s.login_per_address_per_minute = defaults.login_per_address_per_minute;
        s.login_per_account_burst = defaults.login_per_account_burst;
        s.lockout_threshold = defaults.lockout_threshold;
    })
    .await;
    let org = app.create_org().await;
    let target = app.create_user(org, Role::Caseworker).await;
    let admin = app.caller(org, Role::Admin).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..8 {
        let (client, address, email, stop) =
            (app.client.clone(), app.address.clone(), target.email.clone(), stop.clone());
        attackers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) && statuses.len() < 100 {
                let resp = client
                    .post(format!("{address}{}", paths::LOGIN))
                    .json(&json!({ "email": email, "password": "not-the-password-at-all" }))
                    .send()
                    .await
                    .unwrap();
                statuses.push(resp.status());
            }
            statuses
        }));
    }
    // Meanwhile an admin goes on working: every request is answered, none fails.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let resp = admin.get(paths::USERS).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        served += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for a in attackers {
        statuses.extend(a.await.unwrap());
    }
    assert!(served > 10, "only {served} ordinary requests served during the flood");
    let refused_early = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    let wrong = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!(refused_early + wrong, statuses.len(), "only 401 and 429 answers: {statuses:?}");
    // Only the first few attempts reach the password hasher; the rest are refused before it.
    assert!(wrong <= defaults.lockout_threshold as usize, "{wrong} attempts were checked against the hash");
    // The account is locked: even its right password is refused for now.
    let locked = app.login_raw(&target.email, PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.text);
    assert!(locked.header("retry-after").is_some());
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_block_nobody() {
    let app = spawn_app_with(|_| {}).await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // 200 connections that start a request head and then trickle one byte a second.
    let sockets: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&address).unwrap();
            s.write_all(format!("GET {} HTTP/1.1\r\nHost: haven\r\n", paths::ME).as_bytes()).unwrap();
            s
        })
        .collect();
    let trickle = std::thread::spawn(move || {
        let started = Instant::now();
        let mut closed = vec![false; sockets.len()];
        while started.elapsed() < Duration::from_secs(12) && closed.iter().any(|c| !c) {
            for (s, closed) in sockets.iter().zip(closed.iter_mut()) {
                if !*closed && (&*s).write_all(b"X").is_err() {
                    *closed = true;
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        closed.iter().filter(|c| **c).count()
    });

    // Others are served meanwhile, promptly enough to notice no queue behind the slow ones.
    for _ in 0..50 {
        let resp = tokio::time::timeout(Duration::from_secs(5), admin.get(paths::USERS))
            .await
            .expect("served while slow clients hang on");
        assert_eq!(resp.status, StatusCode::OK);
    }
    let cut_off = tokio::task::spawn_blocking(move || trickle.join().unwrap()).await.unwrap();
    assert_eq!(cut_off, 200, "slow connections still open after the request-head timeout");
}
