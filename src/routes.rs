//! Every served operation, registered in one place through utoipa-actix-web so the OpenAPI
//! document is generated from the same registration that serves requests: a handler cannot be
//! served without being documented. The path templates of the document also tell a wrong method
//! (405) from an unknown path (404).

use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{HttpRequest, guard, web};
use utoipa_actix_web::{scope, service_config::ServiceConfig};

use crate::error::ApiError;
use crate::state::AppState;
use crate::{
    assistance, audit, auth, changes, exchange, grants, ops, orgs, referrals, reports, retention, support_plan, tasks,
    transfers, users, victims, vocabularies, webhooks,
};

pub use crate::openapi::route_table::{API_PREFIX, OPENAPI_PATH};

pub fn configure(cfg: &mut ServiceConfig) {
    // Most-read first within a segment where the order does not decide a match: `/victims/{id}`
    // is the service's hottest route. A literal path stays before the template that would also
    // match it (`/victims/search`, `/reports/budget`).
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(
            segment("auth")
                .service(auth::login::login)
                .service(auth::routes::refresh)
                .service(auth::routes::logout)
                .service(auth::credentials::enrol)
                .service(auth::second_factor::start)
                .service(auth::second_factor::confirm),
        )
        .service(segment("me").service(auth::routes::me).service(auth::credentials::change_password))
        .service(segment("vocabularies").service(vocabularies::routes::list_vocabularies))
        .service(
            segment("organizations")
                .service(orgs::routes::list_organizations)
                .service(orgs::routes::create_organization)
                .service(orgs::routes::get_organization)
                .service(orgs::routes::update_organization)
                .service(orgs::second_factor::set_policy)
                .service(retention::routes::set_retention)
                .service(reports::routes::organization_budget)
                .service(reports::routes::set_organization_allowance),
        )
        .service(
            segment("users")
                .service(users::routes::list_users)
                .service(users::routes::create_user)
                .service(users::routes::get_user)
                .service(users::routes::update_user)
                .service(users::reset::reset_user)
                .service(users::reset::reset_second_factor),
        )
        .service(
            segment("access-grants")
                .service(grants::routes::list_grants)
                .service(grants::routes::get_grant)
                .service(grants::routes::approve_grant)
                .service(grants::routes::refuse_grant),
        )
        .service(segment("audit-events").service(audit::routes::list_audit_events))
        .service(
            segment("victims")
                .service(victims::routes::list_victims)
                .service(victims::routes::create_victim)
                .service(victims::search::search_victims)
                .service(victims::routes::get_victim)
                .service(victims::routes::update_victim)
                .service(victims::assignment::get_assignment)
                .service(victims::assignment::assign_case)
                .service(victims::closure::close_case)
                .service(victims::closure::reopen_case)
                .service(victims::closure::list_closures)
                .service(victims::consent::consent_history)
                .service(victims::subject_access::subject_access)
                .service(victims::erasure::erase_victim)
                .service(retention::routes::get_legal_hold)
                .service(retention::routes::place_legal_hold)
                .service(retention::routes::lift_legal_hold)
                .service(assistance::routes::list_assistance)
                .service(assistance::routes::create_assistance)
                .service(tasks::routes::list_case_tasks)
                .service(tasks::routes::create_task)
                .service(support_plan::routes::list_goals)
                .service(support_plan::routes::create_goal)
                .service(referrals::external::list_external_referrals)
                .service(referrals::external::create_external_referral)
                .service(transfers::routes::create_transfer),
        )
        .service(segment("exports").service(exchange::export::export_htcds).service(exchange::ctdc::export_ctdc))
        .service(segment("imports").service(exchange::routes::import_htcds))
        .service(
            segment("tasks")
                .service(tasks::routes::list_tasks)
                .service(tasks::routes::get_task)
                .service(tasks::routes::update_task),
        )
        .service(
            segment("support-plan-goals")
                .service(support_plan::routes::get_goal)
                .service(support_plan::routes::update_goal),
        )
        .service(
            segment("referrals")
                .service(referrals::routes::list_referrals)
                .service(referrals::routes::create_referral)
                .service(referrals::routes::get_referral)
                .service(referrals::routes::accept_referral)
                .service(referrals::routes::decline_referral)
                .service(referrals::routes::complete_referral)
                .service(referrals::routes::cancel_referral),
        )
        .service(
            segment("external-referrals")
                .service(referrals::external::get_external_referral)
                .service(referrals::external::update_external_referral),
        )
        .service(segment("changes").service(changes::routes::list_changes))
        .service(
            segment("transfers")
                .service(transfers::routes::list_transfers)
                .service(transfers::routes::get_transfer)
                .service(transfers::routes::accept_transfer)
                .service(transfers::routes::decline_transfer)
                .service(transfers::routes::cancel_transfer),
        )
        .service(
            segment("webhooks")
                .service(webhooks::routes::list_webhooks)
                .service(webhooks::routes::create_webhook)
                .service(webhooks::routes::get_webhook)
                .service(webhooks::routes::update_webhook)
                .service(webhooks::routes::delete_webhook)
                .service(webhooks::routes::list_deliveries),
        )
        .service(
            segment("reports")
                .map(benchmark_twin)
                .service(reports::routes::list_reports)
                .service(reports::routes::own_budget)
                .service(reports::routes::run_report)
                .service(reports::routes::run_report_csv),
        );
}

