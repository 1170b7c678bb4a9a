DROP TABLE legal_holds;
ALTER TABLE organizations DROP COLUMN erase_identities_after_months;
ALTER TABLE victims DROP COLUMN erased_at;
