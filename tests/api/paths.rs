//! The API's paths, by name: a test speaks of a victim's assistance or a grant's approval, not of
//! a URL it spells out. A query string is added with [`query`].

use std::fmt::Display;

pub const API: &str = "/api/v1";

pub const LOGIN: &str = "/api/v1/auth/login";
pub const REFRESH: &str = "/api/v1/auth/refresh";
pub const LOGOUT: &str = "/api/v1/auth/logout";
pub const ENROL: &str = "/api/v1/auth/enrol";
pub const SECOND_FACTOR: &str = "/api/v1/auth/second-factor";
pub const SECOND_FACTOR_CONFIRM: &str = "/api/v1/auth/second-factor/confirm";
pub const ME: &str = "/api/v1/me";
pub const MY_PASSWORD: &str = "/api/v1/me/password";

pub const ORGANIZATIONS: &str = "/api/v1/organizations";
pub const USERS: &str = "/api/v1/users";
pub const GRANTS: &str = "/api/v1/access-grants";
pub const AUDIT_EVENTS: &str = "/api/v1/audit-events";

pub const VICTIMS: &str = "/api/v1/victims";
pub const VICTIM_SEARCH: &str = "/api/v1/victims/search";
pub const REFERRALS: &str = "/api/v1/referrals";
pub const TASKS: &str = "/api/v1/tasks";
pub const TRANSFERS: &str = "/api/v1/transfers";
pub const CHANGES: &str = "/api/v1/changes";
pub const WEBHOOKS: &str = "/api/v1/webhooks";
pub const EXTERNAL_REFERRALS: &str = "/api/v1/external-referrals";
pub const SUPPORT_PLAN_GOALS: &str = "/api/v1/support-plan-goals";

pub const REPORTS: &str = "/api/v1/reports";
pub const OWN_BUDGET: &str = "/api/v1/reports/budget";
pub const VOCABULARIES: &str = "/api/v1/vocabularies";
pub const EXPORT: &str = "/api/v1/exports/htcds";
pub const IMPORT: &str = "/api/v1/imports/htcds";
pub const CTDC: &str = "/api/v1/exports/ctdc";

/// `path?query`.
pub fn query(path: impl Display, query: impl Display) -> String {
    format!("{path}?{query}")
}

pub fn organization(id: impl Display) -> String {
    format!("{ORGANIZATIONS}/{id}")
}

pub fn organization_budget(id: impl Display) -> String {
    format!("{ORGANIZATIONS}/{id}/report-budget")
}

pub fn organization_second_factor(id: impl Display) -> String {
    format!("{ORGANIZATIONS}/{id}/second-factor")
}

pub fn user(id: impl Display) -> String {
    format!("{USERS}/{id}")
}

pub fn user_reset(id: impl Display) -> String {
    format!("{USERS}/{id}/reset")
}

pub fn user_second_factor_reset(id: impl Display) -> String {
    format!("{USERS}/{id}/second-factor/reset")
}

pub fn grant_approval(id: impl Display) -> String {
    format!("{GRANTS}/{id}/approve")
}

pub fn grant_refusal(id: impl Display) -> String {
    format!("{GRANTS}/{id}/refuse")
}

pub fn victim(id: impl Display) -> String {
    format!("{VICTIMS}/{id}")
}

pub fn assistance(victim: impl Display) -> String {
    format!("{VICTIMS}/{victim}/assistance")
}

pub fn assignment(victim: impl Display) -> String {
    format!("{VICTIMS}/{victim}/assignment")
}

/// A case's closing and reopening: `close`, `reopen` or `closures` (its history).
pub fn case_step(victim: impl Display, step: &str) -> String {
    format!("{VICTIMS}/{victim}/{step}")
}

pub fn tasks_of(victim: impl Display) -> String {
    format!("{VICTIMS}/{victim}/tasks")
}

pub fn task(id: impl Display) -> String {
    format!("{TASKS}/{id}")
}

pub fn support_plan(victim: impl Display) -> String {
    format!("{VICTIMS}/{victim}/support-plan")
}

pub fn support_plan_goal(id: impl Display) -> String {
    format!("{SUPPORT_PLAN_GOALS}/{id}")
}

pub fn transfers_of(victim: impl Display) -> String {
    format!("{VICTIMS}/{victim}/transfers")
}

pub fn transfer(id: impl Display) -> String {
    format!("{TRANSFERS}/{id}")
}

/// A transfer's decision: `accept`, `decline` or `cancel`.
pub fn transfer_step(id: impl Display, step: &str) -> String {
    format!("{TRANSFERS}/{id}/{step}")
}

pub fn external_referrals_of(victim: impl Display) -> String {
    format!("{VICTIMS}/{victim}/external-referrals")
}

pub fn external_referral(id: impl Display) -> String {
    format!("{EXTERNAL_REFERRALS}/{id}")
}

pub fn referral(id: impl Display) -> String {
    format!("{REFERRALS}/{id}")
}

/// A referral's transition: `accept`, `decline`, `complete` or `cancel`.
pub fn referral_step(id: impl Display, step: &str) -> String {
    format!("{REFERRALS}/{id}/{step}")
}

pub fn report(id: &str) -> String {
    format!("{REPORTS}/{id}")
}

pub fn report_csv(id: &str) -> String {
    format!("{REPORTS}/{id}/csv")
}
