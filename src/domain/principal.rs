//! The caller of a request, once authenticated (`auth::principal` finds it): what every access
//! decision in `policy` is made about.

use uuid::Uuid;

use super::Role;

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    /// Member of the host organisation (runs the deployment).
    pub is_host: bool,
}
