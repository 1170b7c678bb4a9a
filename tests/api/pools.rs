//! Each HTTP worker has a pool of its own, which can be as small as two connections (D131). A
//! request that held one connection and waited for a second of the same pool would then wait for
//! another such request on the same worker, and both would fail when the pool's wait ran out.

use futures::future::join_all;
use reqwest::StatusCode;

use crate::helpers::spawn_app_with;
use crate::paths;
use crate::victims::create_victim;

#[tokio::test]
async fn requests_that_rebuild_report_rollups_at_once_share_a_two_connection_pool() {
    let app = spawn_app_with(|s| {
        s.workers = Some(1);
        s.db_pool_size = 2;
        s.db_timeout_ms = 2_000;
    })
    .await;
    let org = app.create_org().await;
    for round in 0..3 {
        // A new victim marks the organisation's rollups dirty: each report below rebuilds its own.
        let (_, caseworker) = create_victim(&app, org).await;
        let reports = ["trends", "trafficking-flows", "operation-summary", "referral-outcomes"];
        let asked: Vec<String> = reports.iter().map(|r| paths::report(r)).collect();
        let answers = join_all(asked.iter().map(|path| caseworker.get(path))).await;
        for (report, answer) in reports.iter().zip(answers) {
            assert_eq!(answer.status, StatusCode::OK, "round {round}, {report}: {}", answer.text);
        }
    }
}
