DROP TABLE legal_holds;
ALTER TABLE organizations DROP COLUMN erase_identities_after_months, DROP COLUMN retention_effective_at;
ALTER TABLE victims DROP COLUMN erased_at;
