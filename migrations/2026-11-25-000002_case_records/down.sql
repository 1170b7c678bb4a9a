DROP TABLE referrals;
DROP TABLE assistance_records;
DROP TABLE victim_identities;
DROP TABLE victims;
DROP TABLE case_counters;
