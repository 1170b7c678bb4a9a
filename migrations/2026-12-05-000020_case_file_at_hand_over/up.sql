-- A former owner reads the case file as it stood when it handed the case over, not as the new
-- owner keeps it since (D166): its later changes, consent and any onward transfer are the new
-- owner's. The case file (no identity: that is another table) is kept on the transfer, as the row
-- it was, and read back as one. A migration that adds a column to `victims` gives these copies a
-- value for it too (they are read as rows of `victims`).
ALTER TABLE transfers ADD COLUMN case_file jsonb;

-- Transfers accepted before this keep the case file as it stands now (the best the records hold),
-- under the organisation and number it was handed over with, not those of any later hand-over.
-- Never the create request's digest, which an erasure replaces in the case.
UPDATE transfers t
   SET case_file = to_jsonb(v) || jsonb_build_object(
           'organization_id', t.to_organization_id, 'case_number', t.to_case_number, 'create_digest', '\x')
  FROM victims v
 WHERE v.id = t.victim_id AND t.status = 'accepted';

ALTER TABLE transfers
    ADD CONSTRAINT transfers_case_file_check CHECK (status <> 'accepted' OR case_file IS NOT NULL);
