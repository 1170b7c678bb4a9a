//! Only in a build with the `benchmark-twin` feature (`bench/run.sh` builds one; a release build
//! never has it), and served only when `HAVEN_BENCHMARK_TWIN=1` as well, so a benchmark binary
//! copied elsewhere by mistake serves nothing more: the report catalogue without authentication, so
//! the benchmark can measure what authentication costs on equal work. A request to
//! `GET /api/v1/reports` carrying `X-Haven-Benchmark-Twin: 1` is answered by the twin: the same
//! route, at the same place in the router, through the same middleware, with the same bytes as a
//! partner's catalogue from the same handler code, minus the token and session check.

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::{HttpResponse, guard, web};

use crate::domain::Role;
use crate::state::AppState;

pub const HEADER: &str = "x-haven-benchmark-twin";

/// `scope` (the API's) with the twin registered just before the catalogue it mirrors, so that
/// routing costs both the same; a request without the header goes on to the real catalogue.
pub fn beside_catalogue<T>(scope: actix_web::Scope<T>) -> actix_web::Scope<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    if !enabled() {
        return scope;
    }
    scope.service(
        web::resource("/reports").guard(guard::Header(HEADER, "1")).route(web::get().to(unauthenticated_catalogue)),
    )
}

pub fn enabled() -> bool {
    std::env::var_os("HAVEN_BENCHMARK_TWIN").is_some_and(|v| v == "1")
}

async fn unauthenticated_catalogue(state: web::Data<AppState>) -> HttpResponse {
    crate::reports::routes::catalogue_of(&state, Role::Partner)
}
