//! The partner console at `/console`: a page for people without a developer, who sign in, pick a
//! report, set its parameters and see its chart and table with margins, download the CSV, and see
//! their privacy budget. It is three static files compiled into the binary (nothing is fetched from
//! elsewhere, no build step), and it calls only the public API with the signed-in person's token,
//! so it can show nothing that person could not already receive (D119).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// Its own scripts and styles, images from itself or from the charts it fetched (`blob:`), and
/// requests to this origin only; nothing inline, no framing.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
     connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");
const ICON: &str = include_str!("favicon.svg");

/// Every path the console serves.
pub const PATHS: [&str; 5] =
    ["/console", "/console/", "/console/console.js", "/console/console.css", "/console/favicon.svg"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(index))
        .route("/console/", web::get().to(index))
        .route("/console/console.js", web::get().to(script))
        .route("/console/console.css", web::get().to(style))
        .route("/console/favicon.svg", web::get().to(icon));
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(content_type).insert_header((header::CONTENT_SECURITY_POLICY, POLICY)).body(body)
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON)
}
