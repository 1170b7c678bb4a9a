DROP TABLE report_allowances;
DROP TABLE report_spend;
DROP INDEX report_releases_question_idx;
ALTER TABLE report_releases DROP COLUMN release, DROP COLUMN mechanism, DROP COLUMN rho, DROP COLUMN question, DROP COLUMN period;
ALTER TABLE report_rollup_shapes DROP COLUMN bounded;
