// Diesel table definitions, kept by hand in step with `migrations/`.
// A test (`tests/api/schema_drift.rs`) compares them with the migrated database.

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        kind -> Text,
        country -> Nullable<Bpchar>,
        shares_statistics -> Bool,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        organization_id -> Uuid,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        token_version -> Int4,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        last_login_at -> Nullable<Timestamptz>,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        organization_id -> Uuid,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        issued_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        organization_id -> Nullable<Uuid>,
        actor_user_id -> Nullable<Uuid>,
        actor_role -> Nullable<Text>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Uuid>,
        outcome -> Text,
        request_id -> Nullable<Text>,
        client_address -> Nullable<Text>,
        details -> Jsonb,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(organizations, users, sessions, refresh_tokens, audit_events);