/// The API's routes whose path begins with `first` (`/api/v1/{first}` or `/api/v1/{first}/...`).
/// Each handler keeps its whole path in its attribute, as the OpenAPI document names it. Without
/// this grouping actix-web tried every route of the API in order, through a regular expression for
/// each template, and the hottest read sat sixty routes down (D127, D130): a request now passes one
/// string comparison per segment before it reaches the few templates of its own.
fn segment(
    first: &'static str,
) -> scope::Scope<
    impl ServiceFactory<ServiceRequest, Config = (), Response = ServiceResponse, Error = actix_web::Error, InitError = ()>,
> {
    scope::scope(API_PREFIX).guard(guard::fn_guard(move |ctx| in_segment(ctx.head().uri.path(), first)))
}

/// Whether `path` (as sent) begins with the segment `first`. actix-web matches routes on the path
/// with its percent-encoded characters decoded (`/%76ictims` is `/victims`, RFC 3986 6.2.2.2),
/// so the grouping decodes them too, or such a request would find no group.
fn in_segment(path: &str, first: &str) -> bool {
    if !path.contains('%') {
        return first_segment(path) == Some(first);
    }
    // Lossy: bytes that are not UTF-8 in a later segment must not keep the request from its group
    // (where it is answered 400, as before); in the first segment they match no group.
    first_segment(&percent_encoding::percent_decode_str(path).decode_utf8_lossy()) == Some(first)
}

fn first_segment(path: &str) -> Option<&str> {
    path.strip_prefix(API_PREFIX)?.strip_prefix('/')?.split('/').next()
}

/// In a benchmark build, the catalogue's unauthenticated twin, just before it (src/benchmark_twin.rs).
fn benchmark_twin<T>(scope: actix_web::Scope<T>) -> actix_web::Scope<T>
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
{
    #[cfg(feature = "benchmark-twin")]
    return crate::benchmark_twin::beside_catalogue(scope);
    #[cfg(not(feature = "benchmark-twin"))]
    scope
}

/// A path segment that did not parse. A literal path (`/victims/search`) also matches a template
/// (`/victims/{id}`): asked with a method only the template serves, that is a wrong method (405),
/// not a malformed id.
pub fn malformed_path(req: &HttpRequest) -> ApiError {
    let methods =
        req.app_data::<web::Data<AppState>>().and_then(|s| s.routes.methods_for(req.path()).map(<[String]>::to_vec));
    match methods {
        Some(methods) if !methods.iter().any(|m| m == req.method().as_str()) => ApiError::MethodNotAllowed(methods),
        _ => ApiError::BadRequest("A path parameter is malformed.".into()),
    }
}

/// What no route matched: 405 with `Allow` if the path exists for other methods, else 404.
pub async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<actix_web::HttpResponse, ApiError> {
    Err(match state.routes.methods_for(req.path()) {
        Some(methods) => ApiError::MethodNotAllowed(methods.to_vec()),
        None => ApiError::RouteNotFound,
    })
}

#[cfg(test)]
mod tests {
    use super::{first_segment, in_segment};

    #[test]
    fn a_path_is_grouped_by_its_whole_first_segment_under_the_api_prefix() {
        assert_eq!(first_segment("/api/v1/victims"), Some("victims"));
        assert_eq!(first_segment("/api/v1/victims/3f2a/tasks"), Some("victims"));
        assert_eq!(first_segment("/api/v1/victims-archive/1"), Some("victims-archive"));
        assert_eq!(first_segment("/api/v1/"), Some(""));
        assert_eq!(first_segment("/api/v1victims"), None);
        assert_eq!(first_segment("/healthz"), None);
    }

    #[test]
    fn a_percent_encoded_path_is_grouped_as_actix_web_routes_it() {
        assert!(in_segment("/api/v1/%76ictims/3f2a", "victims"));
        assert!(in_segment("/%61pi/v1/reports%2Dx", "reports-x"));
        assert!(in_segment("/api/v1/victims", "victims"));
        assert!(!in_segment("/api/v1/%76ictims", "reports"));
        assert!(!in_segment("/api/v1/%ff", "victims"));
        assert!(in_segment("/api/v1/reports/%ff", "reports"));
    }
}
