// Diesel table definitions, kept by hand in step with `migrations/`.
// Every query is exercised by the integration tests against the migrated database.

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
        require_second_factor -> Nullable<Bool>,
        erase_identities_after_months -> Nullable<Int2>,
        retention_effective_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        organization_id -> Uuid,
        email -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        disabled -> Bool,
        token_version -> Int4,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        last_login_at -> Nullable<Timestamptz>,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        awaiting_approval -> Bool,
        credential_issued_by -> Nullable<Uuid>,
        totp_key_id -> Nullable<Text>,
        totp_nonce -> Nullable<Bytea>,
        totp_ciphertext -> Nullable<Bytea>,
        totp_active -> Bool,
        totp_last_step -> Nullable<Int8>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Uuid,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
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

diesel::table! {
    case_counters (organization_id) {
        organization_id -> Uuid,
        last_number -> Int4,
    }
}

diesel::table! {
    victims (id) {
        id -> Uuid,
        organization_id -> Uuid,
        case_number -> Int4,
        status -> Text,
        trafficking_status -> Text,
        identified_on -> Date,
        identified_in -> Nullable<Bpchar>,
        identified_by -> Nullable<Text>,
        operation -> Nullable<Text>,
        gender -> Text,
        age_at_identification -> Nullable<Int2>,
        is_minor -> Bool,
        citizenship -> Array<Text>,
        migrant_status -> Nullable<Text>,
        country_of_exploitation -> Nullable<Bpchar>,
        exploitation_types -> Array<Text>,
        labour_sector -> Nullable<Bpchar>,
        recruitment_methods -> Array<Text>,
        means_of_control -> Array<Text>,
        recruiter_relation -> Nullable<Text>,
        route -> Jsonb,
        consent_services -> Bool,
        consent_share_with_referral_partners -> Bool,
        consent_anonymised_statistics -> Bool,
        consent_recorded_at -> Nullable<Timestamptz>,
        create_digest -> Bytea,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        created_by -> Uuid,
        updated_by -> Uuid,
        sex_exploitation_types -> Array<Text>,
        recruitment_platforms -> Array<Text>,
        exploitation_platforms -> Array<Text>,
        perpetrator_roles -> Array<Text>,
        age_when_trafficked -> Nullable<Int2>,
        primary_language -> Nullable<Text>,
        secondary_language -> Nullable<Text>,
        consent_method -> Nullable<Text>,
        erased_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    legal_holds (victim_id) {
        victim_id -> Uuid,
        basis -> Text,
        placed_at -> Timestamptz,
        placed_by -> Uuid,
    }
}

diesel::table! {
    consent_events (id) {
        id -> Int8,
        victim_id -> Uuid,
        organization_id -> Uuid,
        services -> Bool,
        share_with_referral_partners -> Bool,
        anonymised_statistics -> Bool,
        method -> Nullable<Text>,
        given_at -> Timestamptz,
        recorded_by -> Uuid,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    victim_identities (victim_id) {
        victim_id -> Uuid,
        organization_id -> Uuid,
        key_id -> Text,
        nonce -> Bytea,
        ciphertext -> Bytea,
        name_index -> Array<Bytea>,
        document_index -> Nullable<Bytea>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    assistance_records (id) {
        id -> Uuid,
        victim_id -> Uuid,
        organization_id -> Uuid,
        kind -> Text,
        provided_on -> Date,
        provided_by -> Uuid,
        notes_key_id -> Nullable<Text>,
        notes_nonce -> Nullable<Bytea>,
        notes_ciphertext -> Nullable<Bytea>,
        create_digest -> Bytea,
        created_at -> Timestamptz,
        created_by -> Uuid,
    }
}

diesel::table! {
    referrals (id) {
        id -> Uuid,
        victim_id -> Uuid,
        from_organization_id -> Uuid,
        from_user_id -> Uuid,
        to_organization_id -> Uuid,
        service -> Text,
        urgency -> Text,
        reason_key_id -> Nullable<Text>,
        reason_nonce -> Nullable<Bytea>,
        reason_ciphertext -> Nullable<Bytea>,
        status -> Text,
        identity_shared -> Bool,
        decline_reason -> Nullable<Text>,
        create_digest -> Bytea,
        version -> Int4,
        created_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        declined_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    enrolments (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        purpose -> Text,
        issued_by -> Uuid,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        redeemed_at -> Nullable<Timestamptz>,
        superseded_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    access_grants (id) {
        id -> Uuid,
        organization_id -> Uuid,
        user_id -> Uuid,
        kind -> Text,
        requested_by -> Uuid,
        requested_at -> Timestamptz,
        status -> Text,
        decided_by -> Nullable<Uuid>,
        decided_at -> Nullable<Timestamptz>,
        reason -> Nullable<Text>,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(access_grants -> users (user_id));
diesel::joinable!(victim_identities -> victims (victim_id));
diesel::joinable!(legal_holds -> victims (victim_id));
diesel::joinable!(assistance_records -> victims (victim_id));
diesel::table! {
    case_assignments (victim_id, user_id) {
        victim_id -> Uuid,
        user_id -> Uuid,
        organization_id -> Uuid,
        assigned_at -> Timestamptz,
        assigned_by -> Uuid,
    }
}

diesel::table! {
    restricted_cases (victim_id) {
        victim_id -> Uuid,
        organization_id -> Uuid,
        restricted_at -> Timestamptz,
        restricted_by -> Uuid,
    }
}

diesel::table! {
    case_closures (id) {
        id -> Int8,
        victim_id -> Uuid,
        organization_id -> Uuid,
        reason -> Text,
        closed_at -> Timestamptz,
        closed_by -> Uuid,
        reopen_reason -> Nullable<Text>,
        reopened_at -> Nullable<Timestamptz>,
        reopened_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    tasks (id) {
        id -> Uuid,
        victim_id -> Uuid,
        organization_id -> Uuid,
        kind -> Text,
        due_on -> Date,
        assignee_id -> Uuid,
        status -> Text,
        completed_at -> Nullable<Timestamptz>,
        notes_key_id -> Nullable<Text>,
        notes_nonce -> Nullable<Bytea>,
        notes_ciphertext -> Nullable<Bytea>,
        version -> Int4,
        create_digest -> Bytea,
        created_at -> Timestamptz,
        created_by -> Uuid,
        updated_at -> Timestamptz,
        updated_by -> Uuid,
    }
}

diesel::table! {
    support_plan_goals (id) {
        id -> Uuid,
        victim_id -> Uuid,
        organization_id -> Uuid,
        kind -> Text,
        status -> Text,
        planned_end_on -> Date,
        actual_end_on -> Nullable<Date>,
        text_key_id -> Nullable<Text>,
        text_nonce -> Nullable<Bytea>,
        text_ciphertext -> Nullable<Bytea>,
        version -> Int4,
        create_digest -> Bytea,
        created_at -> Timestamptz,
        created_by -> Uuid,
        updated_at -> Timestamptz,
        updated_by -> Uuid,
    }
}

diesel::table! {
    transfers (id) {
        id -> Uuid,
        victim_id -> Uuid,
        from_organization_id -> Uuid,
        from_user_id -> Uuid,
        to_organization_id -> Uuid,
        reason -> Text,
        status -> Text,
        from_case_number -> Int4,
        to_case_number -> Nullable<Int4>,
        decline_reason -> Nullable<Text>,
        decided_at -> Nullable<Timestamptz>,
        decided_by -> Nullable<Uuid>,
        create_digest -> Bytea,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        case_file -> Nullable<Jsonb>,
    }
}

diesel::table! {
    sight_changes (id) {
        id -> Int8,
        organization_id -> Uuid,
        user_id -> Nullable<Uuid>,
        victim_id -> Uuid,
        forget -> Text,
        reason -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        organization_id -> Uuid,
        url -> Text,
        events -> Array<Text>,
        secret_key_id -> Text,
        secret_nonce -> Bytea,
        secret_ciphertext -> Bytea,
        disabled -> Bool,
        version -> Int4,
        created_at -> Timestamptz,
        created_by -> Uuid,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Int8,
        organization_id -> Uuid,
        event -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        event_id -> Int8,
        webhook_id -> Uuid,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_attempt_at -> Nullable<Timestamptz>,
        response_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_notices (kind, record_id, due) {
        kind -> Text,
        record_id -> Uuid,
        due -> Date,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> webhook_events (event_id));
diesel::table! {
    external_referrals (id) {
        id -> Uuid,
        victim_id -> Uuid,
        organization_id -> Uuid,
        provider_name -> Text,
        provider_country -> Bpchar,
        service -> Text,
        referred_on -> Date,
        status -> Text,
        version -> Int4,
        create_digest -> Bytea,
        created_at -> Timestamptz,
        created_by -> Uuid,
        updated_at -> Timestamptz,
        updated_by -> Uuid,
    }
}

diesel::joinable!(referrals -> victims (victim_id));
diesel::joinable!(restricted_cases -> victims (victim_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    legal_holds,
    organizations,
    users,
    sessions,
    refresh_tokens,
    audit_events,
    case_counters,
    victims,
    victim_identities,
    assistance_records,
    referrals,
    enrolments,
    access_grants,
    case_assignments,
    restricted_cases,
    case_closures,
    tasks,
    support_plan_goals,
    transfers,
    sight_changes,
    webhooks,
    webhook_events,
    webhook_deliveries,
    webhook_notices,
    external_referrals,
);

diesel::table! {
    country_regions (country) {
        country -> Bpchar,
        region -> Text,
        subregion -> Text,
    }
}

diesel::table! {
    report_releases (id) {
        id -> Int8,
        released_at -> Timestamptz,
        user_id -> Uuid,
        organization_id -> Uuid,
        report_id -> Text,
        parameters -> Jsonb,
        k -> Int4,
        cells_released -> Int4,
        cells_suppressed -> Int4,
        epsilon_spent -> Float8,
        period -> Nullable<Date>,
        question -> Nullable<Text>,
        rho -> Float8,
        mechanism -> Nullable<Text>,
        release -> Nullable<Jsonb>,
    }
}

diesel::table! {
    report_spend (period, organization_id) {
        period -> Date,
        organization_id -> Uuid,
        rho -> Float8,
        releases -> Int4,
    }
}

diesel::table! {
    login_limits (gate) {
        gate -> Bytea,
        tat -> Timestamptz,
    }
}

diesel::table! {
    login_lockouts (account_key) {
        account_key -> Bytea,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    report_allowances (organization_id) {
        organization_id -> Uuid,
        allowance -> Float8,
        updated_at -> Timestamptz,
        updated_by -> Uuid,
    }
}
