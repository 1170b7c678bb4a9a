//! Only in a build with the `benchmark-twin` feature (`bench/run.sh` builds one; a release build
//! never has it), and served only when `HAVEN_BENCHMARK_TWIN=1` as well, so a benchmark binary
//! copied elsewhere by mistake serves nothing more: the report catalogue without authentication, so
//! the benchmark can measure what authentication costs on equal work. `GET /bench/reports` answers
//! the same bytes as a partner's `GET /api/v1/reports`, from the same handler code, minus the token
//! and session check.

use actix_web::{HttpResponse, web};

use crate::domain::Role;
use crate::state::AppState;

pub const PATH: &str = "/bench/reports";

pub fn configure(cfg: &mut web::ServiceConfig) {
    if enabled() {
        cfg.route(PATH, web::get().to(unauthenticated_catalogue));
    }
}

pub fn enabled() -> bool {
    std::env::var_os("HAVEN_BENCHMARK_TWIN").is_some_and(|v| v == "1")
}

async fn unauthenticated_catalogue(state: web::Data<AppState>) -> HttpResponse {
    crate::reports::routes::catalogue_of(&state, Role::Partner)
}
