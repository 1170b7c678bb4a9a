//! The one place that turns a policy decision about a victim into what a caller is shown, and the
//! view type that makes it stick: a record's identity-grade part (the identity, assistance notes, a
//! referral's reason) can only be added to a [`View`] with an [`IdentityGrant`] for the record's
//! victim, and only [`sight`] creates grants, from `policy::victim_sight`.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::domain::Principal;
use crate::domain::policy::{self, Custody, Relation, VictimSight};
use crate::error::ApiError;

/// Proof that the caller may see this victim's identity. Not constructible outside this module.
#[derive(Debug, Clone, Copy)]
pub struct IdentityGrant {
    victim: Uuid,
}

impl IdentityGrant {
    /// The victim this grant is for.
    pub fn victim(&self) -> Uuid {
        self.victim
    }
}

/// What a caller may see of one victim.
#[derive(Debug, Clone, Copy)]
pub enum Sight {
    Identity(IdentityGrant),
    CaseOnly,
}

impl Sight {
    pub fn grant(&self) -> Option<IdentityGrant> {
        match self {
            Sight::Identity(g) => Some(*g),
            Sight::CaseOnly => None,
        }
    }
}

/// What `p` may see of `victim`, held by `victim_org`, related to the caller's organisation by
/// `relation` and worked as `custody` says: the policy decides, and a grant is made only for an
/// identity decision.
pub fn sight(
    p: &Principal,
    victim: Uuid,
    victim_org: Uuid,
    relation: Relation,
    custody: Custody,
) -> Result<Sight, ApiError> {
    Ok(match policy::victim_sight(p, victim_org, relation, custody)? {
        VictimSight::Identity => Sight::Identity(IdentityGrant { victim }),
        VictimSight::CaseOnly => Sight::CaseOnly,
    })
}

/// A record shown to callers with or without its identity-grade part, and how the two forms are
/// named in the OpenAPI document.
pub trait Gated: Serialize + ToSchema {
    /// The identity-grade part, serialised beside the record's own fields.
    type Part: Serialize + ToSchema;
    /// The schema name of the view (either form).
    const VIEW: &'static str;
    const VIEW_DESCRIPTION: &'static str;
    /// The schema name of the form with the part.
    const DISCLOSED: &'static str;
    const DISCLOSED_DESCRIPTION: &'static str;
    /// The victim the record is about: a grant opens the part only for that victim.
    fn victim_id(&self) -> Uuid;
}

// The identity-grade notes of a record (assistance, a task), for callers holding an identity grant
// (no doc comment: it would become a schema description).
#[derive(Serialize, ToSchema)]
pub struct NotesPart {
    /// Always present in this view, `null` when there are none: its presence is what tells this
    /// view from the one without notes.
    #[schema(required = true)]
    pub notes: Option<String>,
}

/// A record as one caller may see it: with its identity-grade part (entitled caseworkers) or
/// without.
#[derive(Serialize)]
#[serde(untagged)]
pub enum View<R: Gated> {
    Disclosed(Disclosed<R>),
    Redacted(R),
}

/// A record with its identity-grade part; its fields are private, so only [`View::disclosed`]
/// makes one.
#[derive(Serialize)]
pub struct Disclosed<R: Gated> {
    #[serde(flatten)]
    record: R,
    #[serde(flatten)]
    part: R::Part,
}

impl<R: Gated> View<R> {
    pub fn redacted(record: R) -> View<R> {
        View::Redacted(record)
    }

    /// Panics if the grant is for another victim: that would be a programming error, never input.
    pub fn disclosed(grant: IdentityGrant, record: R, part: R::Part) -> View<R> {
        assert_eq!(grant.victim, record.victim_id(), "identity grant used for another victim");
        View::Disclosed(Disclosed { record, part })
    }
}

impl<R: Gated> PartialSchema for View<R> {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(R::DISCLOSED))
            .item(Ref::from_schema_name(R::name()))
            .description(Some(R::VIEW_DESCRIPTION))
            .into()
    }
}

impl<R: Gated> ToSchema for View<R> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(R::VIEW)
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        let disclosed = AllOfBuilder::new()
            .item(Ref::from_schema_name(R::name()))
            .item(R::Part::schema())
            .description(Some(R::DISCLOSED_DESCRIPTION));
        schemas.push((R::DISCLOSED.to_owned(), disclosed.into()));
        schemas.push((R::name().into_owned(), R::schema()));
        R::schemas(schemas);
        R::Part::schemas(schemas);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::Role;

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Caseworker), Just(Role::Admin), Just(Role::Auditor), Just(Role::Partner)]
    }

    fn relation() -> impl Strategy<Value = Relation> {
        prop_oneof![
            Just(Relation::None),
            Just(Relation::FormerOwner),
            (any::<bool>(), any::<bool>())
                .prop_map(|(identity_shared, accepted)| Relation::Referred { identity_shared, accepted })
        ]
    }

    proptest! {
        /// For any caller, organisation, relation and custody: identities only ever reach caseworkers
        /// of the owning organisation (of a restricted case, its assigned ones) or of one it
        /// referred the victim to with consent; partners never see a record; outsiders without a
        /// referral never learn that it exists.
        #[test]
        fn visibility_rule(
            role in role(), same_org in any::<bool>(), is_host in any::<bool>(), relation in relation(),
            restricted in any::<bool>(), assigned in any::<bool>(),
        ) {
            let victim_org = Uuid::from_u128(1);
            let caller_org = if same_org { victim_org } else { Uuid::from_u128(2) };
            let p = Principal { user_id: Uuid::from_u128(3), organization_id: caller_org, role, session_id: Uuid::from_u128(4), is_host };
            let victim = Uuid::from_u128(5);
            let outcome = sight(&p, victim, victim_org, relation, Custody { restricted, assigned });
            let status = outcome.as_ref().err().map(|e| actix_web::ResponseError::status_code(e).as_u16());
            if let Ok(Sight::Identity(grant)) = &outcome {
                prop_assert_eq!(grant.victim(), victim);
                prop_assert_eq!(role, Role::Caseworker);
                let shared = matches!(relation, Relation::Referred { identity_shared: true, .. });
                prop_assert!(same_org || shared);
                prop_assert!(!same_org || !restricted || assigned, "a restricted case: its assigned caseworkers only");
            }
            if role == Role::Partner {
                prop_assert_eq!(status, Some(403));
            }
            if !same_org && relation == Relation::None && !(is_host && role == Role::Auditor) && role != Role::Partner {
                prop_assert_eq!(status, Some(404));
            }
            if same_org && role != Role::Partner {
                prop_assert!(outcome.is_ok(), "own organisation's staff read the case file");
            }
        }
    }
}
